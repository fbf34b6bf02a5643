"""ActorRef: the address of an actor, the only way to reach it."""

from __future__ import annotations

from typing import Any, Final

import trio

from ._ask import Ask, Reply
from ._exceptions import AskTimeoutError
from ._mailbox import Mailbox, MailboxStatistics

ASK_TIMEOUT_S: Final = 5.0  # a venue round trip fits; a stuck actor is noticed


class ActorRef:
    """Address of one named actor. Stable across restarts: it points at the child's mailbox,
    which the supervisor keeps while the child exists, not at one instance.

    Refs compare and hash by name, so they can key dicts and sets.
    """

    __slots__ = ("_mailbox", "name")

    def __init__(self, name: str, mailbox: Mailbox) -> None:
        self.name = name
        self._mailbox = mailbox

    async def tell(self, message: object) -> None:
        """Send and do not wait for an answer.

        Under Overflow.BLOCK this waits while the mailbox is full (backpressure); under the
        other policies it returns at once or raises MailboxFullError. Raises
        ActorNotRunningError when the actor is gone for good.
        """
        await self._mailbox.send(message)

    def tell_nowait(self, message: object) -> None:
        """Like `tell`, but raises trio.WouldBlock instead of waiting for room."""
        self._mailbox.send_nowait(message)

    async def ask(self, message: object, timeout_s: float = ASK_TIMEOUT_S) -> Any:
        """Send and wait for the handler's return value.

        The deadline covers waiting for room in the mailbox too. Raises AskTimeoutError past
        it, AskFailedError when the handler raised (the actor then crashes and is restarted by
        its supervisor) or has no handler for the message.
        """
        reply = Reply()
        with trio.move_on_after(timeout_s):
            await self._mailbox.send(Ask(message, reply))
            return await reply.wait()
        raise AskTimeoutError(self.name, type(message).__name__, timeout_s)

    def statistics(self) -> MailboxStatistics:
        return self._mailbox.statistics()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActorRef) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"ActorRef({self.name!r})"
