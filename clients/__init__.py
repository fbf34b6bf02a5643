"""Clients of a Steward daemon's control plane. Imports only `protos`, never the daemon.

Public names live here; code lives in `_private` modules.
"""

from ._client import DEFAULT_TIMEOUT_S as DEFAULT_TIMEOUT_S
from ._client import ControlClient as ControlClient
from ._exceptions import ControlClientError as ControlClientError
from ._exceptions import DeadlineExceeded as DeadlineExceeded
from ._exceptions import FailedPrecondition as FailedPrecondition
from ._exceptions import InvalidArgument as InvalidArgument
from ._exceptions import NotFound as NotFound
from ._exceptions import PermissionDenied as PermissionDenied
from ._exceptions import Unauthenticated as Unauthenticated
from ._exceptions import Unavailable as Unavailable
from ._fleet import Fleet as Fleet
from ._fleet import FleetError as FleetError
from ._fleet import FleetHost as FleetHost
from ._fleet import KillOutcome as KillOutcome
from ._fleet import StatusOutcome as StatusOutcome
from ._fleet import fleet_status as fleet_status
from ._fleet import kill_fleet as kill_fleet
from ._fleet import load_fleet as load_fleet
from ._tls import TlsConfigError as TlsConfigError
from ._tls import TlsOptions as TlsOptions

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "ControlClient",
    "ControlClientError",
    "DeadlineExceeded",
    "FailedPrecondition",
    "Fleet",
    "FleetError",
    "FleetHost",
    "InvalidArgument",
    "KillOutcome",
    "NotFound",
    "PermissionDenied",
    "StatusOutcome",
    "TlsConfigError",
    "TlsOptions",
    "Unauthenticated",
    "Unavailable",
    "fleet_status",
    "kill_fleet",
    "load_fleet",
]
