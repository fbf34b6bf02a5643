"""The journal storage layer through its public surface: `open_journal`, `Journal`, `JournalStore`.

Rules for this module: real files under `tmp_path` and the real clock, never `autojump_clock`
(the journal works in worker threads, and a mock clock can jump while a thread works). Every
test is bounded by `trio.fail_after(BOUND_S)`. To make the writer fail or stall on purpose, a
test holds the file's write lock from a second, raw sqlite3 connection: a real failure, with
no fake store.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
import trio
import trio.testing

import actors.journal
from actors.journal import (
    EventRecorded,
    FillRecorded,
    FundingRecorded,
    JournalClosedError,
    JournalConfig,
    JournalSchemaError,
    JournalStore,
    JournalWriteError,
    OrderRecorded,
    TradingStateRecorded,
    open_journal,
)
from exchanges import (
    Fill,
    FundingPayment,
    Liquidity,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)

BOUND_S = 10
T0 = 1_760_000_000_000_000_000


def make_fill(n: int, *, ts_ns: int | None = None, account: str = "main",
              strategy: str = "mm") -> FillRecorded:
    fill = Fill(
        venue="paper", account=account, fill_id=f"F{n}", client_id=f"c{n}",
        venue_order_id=f"v{n}", symbol="BTCUSDT", side=Side.BUY, qty=Decimal("0.010"),
        price=Decimal("64123.40"), fee=Decimal("-0.0012"), fee_asset="USDT",
        liquidity=Liquidity.MAKER, ts_venue_ns=T0 + n if ts_ns is None else ts_ns,
    )
    return FillRecorded(fill=fill, strategy=strategy)


def fill_with(**changes: object) -> FillRecorded:
    """A fill with some fields replaced, unchecked: msgspec does not check types in code."""
    return FillRecorded(fill=msgspec.structs.replace(make_fill(1).fill, **changes), strategy="mm")


def make_order(status: OrderStatus, *, filled_qty: str = "0", ts_ns: int = T0) -> OrderRecorded:
    return OrderRecorded(
        ts_ns=ts_ns, strategy="mm", venue="paper", account="main", client_id="c1",
        symbol="BTCUSDT", side=Side.SELL, order_type=OrderType.LIMIT, tif=TimeInForce.POST_ONLY,
        qty=Decimal("0.500"), price=Decimal("64200.10"), reduce_only=False, status=status,
        filled_qty=Decimal(filled_qty), venue_order_id="", reason="",
    )


def make_funding(ts_ns: int = T0) -> FundingRecorded:
    return FundingRecorded(payment=FundingPayment(
        venue="paper", account="main", symbol="BTCUSDT", amount=Decimal("-1.2345678"),
        rate=Decimal("0.00010000"), position_qty=Decimal("-0.250"),
        mark_price=Decimal("64100.00"), ts_venue_ns=ts_ns,
    ))


def make_event(n: int, kind: str = "risk_denied") -> EventRecorded:
    return EventRecorded(ts_ns=T0 + n, kind=kind, source="risk", detail=f'{{"n": {n}}}')


def make_state(state: str, ts_ns: int = T0) -> TradingStateRecorded:
    return TradingStateRecorded(ts_ns=ts_ns, state=state, reason="test", actor="operator")


@contextmanager
def write_lock_held(path: Path) -> Iterator[sqlite3.Connection]:
    """Another connection holds the write lock: the journal's writer waits, then fails."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield other
    finally:
        other.execute("ROLLBACK")
        other.close()


async def settle(journal: actors.journal.Journal, *, in_flight: int) -> None:
    """Once every task is blocked, the writer has taken the batch and waits on its thread."""
    await trio.testing.wait_all_tasks_blocked()
    assert journal.statistics().in_flight == in_flight


# ---- round trips and keys --------------------------------------------------------------------


async def test_record_when_each_record_type_is_recorded_then_queries_return_it_exactly(
    tmp_path: Path,
):
    order, fill, funding = make_order(OrderStatus.OPEN), make_fill(1), make_funding()
    event, state = make_event(1), make_state("reduce_only")
    market = msgspec.structs.replace(order, client_id="c2", order_type=OrderType.MARKET,
                                     price=None, tif=TimeInForce.IOC)
    with trio.fail_after(BOUND_S):
        async with open_journal(tmp_path / "j.sqlite") as journal:
            changed = await journal.record_many([order, market, fill, funding, event, state])

            assert changed == [True] * 6
            assert await journal.order("paper", "main", "c1") == order
            assert await journal.order("paper", "main", "c2") == market
            assert await journal.fills() == [fill]
            assert await journal.funding() == [funding]
            assert await journal.events() == [event]
            assert await journal.trading_state() == state
            stored = (await journal.fills())[0].fill
            assert (str(stored.qty), str(stored.price), str(stored.fee)) == (
                "0.010", "64123.40", "-0.0012",
            )  # exponents kept: stored as TEXT, never REAL


