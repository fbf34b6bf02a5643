"""Actors through their public surface: tell, ask, handlers by rule, stop, overflow policies.

Every test runs on trio's MockClock (`autojump_clock`): timeouts pass in virtual time.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import trio

from actors import (
    Actor,
    ActorNotFoundError,
    ActorNotRunningError,
    AskFailedError,
    AskTimeoutError,
    MailboxFullError,
)
from tests.stubs import (
    Crash,
    DropNewestRecorder,
    DropOldestRecorder,
    Echo,
    Exit,
    FailFastRecorder,
    Hold,
    Journal,
    Note,
    Recorder,
    SmallRecorder,
    one_actor,
    open_tree,
)


@dataclass
class MutableNote:
    value: int


@dataclass(frozen=True)
class OrderFilled:
    qty: int


async def test_tell_when_several_messages_then_handled_in_order(autojump_clock):
    journal = Journal()
    async with open_tree(one_actor("rec", lambda: Recorder(journal))) as tree:
        ref = tree.registry.lookup("rec")
        for value in range(5):
            await ref.tell(Note(value))
        await ref.ask(Echo(0))  # a round trip: everything told before it is handled
    assert journal.handled("rec") == [0, 1, 2, 3, 4]


async def test_ask_when_handler_returns_then_caller_gets_the_value(autojump_clock):
    async with open_tree(one_actor("rec", lambda: Recorder(Journal()))) as tree:
        assert await tree.registry.lookup("rec").ask(Echo(41)) == 41


async def test_ask_when_no_reply_within_timeout_then_times_out_at_the_deadline(autojump_clock):
    journal = Journal()
    async with open_tree(one_actor("rec", lambda: Recorder(journal))) as tree:
        ref = tree.registry.lookup("rec")
        await ref.tell(Hold())
        started = trio.current_time()
        with pytest.raises(AskTimeoutError) as info:
            await ref.ask(Echo(1), timeout_s=2.5)
        assert trio.current_time() - started == pytest.approx(2.5)
        assert info.value.actor == "rec" and info.value.message_type == "Echo"
        journal.gate.set()
        # The late answer is dropped and the actor serves on.
        assert await ref.ask(Echo(2)) == 2


async def test_ask_when_handler_raises_then_asker_fails_fast_and_actor_restarts(autojump_clock):
    journal = Journal()
    async with open_tree(one_actor("rec", lambda: Recorder(journal))) as tree:
        ref = tree.registry.lookup("rec")
        started = trio.current_time()
        with pytest.raises(AskFailedError) as info:
            await ref.ask(Crash("bad input"))
        assert trio.current_time() == started  # no waiting out a deadline
        assert (info.value.error_type, info.value.error_message) == ("RuntimeError", "bad input")
        assert await ref.ask(Echo(7)) == 7  # same ref, fresh instance
    assert journal.kinds("rec").count("start") == 2


async def test_ask_when_no_handler_then_fails_without_crashing(autojump_clock):
    journal = Journal()
    async with open_tree(one_actor("rec", lambda: Recorder(journal))) as tree:
        ref = tree.registry.lookup("rec")
        with pytest.raises(AskFailedError, match="no handler"):
            await ref.ask(OrderFilled(qty=1))
        await ref.tell(OrderFilled(qty=2))  # dropped with a log line
        assert await ref.ask(Echo(3)) == 3
        assert tree.snapshot()[1].restart_count == 0


async def test_stop_when_messages_queued_then_stop_overtakes_them(autojump_clock):
    journal = Journal()
    async with open_tree(one_actor("rec", lambda: Recorder(journal))) as tree:
        ref = tree.registry.lookup("rec")
        await ref.tell(Hold())
        for value in range(3):
            await ref.tell(Note(value))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(tree.terminate_child, "rec")
            await trio.sleep(0.1)
            journal.gate.set()
    assert journal.handled("rec") == []
    assert journal.kinds("rec")[-1] == "stop"


async def test_actor_stop_when_requested_by_itself_then_exits_normally(autojump_clock):
    journal = Journal()
    async with open_tree(one_actor("rec", lambda: Recorder(journal))) as tree:
        ref = tree.registry.lookup("rec")
        await ref.tell(Exit())
        await ref.ask(Echo(0))  # permanent: restarted after a normal exit
    assert journal.kinds("rec")[:3] == ["start", "stop", "start"]


async def test_lookup_when_name_unknown_then_actor_not_found(autojump_clock):
    async with open_tree(one_actor("rec", lambda: Recorder(Journal()))) as tree:
        with pytest.raises(ActorNotFoundError):
            tree.registry.lookup("nobody")


async def test_tell_when_actor_removed_then_not_running_and_pending_asks_fail(autojump_clock):
    journal = Journal()
    async with open_tree(one_actor("rec", lambda: SmallRecorder(journal))) as tree:
        ref = tree.registry.lookup("rec")
        await ref.tell(Hold())
        failures: list[type[BaseException]] = []

        async def ask_and_record() -> None:
            try:
                await ref.ask(Echo(1), timeout_s=60)
            except ActorNotRunningError as exc:
                failures.append(type(exc))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask_and_record)
            await trio.sleep(1)
            nursery.start_soon(tree.terminate_child, "rec")
            await trio.sleep(1)
            journal.gate.set()
        assert failures == [ActorNotRunningError]
        with pytest.raises(ActorNotRunningError):
            await ref.tell(Note(1))


# ---- overflow policies ---------------------------------------------------------------------


async def test_block_policy_when_mailbox_full_then_sender_waits_for_room(autojump_clock):
    journal = Journal()
    async with open_tree(one_actor("rec", lambda: SmallRecorder(journal))) as tree:
        ref = tree.registry.lookup("rec")
        await ref.tell(Hold())
        await ref.tell(Note(1))
        await ref.tell(Note(2))  # capacity 2: now full
        with trio.move_on_after(5) as waited:
            await ref.tell(Note(3))
        assert waited.cancelled_caught  # backpressure: the sender could not get in
        assert ref.statistics().depth == 2
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ref.tell, Note(4))
            await trio.sleep(1)
            journal.gate.set()
        await ref.ask(Echo(0))
    assert journal.handled("rec") == [1, 2, 4]
    assert ref.statistics().dropped == 0


async def test_drop_newest_policy_when_full_then_new_message_dropped_and_counted(autojump_clock):
    journal = Journal()
    async with open_tree(one_actor("rec", lambda: DropNewestRecorder(journal))) as tree:
        ref = tree.registry.lookup("rec")
        await ref.tell(Hold())
        for value in range(1, 5):
            await ref.tell(Note(value))  # never waits
        with pytest.raises(MailboxFullError):
            await ref.ask(Echo(0))  # an ask must not vanish silently
        assert ref.statistics().dropped == 2
        journal.gate.set()
        await trio.sleep(1)  # let it drain
        await ref.ask(Echo(0))
    assert journal.handled("rec") == [1, 2]


async def test_drop_oldest_policy_when_full_then_oldest_dropped_and_counted(autojump_clock):
    journal = Journal()
    async with open_tree(one_actor("rec", lambda: DropOldestRecorder(journal))) as tree:
        ref = tree.registry.lookup("rec")
        await ref.tell(Hold())
        for value in range(1, 5):
            await ref.tell(Note(value))
        assert ref.statistics().dropped == 2
        journal.gate.set()
        await trio.sleep(1)
        await ref.ask(Echo(0))
    assert journal.handled("rec") == [3, 4]


async def test_fail_policy_when_full_then_sender_gets_mailbox_full(autojump_clock):
    journal = Journal()
    async with open_tree(one_actor("rec", lambda: FailFastRecorder(journal))) as tree:
        ref = tree.registry.lookup("rec")
        await ref.tell(Hold())
        await ref.tell(Note(1))
        await ref.tell(Note(2))
        with pytest.raises(MailboxFullError) as info:
            await ref.tell(Note(3))
        assert info.value.capacity == 2
        journal.gate.set()


# ---- the handler table ---------------------------------------------------------------------


def test_handler_when_misnamed_then_class_definition_fails():
    with pytest.raises(TypeError, match="by rule it is named on_order_filled"):

        class Misnamed(Actor):
            async def on_fill(self, message: OrderFilled) -> None: ...


def test_handler_when_message_is_mutable_then_class_definition_fails():
    with pytest.raises(TypeError, match="MutableNote is mutable"):

        class TakesMutable(Actor):
            async def on_mutable_note(self, message: MutableNote) -> None: ...


def test_handler_when_not_async_then_class_definition_fails():
    with pytest.raises(TypeError, match="async def"):

        class Blocking(Actor):
            def on_order_filled(self, message: OrderFilled) -> None: ...


def test_handler_table_when_subclass_overrides_then_override_wins():
    class Base(Actor):
        async def on_order_filled(self, message: OrderFilled) -> None: ...

    class Derived(Base):
        async def on_order_filled(self, message: OrderFilled) -> None: ...

    assert Derived._handlers[OrderFilled] is Derived.__dict__["on_order_filled"]
    assert Derived.handled_types() == frozenset({OrderFilled})


@dataclass(frozen=True)
class Tick:
    n: int


class Ticker(Actor):
    """Spawns a timer that tells its own actor; crashes the instance when told to."""

    def __init__(self, journal: Journal, *, fail_after_ticks: int | None = None) -> None:
        self.journal = journal
        self.fail_after_ticks = fail_after_ticks

    async def on_start(self) -> None:
        self.journal.entries.append(("start", self.name, None))
        self.spawn(self._tick_every_second)

    async def on_stop(self) -> None:
        self.journal.entries.append(("stop", self.name, None))

    async def _tick_every_second(self) -> None:
        n = 0
        while True:
            await trio.sleep(1)
            n += 1
            if self.fail_after_ticks is not None and n > self.fail_after_ticks:
                raise ValueError("timer broke")
            await self.ref.tell(Tick(n))

    async def on_tick(self, message: Tick) -> None:
        self.journal.entries.append(("handle", self.name, message.n))


async def test_spawn_when_instance_runs_then_task_feeds_its_mailbox_and_ends_at_stop(
    autojump_clock,
):
    journal = Journal()
    async with open_tree(one_actor("ticker", lambda: Ticker(journal))):
        await trio.sleep(3.5)
    assert journal.handled("ticker") == [1, 2, 3]
    assert journal.kinds("ticker")[-1] == "stop"  # and the tree stopped: the task ended


async def test_spawn_when_task_raises_then_instance_crashes_with_that_error(autojump_clock):
    journal = Journal()
    spec = one_actor("ticker", lambda: Ticker(journal, fail_after_ticks=2))
    async with open_tree(spec) as tree:
        await trio.sleep(2.5)
        await trio.sleep(1)
        row = tree.snapshot()[1]
        assert row.restart_count == 1
        assert row.last_error is not None
        assert (row.last_error.type, row.last_error.message) == ("ValueError", "timer broke")
    assert journal.kinds("ticker")[:3] == ["start", "handle", "handle"]
