"""Supervision: OTP-style trees of actors, and (later) the daemon that assembles them.

Public names live here; code lives in `_private` modules.
"""

from ._events import ChildAbandoned as ChildAbandoned
from ._events import ChildExited as ChildExited
from ._events import ChildRestartScheduled as ChildRestartScheduled
from ._events import ChildStarted as ChildStarted
from ._events import ChildStopped as ChildStopped
from ._events import EventSink as EventSink
from ._events import SupervisionEvent as SupervisionEvent
from ._events import SupervisorGaveUp as SupervisorGaveUp
from ._exceptions import ChildNotFoundError as ChildNotFoundError
from ._exceptions import DuplicateChildError as DuplicateChildError
from ._exceptions import SupervisionError as SupervisionError
from ._exceptions import SupervisorFailedError as SupervisorFailedError
from ._snapshot import ActorSnapshot as ActorSnapshot
from ._snapshot import ActorState as ActorState
from ._snapshot import ErrorInfo as ErrorInfo
from ._spec import BACKOFF_OFF as BACKOFF_OFF
from ._spec import Backoff as Backoff
from ._spec import ChildSpec as ChildSpec
from ._spec import Intensity as Intensity
from ._spec import Restart as Restart
from ._spec import Strategy as Strategy
from ._spec import SupervisorSpec as SupervisorSpec
from ._supervisor import ChildKilledError as ChildKilledError
from ._supervisor import GiveUpHook as GiveUpHook
from ._supervisor import StartTimeoutError as StartTimeoutError
from ._supervisor import Supervisor as Supervisor

__all__ = [
    "BACKOFF_OFF",
    "ActorSnapshot",
    "ActorState",
    "Backoff",
    "ChildAbandoned",
    "ChildExited",
    "ChildKilledError",
    "ChildNotFoundError",
    "ChildRestartScheduled",
    "ChildSpec",
    "ChildStarted",
    "ChildStopped",
    "DuplicateChildError",
    "ErrorInfo",
    "EventSink",
    "GiveUpHook",
    "Intensity",
    "Restart",
    "StartTimeoutError",
    "Strategy",
    "SupervisionError",
    "SupervisionEvent",
    "Supervisor",
    "SupervisorFailedError",
    "SupervisorGaveUp",
    "SupervisorSpec",
]
