"""LocalBook: absolute levels, lazy best prices, crossed detection (exchanges/_local_book.py)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from exchanges import BookTop, LocalBook


def d(text: str) -> Decimal:
    return Decimal(text)


def lv(price: str, qty: str) -> tuple[Decimal, Decimal]:
    return (d(price), d(qty))


def test_top_when_both_sides_present_then_best_bid_and_ask():
    book = LocalBook()

    book.apply_levels([lv("99", "1"), lv("100", "2")], [lv("102", "4"), lv("101", "3")])

    assert book.top("aster", "BTCUSDT", 5, 7) == BookTop(
        venue="aster", symbol="BTCUSDT", bid=d("100"), bid_qty=d("2"), ask=d("101"),
        ask_qty=d("3"), ts_venue_ns=5, ts_local_ns=7)


def test_top_when_a_side_is_empty_then_none():
    book = LocalBook()
    book.apply_levels([lv("100", "1")], [])

    assert book.top("aster", "BTCUSDT", 0, 0) is None
    assert book.best_ask() is None


def test_apply_levels_when_qty_zero_then_level_deleted_and_best_recomputed():
    book = LocalBook()
    book.apply_levels([lv("100", "1"), lv("99", "1")], [lv("101", "1"), lv("102", "1")])

    book.apply_levels([lv("100", "0")], [lv("101", "0.000")])

    assert book.best_bid() == lv("99", "1")
    assert book.best_ask() == lv("102", "1")


def test_apply_levels_when_deleting_missing_level_then_no_change():
    book = LocalBook()
    book.apply_levels([lv("100", "1")], [lv("101", "1")])

    book.apply_levels([lv("98", "0")], [lv("105", "0")])

    assert book.depth(10) == ((lv("100", "1"),), (lv("101", "1"),))


def test_apply_levels_when_qty_replaced_then_absolute_not_added():
    book = LocalBook()
    book.apply_levels([lv("100", "1")], [])

    book.apply_levels([lv("100", "5")], [])

    assert book.best_bid() == lv("100", "5")


def test_apply_levels_when_insert_after_best_deleted_then_best_is_true_max():
    book = LocalBook()
    book.apply_levels([lv("100", "1"), lv("98", "1")], [])
    book.apply_levels([lv("100", "0"), lv("97", "1")], [])  # best stale; 97 must not win

    assert book.best_bid() == lv("98", "1")


def test_depth_when_asked_then_sorted_from_the_top():
    book = LocalBook()
    book.apply_levels([lv("98", "1"), lv("100", "2"), lv("99", "3")],
                      [lv("103", "1"), lv("101", "2"), lv("102", "3")])

    bids, asks = book.depth(2)

    assert bids == (lv("100", "2"), lv("99", "3"))
    assert asks == (lv("101", "2"), lv("102", "3"))


def test_is_crossed_when_bid_meets_ask_then_true_and_top_none():
    book = LocalBook()
    book.apply_levels([lv("100", "1")], [lv("101", "1")])
    assert not book.is_crossed()

    book.apply_levels([lv("101", "1")], [])

    assert book.is_crossed()
    assert book.top("aster", "BTCUSDT", 0, 0) is None


def test_clear_when_called_then_empty():
    book = LocalBook()
    book.apply_levels([lv("100", "1")], [lv("101", "1")])

    book.clear()

    assert book.best_bid() is None
    assert book.best_ask() is None
    assert book.depth(5) == ((), ())


_prices = st.integers(min_value=1, max_value=40).map(Decimal)
_qtys = st.sampled_from([Decimal(0), Decimal(0), Decimal(1), Decimal("2.5"), Decimal(7)])
_side = st.lists(st.tuples(_prices, _qtys), max_size=8)


@given(st.lists(st.tuples(_side, _side), max_size=30))
def test_apply_levels_when_random_updates_then_matches_reference_dicts(
        updates: list[tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]]):
    book = LocalBook()
    ref_bids: dict[Decimal, Decimal] = {}
    ref_asks: dict[Decimal, Decimal] = {}
    for bids, asks in updates:
        book.apply_levels(bids, asks)
        for ref, levels in ((ref_bids, bids), (ref_asks, asks)):
            for price, qty in levels:
                if qty == 0:
                    ref.pop(price, None)
                else:
                    ref[price] = qty
        # Reading in between exercises the lazy recomputation.
        best_bid = max(ref_bids) if ref_bids else None
        best_ask = min(ref_asks) if ref_asks else None
        assert book.best_bid() == (None if best_bid is None else (best_bid, ref_bids[best_bid]))
        assert book.best_ask() == (None if best_ask is None else (best_ask, ref_asks[best_ask]))

    assert book.depth(100) == (tuple(sorted(ref_bids.items(), reverse=True)),
                               tuple(sorted(ref_asks.items())))
