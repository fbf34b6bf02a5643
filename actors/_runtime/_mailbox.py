"""The mailbox: a bounded, single-consumer queue in front of every actor.

Why not a bare trio memory channel? An actor needs three lanes that one channel cannot give:

- **system** (unbounded, always first): stop requests. A stop must overtake a queue of market
  data, or a busy strategy could not be stopped quickly.
- **fifo** (bounded by `capacity`): commands and events, with an explicit overflow policy.
- **conflated** (one slot per key): pub/sub data. A new value replaces the pending one for its
  key, so a slow subscriber sees the newest book per symbol and never a backlog.

When both fifo and conflated hold items the actor takes them in turn, so neither starves.

The wake-up path copies trio's `MemoryChannel` (park the one receiver, hand an item straight to
it when it waits), so a hop costs what a trio channel hop costs; `bench/` checks that claim.

The mailbox outlives the actor instances that read it: a restarted child reads the same mailbox,
so every `ActorRef` stays valid across restarts. It is *closed* while its child is stopped
(waiting senders and pending asks fail with `ActorNotRunningError` at once instead of waiting
out their deadlines; pub/sub values are dropped) and reopened when the child starts again. It
is *retired* when the child is removed for good: topics then forget it.
"""

from __future__ import annotations

import enum
from collections import OrderedDict, deque
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Final

import outcome
import trio

from ._ask import Ask
from ._exceptions import ActorNotRunningError, MailboxFullError

DEFAULT_CAPACITY: Final = 1024  # deep enough for bursts of fills; shallow enough to bound memory


class Overflow(enum.Enum):
    """What `tell` does when the fifo lane is full. Every actor states its choice."""

    BLOCK = "block"
    """The sender waits for room: backpressure. For anything that must not lose a message."""
    DROP_NEWEST = "drop_newest"
    """The new message is discarded and counted. An ask fails at once with MailboxFullError."""
    DROP_OLDEST = "drop_oldest"
    """The oldest queued message is discarded and counted; a discarded ask fails its asker."""
    FAIL = "fail"
    """The sender gets MailboxFullError and decides."""


@dataclass(frozen=True, slots=True)
class MailboxPolicy:
    capacity: int = DEFAULT_CAPACITY
    overflow: Overflow = Overflow.BLOCK

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError(f"mailbox capacity must be >= 1, got {self.capacity}")


@dataclass(frozen=True, slots=True)
class MailboxStatistics:
    depth: int
    """Messages waiting in all lanes."""
    capacity: int
    overflow: Overflow
    dropped: int
    """Messages discarded by the overflow policy since the mailbox was made."""
    conflated: int
    """Pending pub/sub values replaced by a newer value for the same key."""
    blocked_senders: int
    accepting: bool


