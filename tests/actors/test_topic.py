"""Pub/sub topics: publishers never wait, and a slow subscriber sees the newest value per key."""

from __future__ import annotations

import trio

from actors import Topic
from supervisor import BACKOFF_OFF, ChildSpec, SupervisorSpec
from tests.stubs import Crash, Echo, Hold, Journal, Note, Quote, Recorder, one_actor, open_tree


async def test_subscriber_when_it_wakes_late_then_sees_only_newest_value_per_key(autojump_clock):
    journal = Journal()
    quotes: Topic[Quote] = Topic("quotes")
    async with open_tree(one_actor("strategy", lambda: Recorder(journal))) as tree:
        ref = tree.registry.lookup("strategy")
        quotes.subscribe(ref)
        await ref.tell(Hold())  # the subscriber is busy
        await trio.sleep(1)
        for price in range(1, 101):
            quotes.publish("BTC", Quote("BTC", price))
            if price <= 50:
                quotes.publish("ETH", Quote("ETH", price))
        assert ref.statistics().depth == 2  # one pending value per key, not 150
        assert ref.statistics().conflated == 148
        journal.gate.set()
        await ref.ask(Echo(0))
    assert journal.handled("strategy") == [("BTC", 100), ("ETH", 50)]


async def test_publish_when_subscriber_is_stuck_then_publisher_never_waits(autojump_clock):
    journal = Journal()
    quotes: Topic[Quote] = Topic("quotes")
    async with open_tree(one_actor("strategy", lambda: Recorder(journal))) as tree:
        ref = tree.registry.lookup("strategy")
        quotes.subscribe(ref)
        await ref.tell(Hold())
        await trio.sleep(1)
        before = trio.current_time()
        for price in range(10_000):  # publish is synchronous: it cannot wait
            quotes.publish(price % 3, Quote("X", price))
        assert trio.current_time() == before
        assert ref.statistics().depth == 3
        journal.gate.set()


async def test_subscriber_when_commands_and_data_pending_then_takes_them_in_turn(autojump_clock):
    journal = Journal()
    quotes: Topic[Quote] = Topic("quotes")
    async with open_tree(one_actor("strategy", lambda: Recorder(journal))) as tree:
        ref = tree.registry.lookup("strategy")
        quotes.subscribe(ref)
        await ref.tell(Hold())
        await trio.sleep(1)
        for value in range(3):
            await ref.tell(Note(value))
        for symbol in ("A", "B", "C"):
            quotes.publish(symbol, Quote(symbol, 1))
        journal.gate.set()
        await trio.sleep(1)
    assert journal.handled("strategy") == [0, ("A", 1), 1, ("B", 1), 2, ("C", 1)]


async def test_subscription_when_actor_restarts_then_still_delivered(autojump_clock):
    journal = Journal()
    quotes: Topic[Quote] = Topic("quotes")
    async with open_tree(one_actor("strategy", lambda: Recorder(journal))) as tree:
        ref = tree.registry.lookup("strategy")
        quotes.subscribe(ref)
        await ref.tell(Crash())
        await trio.sleep(1)
        quotes.publish("BTC", Quote("BTC", 7))
        await ref.ask(Echo(0))
    assert journal.handled("strategy") == [("BTC", 7)]


async def test_subscription_when_actor_removed_then_topic_forgets_it(autojump_clock):
    quotes: Topic[Quote] = Topic("quotes")
    async with open_tree(one_actor("strategy", lambda: Recorder(Journal()))) as tree:
        quotes.subscribe(tree.registry.lookup("strategy"))
        await tree.terminate_child("strategy")
        quotes.publish("BTC", Quote("BTC", 1))
        assert quotes.subscriber_count == 0


async def test_open_subscription_when_late_reader_then_newest_per_key_in_first_seen_order(
    autojump_clock,
):
    quotes: Topic[Quote] = Topic("quotes")
    with quotes.open_subscription() as subscription:
        for price in range(5):
            quotes.publish("ETH", Quote("ETH", price))
            quotes.publish("BTC", Quote("BTC", price))
        assert subscription.pending() == 2
        assert await subscription.receive() == Quote("ETH", 4)
        assert await subscription.receive() == Quote("BTC", 4)
        quotes.publish("BTC", Quote("BTC", 9))
        assert await subscription.receive() == Quote("BTC", 9)
    assert quotes.subscriber_count == 0


async def test_open_subscription_when_closed_then_iteration_ends(autojump_clock):
    quotes: Topic[Quote] = Topic("quotes")
    subscription = quotes.open_subscription()
    seen: list[Quote] = []

    async def read_all() -> None:
        async for quote in subscription:
            seen.append(quote)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_all)
        await trio.sleep(1)
        quotes.publish("BTC", Quote("BTC", 1))
        await trio.sleep(1)
        subscription.close()
    assert seen == [Quote("BTC", 1)]


async def test_subscription_when_parent_supervisor_restarts_then_kept(autojump_clock):
    journal = Journal()
    quotes: Topic[Quote] = Topic("quotes")
    spec = SupervisorSpec(
        "root", [SupervisorSpec("strategies", [ChildSpec("mm", lambda: Recorder(journal))])],
        backoff=BACKOFF_OFF,
    )
    async with open_tree(spec) as tree:
        ref = tree.registry.lookup("mm")
        quotes.subscribe(ref)
        await tree.restart_child("strategies")  # mm's mailbox closes, then reopens
        quotes.publish("BTC", Quote("BTC", 3))
        await ref.ask(Echo(0))
        assert quotes.subscriber_count == 1
    assert journal.handled("mm") == [("BTC", 3)]