async def test_record_when_fill_is_recorded_twice_then_second_returns_false_and_one_is_stored(
    tmp_path: Path,
):
    with trio.fail_after(BOUND_S):
        async with open_journal(tmp_path / "j.sqlite") as journal:
            first = await journal.record(make_fill(1))
            again = await journal.record(make_fill(1))
            in_batch = await journal.record_many([make_fill(2), make_fill(2), make_fill(1)])

            assert (first, again, in_batch) == (True, False, [True, False, False])
            assert [r.fill.fill_id for r in await journal.fills()] == ["F1", "F2"]


async def test_record_when_funding_is_recorded_twice_then_second_returns_false(tmp_path: Path):
    with trio.fail_after(BOUND_S):
        async with open_journal(tmp_path / "j.sqlite") as journal:
            assert await journal.record(make_funding()) is True
            assert await journal.record(make_funding()) is False
            assert len(await journal.funding()) == 1


async def test_record_when_order_progresses_then_latest_state_wins(tmp_path: Path):
    with trio.fail_after(BOUND_S):
        async with open_journal(tmp_path / "j.sqlite") as journal:
            await journal.record(make_order(OrderStatus.OPEN))
            partial = make_order(OrderStatus.PARTIALLY_FILLED, filled_qty="0.2", ts_ns=T0 + 1)

            assert await journal.record(partial) is True
            assert await journal.record(partial) is False  # identical: nothing changed
            assert await journal.order("paper", "main", "c1") == partial
            assert await journal.open_orders() == [partial]


async def test_record_when_late_open_arrives_after_filled_then_order_stays_filled(
    tmp_path: Path,
):
    filled = make_order(OrderStatus.FILLED, filled_qty="0.500", ts_ns=T0 + 2)
    with trio.fail_after(BOUND_S):
        async with open_journal(tmp_path / "j.sqlite") as journal:
            await journal.record_many([make_order(OrderStatus.OPEN), filled])

            resurrected = await journal.record(make_order(OrderStatus.OPEN, ts_ns=T0 + 3))

            assert resurrected is False
            assert await journal.order("paper", "main", "c1") == filled
            assert await journal.open_orders() == []


async def test_trading_state_when_changed_twice_then_latest_is_returned(tmp_path: Path):
    with trio.fail_after(BOUND_S):
        async with open_journal(tmp_path / "j.sqlite") as journal:
            assert await journal.trading_state() is None
            await journal.record(make_state("halted", ts_ns=T0 + 5))
            await journal.record(make_state("active", ts_ns=T0 + 1))  # journal order, not ts

            assert await journal.trading_state() == make_state("active", ts_ns=T0 + 1)


# ---- filters ---------------------------------------------------------------------------------


async def test_fills_when_filtered_by_time_and_account_then_window_is_half_open(tmp_path: Path):
    fills = [make_fill(n, ts_ns=T0 + 10 * n, account="a" if n % 2 else "b") for n in range(6)]
    with trio.fail_after(BOUND_S):
        async with open_journal(tmp_path / "j.sqlite") as journal:
            assert await journal.last_fill_ts_ns("paper", "a") is None
            await journal.record_many(reversed(fills))  # arrival order does not matter

            window = await journal.fills(since_ns=T0 + 10, until_ns=T0 + 40)
            account_a = await journal.fills(since_ns=T0 + 20, account="a")

            assert [r.fill.fill_id for r in window] == ["F1", "F2", "F3"]
            assert [r.fill.fill_id for r in account_a] == ["F3", "F5"]
            assert await journal.last_fill_ts_ns("paper", "a") == T0 + 50
            assert await journal.last_fill_ts_ns("paper", "b") == T0 + 40
            assert await journal.last_fill_ts_ns("other", "a") is None
            assert await journal.fills(strategy="nobody") == []


async def test_events_when_filtered_by_kind_with_limit_then_newest_come_oldest_first(
    tmp_path: Path,
):
    events = [make_event(n, kind="actor_crashed" if n % 3 == 0 else "risk_denied")
              for n in range(10)]
    with trio.fail_after(BOUND_S):
        async with open_journal(tmp_path / "j.sqlite") as journal:
            await journal.record_many(events)

            crashes = await journal.events(kinds=["actor_crashed"])
            tail = await journal.events(since_ns=T0 + 2, limit=3)

            assert [e.ts_ns - T0 for e in crashes] == [0, 3, 6, 9]
            assert [e.ts_ns - T0 for e in tail] == [7, 8, 9]
            assert await journal.events(kinds=[]) == []


# ---- durability and settings -----------------------------------------------------------------