class Mailbox:
    """Three-lane queue with one receiver. See the module docstring for the why."""

    __slots__ = (
        "_accepting",
        "_blocked_senders",
        "_conflated",
        "_conflated_replaced",
        "_conflated_turn",
        "_dropped",
        "_fifo",
        "_receiver",
        "_retired",
        "_system",
        "owner",
        "policy",
    )

    def __init__(self, owner: str, policy: MailboxPolicy) -> None:
        self.owner = owner
        self.policy = policy
        self._system: deque[object] = deque()
        self._fifo: deque[object] = deque()
        self._conflated: OrderedDict[Hashable, object] = OrderedDict()
        self._conflated_turn = False
        self._receiver: trio.lowlevel.Task | None = None
        self._blocked_senders: OrderedDict[trio.lowlevel.Task, object] = OrderedDict()
        self._accepting = True
        self._retired = False
        self._dropped = 0
        self._conflated_replaced = 0

    # ---- senders -------------------------------------------------------------------------

    async def send(self, item: object) -> None:
        """Enqueue on the fifo lane; waits for room only under Overflow.BLOCK."""
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._offer(item):
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        task = trio.lowlevel.current_task()
        self._blocked_senders[task] = item

        def abort(_: object) -> trio.lowlevel.Abort:
            self._blocked_senders.pop(task, None)
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    def send_nowait(self, item: object) -> None:
        """Enqueue without waiting; raises trio.WouldBlock where `send` would wait."""
        if not self._offer(item):
            raise trio.WouldBlock

    def put_system(self, item: object) -> None:
        """Enqueue ahead of everything else. Unbounded: only the runtime writes here."""
        if self._receiver is not None:
            self._wake_receiver(item)
        else:
            self._system.append(item)

    def put_conflated(self, key: Hashable, value: object) -> bool:
        """Replace the pending value for `key`, keeping its place in line. Never waits.

        Returns False once the mailbox is retired, so a publisher can forget the subscriber.
        While it is only closed (its child stopped, perhaps to restart) the value is dropped.
        """
        if not self._accepting:
            return not self._retired
        if self._receiver is not None:
            self._wake_receiver(value)
            return True
        conflated = self._conflated
        if key in conflated:
            self._conflated_replaced += 1
        conflated[key] = value
        return True

    def _offer(self, item: object) -> bool:
        """Place `item` if the policy allows without waiting; False means 'wait for room'."""
        if not self._accepting:
            raise ActorNotRunningError(self.owner)
        if self._receiver is not None:
            # The receiver parks only when every lane is empty, so handing over keeps order.
            self._wake_receiver(item)
            return True
        fifo = self._fifo
        if len(fifo) < self.policy.capacity:
            fifo.append(item)
            return True
        overflow = self.policy.overflow
        if overflow is Overflow.BLOCK:
            return False
        if overflow is Overflow.DROP_OLDEST:
            oldest = fifo.popleft()
            if isinstance(oldest, Ask):
                oldest.reply.fail(MailboxFullError(self.owner, self.policy.capacity))
            self._dropped += 1
            fifo.append(item)
            return True
        if overflow is Overflow.DROP_NEWEST and not isinstance(item, Ask):
            self._dropped += 1
            return True
        raise MailboxFullError(self.owner, self.policy.capacity)

    def _wake_receiver(self, item: object) -> None:
        task = self._receiver
        assert task is not None
        self._receiver = None
        trio.lowlevel.reschedule(task, outcome.Value(item))

    # ---- the receiver --------------------------------------------------------------------

    async def receive(self) -> object:
        """Next item: system lane first, then fifo and conflated in turn."""
        await trio.lowlevel.checkpoint_if_cancelled()
        item = self._take()
        if item is not _EMPTY:
            await trio.lowlevel.cancel_shielded_checkpoint()
            return item
        if not self._accepting:
            raise ActorNotRunningError(self.owner)
        if self._receiver is not None:
            raise trio.BusyResourceError(f"mailbox of {self.owner!r} already has a receiver")
        self._receiver = trio.lowlevel.current_task()

        def abort(_: object) -> trio.lowlevel.Abort:
            self._receiver = None
            return trio.lowlevel.Abort.SUCCEEDED

        return await trio.lowlevel.wait_task_rescheduled(abort)

    def receive_nowait(self) -> object:
        item = self._take()
        if item is _EMPTY:
            raise trio.WouldBlock
        return item

    def _take(self) -> object:
        # Returns a sentinel rather than raising: this runs once per message on the hot path.
        if self._system:
            return self._system.popleft()
        fifo = self._fifo
        conflated = self._conflated
        if fifo and not (conflated and self._conflated_turn):
            item = fifo.popleft()
            self._conflated_turn = True
            if self._blocked_senders:
                task, pending = self._blocked_senders.popitem(last=False)
                fifo.append(pending)
                trio.lowlevel.reschedule(task)
            return item
        if conflated:
            self._conflated_turn = False
            return conflated.popitem(last=False)[1]
        return _EMPTY

    def set_policy(self, policy: MailboxPolicy) -> None:
        """Adopt a new capacity and overflow policy. Queued messages keep their place, and
        senders already waiting keep theirs: those that now fit go in, in order. A drop
        policy trims what is queued beyond the new capacity, as it would have on arrival."""
        self.policy = policy
        fifo = self._fifo
        while len(fifo) > policy.capacity and policy.overflow in (
            Overflow.DROP_OLDEST, Overflow.DROP_NEWEST
        ):
            dropped = fifo.popleft() if policy.overflow is Overflow.DROP_OLDEST else fifo.pop()
            if isinstance(dropped, Ask):
                dropped.reply.fail(MailboxFullError(self.owner, policy.capacity))
            self._dropped += 1
        while self._blocked_senders and len(fifo) < policy.capacity:
            task, pending = self._blocked_senders.popitem(last=False)
            fifo.append(pending)
            trio.lowlevel.reschedule(task)

    def clear_system(self) -> None:
        """Forget stop requests meant for an instance that is gone (called before a restart)."""
        self._system.clear()

    # ---- lifecycle -----------------------------------------------------------------------

    def close(self) -> int:
        """Refuse new items; fail waiting senders and pending asks; return messages discarded."""
        self._accepting = False
        discarded = len(self._fifo) + len(self._conflated)
        error = ActorNotRunningError(self.owner)
        for item in self._fifo:
            if isinstance(item, Ask):
                item.reply.fail(error)
        self._fifo.clear()
        self._conflated.clear()
        self._system.clear()
        while self._blocked_senders:
            task, item = self._blocked_senders.popitem(last=False)
            trio.lowlevel.reschedule(task, outcome.Error(ActorNotRunningError(self.owner)))
        if self._receiver is not None:
            task = self._receiver
            self._receiver = None
            trio.lowlevel.reschedule(task, outcome.Error(ActorNotRunningError(self.owner)))
        return discarded

    def retire(self) -> None:
        """Close for good: the child is removed, and publishers should forget this mailbox."""
        self.close()
        self._retired = True

    def reopen(self) -> None:
        """Accept items again (a stopped child was started anew by its supervisor)."""
        self._accepting = True
        self._retired = False

    @property
    def accepting(self) -> bool:
        return self._accepting

    def depth(self) -> int:
        return len(self._system) + len(self._fifo) + len(self._conflated)

    def statistics(self) -> MailboxStatistics:
        return MailboxStatistics(
            depth=self.depth(),
            capacity=self.policy.capacity,
            overflow=self.policy.overflow,
            dropped=self._dropped,
            conflated=self._conflated_replaced,
            blocked_senders=len(self._blocked_senders),
            accepting=self._accepting,
        )


class _Empty:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<empty>"


_EMPTY: Final = _Empty()
