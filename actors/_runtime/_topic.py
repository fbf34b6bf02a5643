"""Topics: publish/subscribe with per-subscriber conflation by key.

A publisher never waits for a subscriber. Each subscriber holds at most one pending value per
key (say, per symbol): a newer value replaces the pending one in place. A subscriber that falls
behind therefore sees the newest book per symbol when it wakes, never a backlog of stale ones.
Values must be plain immutable data, like every message.
"""

from __future__ import annotations

from collections.abc import Hashable
from types import TracebackType
from typing import Generic, TypeVar, cast

from ._exceptions import ActorNotRunningError
from ._mailbox import Mailbox, MailboxPolicy
from ._ref import ActorRef

V = TypeVar("V")


class Topic(Generic[V]):
    """A named stream of values, each published under a key."""

    __slots__ = ("_subscribers", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._subscribers: list[Mailbox] = []

    def publish(self, key: Hashable, value: V) -> None:
        """Offer `value` to every subscriber under `key`. Never waits."""
        slot = (self, key)
        closed: list[Mailbox] = []
        for mailbox in self._subscribers:
            if not mailbox.put_conflated(slot, value):
                closed.append(mailbox)
        for mailbox in closed:
            self._remove(mailbox)

    def subscribe(self, ref: ActorRef) -> None:
        """Deliver values into an actor's mailbox, where its handlers pick them up by type.

        The subscription belongs to the mailbox, so it survives the actor's restarts (values
        published while it is stopped are dropped) and ends when the actor is removed.
        Subscribing again is a no-op, so an actor may subscribe in every on_start.
        """
        if ref._mailbox not in self._subscribers:
            self._subscribers.append(ref._mailbox)

    def unsubscribe(self, ref: ActorRef) -> None:
        self._subscribers = [m for m in self._subscribers if m is not ref._mailbox]

    def open_subscription(self) -> Subscription[V]:
        """A subscription for code that is not an actor (status views, tests, control streams)."""
        mailbox = Mailbox(f"subscription:{self.name}", MailboxPolicy(capacity=1))
        self._subscribers.append(mailbox)
        return Subscription(self, mailbox)

    def _remove(self, mailbox: Mailbox) -> None:
        self._subscribers = [m for m in self._subscribers if m is not mailbox]

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)


class Subscription(Generic[V]):
    """Conflated values of one topic, oldest key first. Close it (or use `with`) to leave."""

    __slots__ = ("_mailbox", "_topic")

    def __init__(self, topic: Topic[V], mailbox: Mailbox) -> None:
        self._topic = topic
        self._mailbox = mailbox

    async def receive(self) -> V:
        return cast(V, await self._mailbox.receive())

    def pending(self) -> int:
        """Keys with a value waiting."""
        return self._mailbox.depth()

    def close(self) -> None:
        self._topic._remove(self._mailbox)
        self._mailbox.retire()

    def __enter__(self) -> Subscription[V]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __aiter__(self) -> Subscription[V]:
        return self

    async def __anext__(self) -> V:
        try:
            return await self.receive()
        except ActorNotRunningError:
            raise StopAsyncIteration from None