async def test_open_journal_when_reopened_then_everything_recorded_before_is_there(
    tmp_path: Path,
):
    path = tmp_path / "nested" / "j.sqlite"
    records = [make_order(OrderStatus.OPEN), make_fill(1), make_funding(), make_event(1),
               make_state("halted")]
    with trio.fail_after(BOUND_S):
        async with open_journal(path) as journal:
            for record in records:
                await journal.record(record)

        async with open_journal(path) as reopened:
            assert await reopened.open_orders() == [records[0]]
            assert await reopened.fills() == [records[1]]
            assert await reopened.funding() == [records[2]]
            assert await reopened.events() == [records[3]]
            assert await reopened.trading_state() == records[4]
            assert await reopened.record(make_fill(1)) is False  # still a duplicate


async def test_open_journal_when_opened_then_wal_and_synchronous_full_are_in_effect(
    tmp_path: Path,
):
    path = tmp_path / "j.sqlite"
    with trio.fail_after(BOUND_S):
        async with open_journal(path) as journal:
            settings = journal.settings
            other = sqlite3.connect(path)
            try:
                file_mode = other.execute("PRAGMA journal_mode").fetchone()[0]
                version = other.execute("PRAGMA user_version").fetchone()[0]
            finally:
                other.close()

    assert (settings.journal_mode, settings.synchronous) == ("wal", "full")
    assert (file_mode, version) == ("wal", actors.journal.SCHEMA_VERSION)


async def test_open_journal_when_file_has_newer_schema_then_schema_error(tmp_path: Path):
    path = tmp_path / "j.sqlite"
    JournalStore(path).close()
    other = sqlite3.connect(path)
    other.execute(f"PRAGMA user_version = {actors.journal.SCHEMA_VERSION + 1}")
    other.close()
    with trio.fail_after(BOUND_S), pytest.raises(JournalSchemaError, match="knows up to"):
        async with open_journal(path):
            pass


async def test_open_journal_when_file_is_not_sqlite_then_schema_error(tmp_path: Path):
    path = tmp_path / "j.sqlite"
    path.write_bytes(b"this is not a database, just some bytes " * 100)
    with trio.fail_after(BOUND_S), pytest.raises(JournalSchemaError, match="not an SQLite"):
        async with open_journal(path):
            pass


# ---- group commit ----------------------------------------------------------------------------


async def test_record_when_500_callers_record_at_once_then_far_fewer_batches_commit(
    tmp_path: Path,
):
    results: list[bool] = []

    async def record_one(journal: actors.journal.Journal, n: int) -> None:
        results.append(await journal.record(make_fill(n)))

    with trio.fail_after(BOUND_S):
        async with open_journal(tmp_path / "j.sqlite") as journal:
            async with trio.open_nursery() as nursery:
                for n in range(500):
                    nursery.start_soon(record_one, journal, n)
            stats = journal.statistics()
            stored = await journal.fills()

    assert results == [True] * 500 and len(stored) == 500
    assert stats.records_written == 500 and stats.pending == 0
    assert stats.batches_committed < 50


async def test_query_when_writer_is_stuck_mid_batch_then_answers_from_last_commit(
    tmp_path: Path,
):
    path = tmp_path / "j.sqlite"
    with trio.fail_after(BOUND_S):
        async with open_journal(path) as journal, trio.open_nursery() as nursery:
            await journal.record(make_fill(1))
            with write_lock_held(path):
                nursery.start_soon(journal.record_many, [make_fill(n) for n in range(2, 5002)])
                await settle(journal, in_flight=5000)

                with trio.fail_after(2):  # far below the 5 s busy timeout the writer waits out
                    during = await journal.fills()

            assert [r.fill.fill_id for r in during] == ["F1"]  # committed rows only
        assert journal.statistics().records_written == 5001


async def test_record_when_batch_fails_then_its_callers_get_error_and_later_batches_commit(
    tmp_path: Path,
):
    path = tmp_path / "j.sqlite"
    errors: list[BaseException] = []

    async def record_expecting_failure(journal: actors.journal.Journal, n: int) -> None:
        with pytest.raises(JournalWriteError) as info:
            await journal.record(make_fill(n))
        errors.append(info.value)

    with trio.fail_after(BOUND_S):
        async with open_journal(path, JournalConfig(busy_timeout_ms=50)) as journal:
            with write_lock_held(path):
                async with trio.open_nursery() as nursery:  # both join the same batch
                    nursery.start_soon(record_expecting_failure, journal, 1)
                    nursery.start_soon(record_expecting_failure, journal, 2)

            retried = await journal.record_many([make_fill(1), make_fill(2)])
            stats = journal.statistics()

    assert len(errors) == 2 and errors[0] is not errors[1]
    assert all(isinstance(e.__cause__, sqlite3.OperationalError) for e in errors)
    assert retried == [True, True]  # the failed batch left nothing behind
    assert (stats.batches_failed, stats.batches_committed, stats.records_written) == (1, 1, 2)


