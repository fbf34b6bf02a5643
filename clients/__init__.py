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

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "ControlClient",
    "ControlClientError",
    "DeadlineExceeded",
    "FailedPrecondition",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "Unauthenticated",
    "Unavailable",
]
