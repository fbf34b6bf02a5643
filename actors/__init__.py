"""Actors: the runtime (mailboxes, refs, registry, topics) and, later, every trading actor.

Public names live here; code lives in `_runtime/`. Names the supervisor needs but actor code
does not (the mailbox itself, the instance loop) are in `actors.lowlevel`, as in trio.
"""

from ._runtime._actor import Actor as Actor
from ._runtime._actor import ActorContext as ActorContext
from ._runtime._exceptions import ActorError as ActorError
from ._runtime._exceptions import ActorNotFoundError as ActorNotFoundError
from ._runtime._exceptions import ActorNotRunningError as ActorNotRunningError
from ._runtime._exceptions import AskFailedError as AskFailedError
from ._runtime._exceptions import AskTimeoutError as AskTimeoutError
from ._runtime._exceptions import MailboxFullError as MailboxFullError
from ._runtime._mailbox import DEFAULT_CAPACITY as DEFAULT_CAPACITY
from ._runtime._mailbox import MailboxPolicy as MailboxPolicy
from ._runtime._mailbox import MailboxStatistics as MailboxStatistics
from ._runtime._mailbox import Overflow as Overflow
from ._runtime._ref import ASK_TIMEOUT_S as ASK_TIMEOUT_S
from ._runtime._ref import ActorRef as ActorRef
from ._runtime._registry import Registry as Registry
from ._runtime._topic import Subscription as Subscription
from ._runtime._topic import Topic as Topic

__all__ = [
    "ASK_TIMEOUT_S",
    "DEFAULT_CAPACITY",
    "Actor",
    "ActorContext",
    "ActorError",
    "ActorNotFoundError",
    "ActorNotRunningError",
    "ActorRef",
    "AskFailedError",
    "AskTimeoutError",
    "MailboxFullError",
    "MailboxPolicy",
    "MailboxStatistics",
    "Overflow",
    "Registry",
    "Subscription",
    "Topic",
]