# ---- bad input, cancellation, closing --------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "error", "match"),
    [
        (make_fill(1).fill, TypeError, "got Fill"),
        (fill_with(qty=0.01), TypeError, "fill.qty must be Decimal, got float"),
        (fill_with(price=Decimal("NaN")), ValueError, "fill.price must be a finite"),
        (fill_with(ts_venue_ns=True), TypeError, "ts_venue_ns must be int, got bool"),
        (fill_with(ts_venue_ns=2**63), ValueError, "64-bit"),
        (msgspec.structs.replace(make_order(OrderStatus.OPEN), side="buy"), TypeError, "Side"),
        (make_state("paused"), ValueError, "state must be one of"),
        (msgspec.structs.replace(make_event(1), detail="not json"), ValueError, "JSON"),
    ],
)
async def test_record_when_record_is_malformed_then_refused_before_queueing(
    tmp_path: Path, record: object, error: type[Exception], match: str
):
    with trio.fail_after(BOUND_S):
        async with open_journal(tmp_path / "j.sqlite") as journal:
            with pytest.raises(error, match=match):
                await journal.record(record)
            with pytest.raises(error, match=match):
                await journal.record_many([make_fill(9), record])
            stats = journal.statistics()
            assert await journal.fills() == []
    assert (stats.pending, stats.records_written, stats.batches_committed) == (0, 0, 0)


async def test_record_when_caller_is_cancelled_after_queueing_then_record_is_still_written(
    tmp_path: Path,
):
    path = tmp_path / "j.sqlite"
    with trio.fail_after(BOUND_S):
        async with open_journal(path) as journal:
            with write_lock_held(path):  # the batch cannot commit until the lock goes
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(journal.record, make_fill(1))
                    await settle(journal, in_flight=1)
                    nursery.cancel_scope.cancel()
                assert journal.statistics().in_flight == 1  # the caller left; the write did not

        async with open_journal(path) as reopened:
            assert [r.fill.fill_id for r in await reopened.fills()] == ["F1"]


async def test_open_journal_when_block_is_cancelled_with_records_queued_then_they_commit(
    tmp_path: Path,
):
    path = tmp_path / "j.sqlite"
    results: list[bool] = []

    async def record_one(journal: actors.journal.Journal, n: int) -> None:
        results.append(await journal.record(make_fill(n)))

    async def release_soon(lock: sqlite3.Connection) -> None:
        await trio.sleep(0.05)  # by then the block has been cancelled and is closing
        lock.execute("ROLLBACK")

    JournalStore(path).close()  # migrated before the lock is taken
    lock = sqlite3.connect(path, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    with trio.fail_after(BOUND_S):
        async with trio.open_nursery() as callers:  # the callers outlive the journal's block
            with trio.CancelScope() as block:
                async with open_journal(path) as journal:
                    callers.start_soon(record_one, journal, 0)
                    await settle(journal, in_flight=1)  # stuck behind the lock
                    for n in range(1, 50):
                        callers.start_soon(record_one, journal, n)
                    await trio.testing.wait_all_tasks_blocked()
                    assert journal.statistics().pending == 49  # queued, not yet taken
                    callers.start_soon(release_soon, lock)
                    block.cancel()
                    await trio.sleep_forever()
        lock.close()

        with pytest.raises(JournalClosedError):
            await journal.record(make_fill(99))
        with pytest.raises(JournalClosedError):
            await journal.fills()
        async with open_journal(path) as reopened:
            stored = await reopened.fills()

    assert sorted(results) == [True] * 50 and len(stored) == 50


def test_write_batch_when_a_statement_fails_midway_then_nothing_of_the_batch_is_kept(
    tmp_path: Path,
):
    store = JournalStore(tmp_path / "j.sqlite")
    try:
        saboteur = sqlite3.connect(store.path, isolation_level=None)
        saboteur.execute(
            "CREATE TRIGGER refuse_f3 BEFORE INSERT ON fills WHEN NEW.fill_id = 'F3' "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
        with pytest.raises(sqlite3.IntegrityError, match="refused"):
            store.write_batch([make_fill(1), make_fill(2), make_fill(3)])
        assert store.fills() == []

        saboteur.execute("DROP TRIGGER refuse_f3")
        saboteur.close()
        result = store.write_batch([make_fill(1), make_fill(3), make_fill(1)])

        assert result.changed == (True, True, False)
        assert [r.fill.fill_id for r in store.fills()] == ["F1", "F3"]
    finally:
        store.close()


def test_journal_exports_when_read_then_sorted_and_complete():
    exported = list(actors.journal.__all__)
    public = {name for name in vars(actors.journal) if not name.startswith("_")}
    assert exported == sorted(exported, key=lambda n: (not n.isupper(), n))
    assert set(exported) == public
