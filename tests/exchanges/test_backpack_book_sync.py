"""BackpackBookSync: REST snapshot + `depth` diffs chained by `U == previous u + 1` (§2.5)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from exchanges import SyncResult
from exchanges.backpack import BackpackBookSync, BackpackDepthUpdate

Level = tuple[Decimal, Decimal]


def lv(price: str, qty: str) -> Level:
    return (Decimal(price), Decimal(qty))


def ev(first: int, final: int, bids: tuple[Level, ...] = (),
       asks: tuple[Level, ...] = ()) -> BackpackDepthUpdate:
    return BackpackDepthUpdate(symbol="SOL_USDC", first_update_id=first, final_update_id=final,
                               bids=bids, asks=asks, ts_event_us=1, ts_engine_us=1)


SNAP_BIDS = (lv("18.67", "1"), lv("18.66", "2"))
SNAP_ASKS = (lv("18.70", "1"), lv("18.71", "2"))


def synced() -> BackpackBookSync:
    """Snapshot at 100, then event 101 applied."""
    sync = BackpackBookSync()
    sync.on_update(ev(101, 101))
    assert sync.on_snapshot(100, SNAP_BIDS, SNAP_ASKS) is SyncResult.APPLIED
    return sync


def top(sync: BackpackBookSync) -> tuple[Level | None, Level | None]:
    return sync.book.best_bid(), sync.book.best_ask()


def test_on_update_when_no_snapshot_then_buffered_and_book_empty():
    sync = BackpackBookSync()

    assert sync.on_update(ev(1, 1, bids=(lv("18", "1"),))) is SyncResult.BUFFERED
    assert sync.buffered == 1
    assert top(sync) == (None, None)


def test_on_snapshot_when_buffer_in_order_then_covered_dropped_and_rest_applied():
    sync = BackpackBookSync()
    sync.on_update(ev(99, 99, bids=(lv("1", "9"),)))  # u <= lastUpdateId: in the snapshot
    sync.on_update(ev(100, 100, bids=(lv("2", "9"),)))  # likewise
    sync.on_update(ev(101, 101, bids=(lv("18.67", "3"),)))  # U == lastUpdateId + 1
    sync.on_update(ev(102, 102, asks=(lv("18.70", "0"),)))

    result = sync.on_snapshot(100, SNAP_BIDS, SNAP_ASKS)

    assert result is SyncResult.APPLIED
    assert sync.last_update_id == 102
    assert sync.buffered == 0
    assert sync.book.depth(5) == ((lv("18.67", "3"), lv("18.66", "2")), (lv("18.71", "2"),))


def test_on_snapshot_when_event_straddles_last_update_id_then_it_bridges():
    sync = BackpackBookSync()
    sync.on_update(ev(95, 105, bids=(lv("18.67", "4"),)))  # aggregated stream

    assert sync.on_snapshot(100, SNAP_BIDS, SNAP_ASKS) is SyncResult.APPLIED
    assert sync.last_update_id == 105
    assert sync.book.best_bid() == lv("18.67", "4")


def test_on_snapshot_when_before_any_update_then_book_loaded_and_next_event_chains():
    sync = BackpackBookSync()

    assert sync.on_snapshot(100, SNAP_BIDS, SNAP_ASKS) is SyncResult.APPLIED
    assert top(sync) == (lv("18.67", "1"), lv("18.70", "1"))
    assert sync.on_update(ev(100, 100)) is SyncResult.IGNORED  # u <= lastUpdateId
    assert sync.on_update(ev(101, 101, asks=(lv("18.69", "5"),))) is SyncResult.APPLIED
    assert sync.on_update(ev(102, 102)) is SyncResult.APPLIED
    assert sync.book.best_ask() == lv("18.69", "5")


def test_on_snapshot_when_first_event_skips_past_snapshot_then_resync_and_buffer_kept():
    sync = BackpackBookSync()
    sync.on_update(ev(102, 102))  # 101 was never seen
    sync.on_update(ev(103, 103))

    assert sync.on_snapshot(100, SNAP_BIDS, SNAP_ASKS) is SyncResult.RESYNC_NEEDED
    assert top(sync) == (None, None)
    assert sync.buffered == 2
    assert sync.on_snapshot(101, SNAP_BIDS, SNAP_ASKS) is SyncResult.APPLIED
    assert sync.last_update_id == 103


def test_on_update_when_in_sequence_then_applied_and_top_follows():
    sync = synced()

    assert sync.on_update(ev(102, 102, bids=(lv("18.68", "7"),))) is SyncResult.APPLIED
    assert sync.on_update(ev(103, 103, asks=(lv("18.70", "0"),))) is SyncResult.APPLIED

    book_top = sync.book.top("backpack", "SOL_USDC", 11, 12)
    assert book_top is not None
    assert (book_top.bid, book_top.ask) == (Decimal("18.68"), Decimal("18.71"))


def test_on_update_when_u_gap_then_resync_needed_and_book_cleared():
    sync = synced()

    result = sync.on_update(ev(103, 103))  # previous u is 101

    assert result is SyncResult.RESYNC_NEEDED
    assert not sync.is_synced
    assert top(sync) == (None, None)
    assert sync.buffered == 1
    assert sync.on_update(ev(104, 104)) is SyncResult.BUFFERED


def test_on_update_when_duplicate_event_then_resync_needed_as_the_doc_allows_no_exception():
    sync = synced()

    assert sync.on_update(ev(101, 101)) is SyncResult.RESYNC_NEEDED


def test_on_update_when_book_crosses_then_resync_needed_and_book_cleared():
    sync = synced()

    assert sync.on_update(ev(102, 102, asks=(lv("18.60", "1"),))) is SyncResult.RESYNC_NEEDED
    assert top(sync) == (None, None)


def test_on_update_when_buffer_overflows_then_resync_needed_and_buffer_restarted():
    sync = BackpackBookSync(max_buffered=2)
    sync.on_update(ev(1, 1))
    sync.on_update(ev(2, 2))

    assert sync.on_update(ev(3, 3)) is SyncResult.RESYNC_NEEDED
    assert sync.buffered == 1


_levels = st.lists(
    st.tuples(st.integers(min_value=1, max_value=20).map(Decimal),
              st.sampled_from([Decimal(0), Decimal(1), Decimal(3)])),
    max_size=4)


@given(st.lists(st.tuples(st.integers(min_value=1, max_value=5), _levels, _levels),
                min_size=1, max_size=25),
       st.data())
def test_on_update_when_random_valid_sequence_then_book_matches_reference(
        steps: list[tuple[int, list[Level], list[Level]]], data: st.DataObject):
    # Bids live below 50 and asks above, so a valid sequence never crosses.
    ref_bids: dict[Decimal, Decimal] = {Decimal(10): Decimal(1)}
    ref_asks: dict[Decimal, Decimal] = {Decimal(60): Decimal(1)}
    states = [(list(ref_bids.items()), list(ref_asks.items()))]  # the venue's book per id
    events = []
    final = 1000
    for span, bids, asks in steps:
        asks = [(price + 50, qty) for price, qty in asks]
        events.append(ev(final + 1, final + span, tuple(bids), tuple(asks)))
        final += span
        for ref, levels in ((ref_bids, bids), (ref_asks, asks)):
            for price, qty in levels:
                if qty == 0:
                    ref.pop(price, None)
                else:
                    ref[price] = qty
        states.append((list(ref_bids.items()), list(ref_asks.items())))
    # Snapshot after `snap` events; subscribe before event `start`; buffer up to event `cut`.
    snap = data.draw(st.integers(min_value=0, max_value=len(events)))
    start = data.draw(st.integers(min_value=0, max_value=snap))
    cut = data.draw(st.integers(min_value=snap, max_value=len(events)))
    snapshot_id = 1000 if snap == 0 else events[snap - 1].final_update_id
    sync = BackpackBookSync()

    for event in events[start:cut]:
        assert sync.on_update(event) is SyncResult.BUFFERED
    assert sync.on_snapshot(snapshot_id, *states[snap]) is SyncResult.APPLIED
    for event in events[cut:]:
        assert sync.on_update(event) is SyncResult.APPLIED

    assert sync.last_update_id == final
    assert sync.book.depth(1000) == (tuple(sorted(ref_bids.items(), reverse=True)),
                                     tuple(sorted(ref_asks.items())))
