"""Runtime internals the supervisor drives; actor code never needs these."""

from ._runtime._actor import STOP as STOP
from ._runtime._actor import describe_error as describe_error
from ._runtime._actor import handler_name as handler_name
from ._runtime._actor import run_actor as run_actor
from ._runtime._mailbox import Mailbox as Mailbox

__all__ = ["STOP", "Mailbox", "describe_error", "handler_name", "run_actor"]
