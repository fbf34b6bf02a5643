"""AsterBookSync: the documented snapshot + buffered diff + `pu` procedure (venues.md §1.7)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from exchanges import SyncResult
from exchanges.aster import AsterBookSync, AsterDepthUpdate

Level = tuple[Decimal, Decimal]


def lv(price: str, qty: str) -> Level:
    return (Decimal(price), Decimal(qty))


def ev(first: int, final: int, prev: int, bids: tuple[Level, ...] = (),
       asks: tuple[Level, ...] = ()) -> AsterDepthUpdate:
    return AsterDepthUpdate(symbol="BTCUSDT", first_update_id=first, final_update_id=final,
                            prev_final_update_id=prev, bids=bids, asks=asks,
                            ts_event_ms=1, ts_transaction_ms=1)


SNAP_BIDS = (lv("100", "1"), lv("99", "2"))
SNAP_ASKS = (lv("101", "1"), lv("102", "2"))


def synced() -> AsterBookSync:
    """Snapshot at 100, bridged by event [95, 105]."""
    sync = AsterBookSync()
    sync.on_update(ev(95, 105, 94))
    assert sync.on_snapshot(100, SNAP_BIDS, SNAP_ASKS) is SyncResult.APPLIED
    return sync


def top(sync: AsterBookSync) -> tuple[Level | None, Level | None]:
    return sync.book.best_bid(), sync.book.best_ask()


def test_on_update_when_no_snapshot_then_buffered_and_book_empty():
    sync = AsterBookSync()

    assert sync.on_update(ev(1, 2, 0, bids=(lv("100", "1"),))) is SyncResult.BUFFERED
    assert sync.buffered == 1
    assert not sync.is_synced
    assert top(sync) == (None, None)


def test_on_snapshot_when_buffer_in_order_then_stale_dropped_and_rest_applied():
    sync = AsterBookSync()
    sync.on_update(ev(80, 90, 79, bids=(lv("50", "9"),)))  # u < lastUpdateId: dropped
    sync.on_update(ev(91, 99, 90, bids=(lv("51", "9"),)))  # dropped
    sync.on_update(ev(95, 105, 99, bids=(lv("100", "3"),)))  # U <= 100 <= u: first
    sync.on_update(ev(106, 110, 105, asks=(lv("101", "0"),)))

    result = sync.on_snapshot(100, SNAP_BIDS, SNAP_ASKS)

    assert result is SyncResult.APPLIED
    assert sync.last_update_id == 110
    assert sync.buffered == 0
    assert top(sync) == (lv("100", "3"), lv("102", "2"))
    assert sync.book.depth(5)[0] == (lv("100", "3"), lv("99", "2"))


def test_on_snapshot_when_event_ends_exactly_at_last_update_id_then_it_bridges():
    sync = AsterBookSync()
    sync.on_update(ev(95, 100, 94, bids=(lv("100", "4"),)))

    assert sync.on_snapshot(100, SNAP_BIDS, SNAP_ASKS) is SyncResult.APPLIED
    assert sync.last_update_id == 100
    assert sync.book.best_bid() == lv("100", "4")


def test_on_snapshot_when_before_any_update_then_book_loaded_and_next_event_must_bridge():
    sync = AsterBookSync()

    assert sync.on_snapshot(100, SNAP_BIDS, SNAP_ASKS) is SyncResult.APPLIED
    assert top(sync) == (lv("100", "1"), lv("101", "1"))
    assert sync.on_update(ev(90, 99, 89)) is SyncResult.IGNORED  # u < lastUpdateId
    assert sync.on_update(ev(98, 103, 99, asks=(lv("101", "5"),))) is SyncResult.APPLIED
    assert sync.on_update(ev(104, 104, 103)) is SyncResult.APPLIED
    assert sync.last_update_id == 104
    assert sync.book.best_ask() == lv("101", "5")


def test_on_snapshot_when_first_event_starts_after_last_update_id_then_resync_and_buffer_kept():
    sync = AsterBookSync()
    sync.on_update(ev(101, 105, 100))  # U > lastUpdateId: the snapshot is too old
    sync.on_update(ev(106, 110, 105))

    result = sync.on_snapshot(100, SNAP_BIDS, SNAP_ASKS)

    assert result is SyncResult.RESYNC_NEEDED
    assert not sync.is_synced
    assert top(sync) == (None, None)
    assert sync.buffered == 2
    # A newer snapshot joins the kept events.
    assert sync.on_snapshot(107, SNAP_BIDS, SNAP_ASKS) is SyncResult.APPLIED
    assert sync.last_update_id == 110


def test_on_update_when_first_event_starts_right_after_snapshot_then_resync_per_doc():
    # The doc's rule is `U <= lastUpdateId`; the event ending at lastUpdateId was missed.
    sync = AsterBookSync()
    sync.on_snapshot(100, SNAP_BIDS, SNAP_ASKS)

    assert sync.on_update(ev(101, 103, 100)) is SyncResult.RESYNC_NEEDED


def test_on_update_when_in_sequence_then_applied_and_top_follows():
    sync = synced()

    assert sync.on_update(ev(106, 108, 105, bids=(lv("100.5", "7"),))) is SyncResult.APPLIED
    assert sync.on_update(ev(109, 109, 108, asks=(lv("101", "0"),))) is SyncResult.APPLIED

    book_top = sync.book.top("aster", "BTCUSDT", 11, 12)
    assert book_top is not None
    assert (book_top.bid, book_top.bid_qty) == lv("100.5", "7")
    assert (book_top.ask, book_top.ask_qty) == lv("102", "2")


def test_on_update_when_pu_gap_then_resync_needed_and_book_cleared():
    sync = synced()

    result = sync.on_update(ev(110, 112, 109))  # pu 109 != previous u 105

    assert result is SyncResult.RESYNC_NEEDED
    assert not sync.is_synced
    assert top(sync) == (None, None)
    assert sync.buffered == 1  # the breaking event may bridge the next snapshot
    assert sync.on_update(ev(113, 115, 112)) is SyncResult.BUFFERED


def test_on_update_when_duplicate_event_then_resync_needed_as_the_doc_allows_no_exception():
    sync = synced()
    sync.on_update(ev(106, 108, 105))

    assert sync.on_update(ev(106, 108, 105)) is SyncResult.RESYNC_NEEDED


def test_on_update_when_book_crosses_then_resync_needed_and_book_cleared():
    sync = synced()

    result = sync.on_update(ev(106, 108, 105, bids=(lv("101.5", "1"),)))

    assert result is SyncResult.RESYNC_NEEDED
    assert top(sync) == (None, None)


def test_on_snapshot_when_snapshot_crossed_then_resync_needed():
    sync = AsterBookSync()

    result = sync.on_snapshot(100, (lv("102", "1"),), SNAP_ASKS)

    assert result is SyncResult.RESYNC_NEEDED
    assert not sync.is_synced


def test_on_snapshot_when_buffer_has_internal_gap_then_resync_and_events_from_gap_kept():
    sync = AsterBookSync()
    sync.on_update(ev(95, 105, 94))
    sync.on_update(ev(107, 110, 106))  # pu 106 != 105
    sync.on_update(ev(111, 112, 110))

    assert sync.on_snapshot(100, SNAP_BIDS, SNAP_ASKS) is SyncResult.RESYNC_NEEDED
    assert sync.buffered == 2


def test_on_update_when_buffer_overflows_then_resync_needed_and_buffer_restarted():
    sync = AsterBookSync(max_buffered=3)
    for i in range(3):
        assert sync.on_update(ev(i, i, i - 1)) is SyncResult.BUFFERED

    assert sync.on_update(ev(3, 3, 2)) is SyncResult.RESYNC_NEEDED
    assert sync.buffered == 1


def test_on_snapshot_when_given_while_synced_then_book_replaced_and_bridging_restarts():
    sync = synced()

    assert sync.on_snapshot(200, (lv("90", "1"),), (lv("91", "1"),)) is SyncResult.APPLIED
    assert top(sync) == (lv("90", "1"), lv("91", "1"))
    assert sync.on_update(ev(106, 108, 105)) is SyncResult.IGNORED
    assert sync.on_update(ev(199, 201, 198)) is SyncResult.APPLIED


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
    states = []  # the venue's book after each event, for the snapshot
    events = []
    final = 1000
    for span, bids, asks in steps:
        asks = [(price + 50, qty) for price, qty in asks]
        events.append(ev(final + 1, final + span, final, tuple(bids), tuple(asks)))
        final += span
        for ref, levels in ((ref_bids, bids), (ref_asks, asks)):
            for price, qty in levels:
                if qty == 0:
                    ref.pop(price, None)
                else:
                    ref[price] = qty
        states.append((list(ref_bids.items()), list(ref_asks.items())))
    # Subscribe before event `start`, snapshot after event `snap`, buffer up to event `cut`.
    snap = data.draw(st.integers(min_value=0, max_value=len(events) - 1))
    start = data.draw(st.integers(min_value=0, max_value=snap))
    cut = data.draw(st.integers(min_value=snap + 1, max_value=len(events)))
    sync = AsterBookSync()

    for event in events[start:cut]:
        assert sync.on_update(event) is SyncResult.BUFFERED
    snapshot_bids, snapshot_asks = states[snap]
    result = sync.on_snapshot(events[snap].final_update_id, snapshot_bids, snapshot_asks)
    assert result is SyncResult.APPLIED
    for event in events[cut:]:
        assert sync.on_update(event) is SyncResult.APPLIED

    assert sync.last_update_id == final
    assert sync.book.depth(1000) == (tuple(sorted(ref_bids.items(), reverse=True)),
                                     tuple(sorted(ref_asks.items())))
