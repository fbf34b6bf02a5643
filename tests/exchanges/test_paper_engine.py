"""The paper matching engine: its rules at their boundaries, and invariants under random flow.

The engine is pure (no trio), so these tests drive it directly with explicit timestamps.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchanges import (
    Fill,
    FundingPayment,
    Instrument,
    Liquidity,
    OrderRequest,
    OrderStatus,
    OrderType,
    RejectReason,
    Side,
    TimeInForce,
    VenueOrder,
    VenueRejectedError,
)
from exchanges.paper import Effect as PaperEffect
from exchanges.paper import FeeSchedule, Ledger, Level, MatchingEngine

D = Decimal
BTC = Instrument(
    venue="paper", symbol="BTC-PERP", base="BTC", quote="USDT", tick_size=D("0.5"),
    step_size=D("0.001"), min_qty=D("0.001"), min_notional=D(5),
)
FEES = FeeSchedule(maker_rate=D("0.0001"), taker_rate=D("0.00035"))
START_BALANCE = D(100_000)


def make_engine(balance: Decimal = START_BALANCE) -> tuple[MatchingEngine, list[PaperEffect]]:
    effects: list[PaperEffect] = []
    engine = MatchingEngine("paper", [BTC], Ledger("paper", "USDT"), fees=FEES,
                            on_effect=effects.append)
    engine.deposit("a", "USDT", balance, 0)
    engine.on_book("BTC-PERP", *book_around(D(60000)), 1)
    return engine, effects


def book_around(mid: Decimal, levels: int = 5, qty: str = "1") -> tuple[list[Level], list[Level]]:
    bids = [Level(mid - D("0.5") * (i + 1), D(qty)) for i in range(levels)]
    asks = [Level(mid + D("0.5") * (i + 1), D(qty)) for i in range(levels)]
    return bids, asks


def order(client_id: str, side: Side, qty: str, price: str | None = None,
          tif: TimeInForce = TimeInForce.GTC, reduce_only: bool = False) -> OrderRequest:
    return OrderRequest(
        client_id=client_id, symbol="BTC-PERP", side=side,
        order_type=OrderType.LIMIT if price is not None else OrderType.MARKET,
        qty=D(qty), price=None if price is None else D(price), tif=tif,
        reduce_only=reduce_only,
    )


def fills_of(effects: list[PaperEffect]) -> list[Fill]:
    return [e for e in effects if isinstance(e, Fill)]


# ---- rules at their boundaries ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (order("x", Side.BUY, "0.01", "59990.3"), RejectReason.PRICE_TICK),
        (order("x", Side.BUY, "0.0105", "59990"), RejectReason.QTY_STEP),
        (order("x", Side.BUY, "0", "59990"), RejectReason.QTY_STEP),
        (order("x", Side.BUY, "0.00008", "59990"), RejectReason.QTY_STEP),
        (order("x", Side.BUY, "0.001", "4000"), RejectReason.MIN_NOTIONAL),
        (order("x", Side.BUY, "0.01", "60000.5", TimeInForce.POST_ONLY),
         RejectReason.POST_ONLY_WOULD_TAKE),
        (order("x", Side.SELL, "0.01", "59999.5", TimeInForce.POST_ONLY),
         RejectReason.POST_ONLY_WOULD_TAKE),
        (order("x", Side.SELL, "0.01", reduce_only=True), RejectReason.REDUCE_ONLY_WOULD_INCREASE),
        (order("x", Side.BUY, "20", "59000"), RejectReason.INSUFFICIENT_MARGIN),
    ],
)
def test_place_when_a_rule_is_broken_then_rejected_with_reason_and_nothing_changes(
    request_: OrderRequest, reason: RejectReason
):
    engine, effects = make_engine()
    before = list(effects)
    with pytest.raises(VenueRejectedError) as info:
        engine.place("a", request_, 2)
    assert info.value.reason is reason
    assert effects == before and engine.ledger.open_orders("a") == []


def test_place_when_exactly_at_the_boundaries_then_accepted():
    engine, _ = make_engine()
    # min notional exactly (5 = 0.001 × 5000), post-only one tick off the touch
    assert engine.place("a", order("n", Side.BUY, "0.001", "5000"), 2).status is OrderStatus.OPEN
    rested = engine.place("a", order("p", Side.BUY, "0.01", "59999.5", TimeInForce.POST_ONLY), 2)
    assert rested.status is OrderStatus.OPEN


def test_place_when_client_id_already_open_then_duplicate_rejected():
    engine, _ = make_engine()
    engine.place("a", order("dup", Side.BUY, "0.01", "59000"), 2)
    with pytest.raises(VenueRejectedError) as info:
        engine.place("a", order("dup", Side.BUY, "0.01", "59000"), 3)
    assert info.value.reason is RejectReason.DUPLICATE_CLIENT_ID


def test_market_order_when_larger_than_top_level_then_walks_the_book_as_taker():
    engine, effects = make_engine()
    result = engine.place("a", order("m", Side.BUY, "2.5"), 2)
    fills = fills_of(effects)
    assert [(f.price, f.qty) for f in fills] == [
        (D("60000.5"), D(1)), (D("60001.0"), D(1)), (D("60001.5"), D("0.5")),
    ]
    assert all(f.liquidity is Liquidity.TAKER for f in fills)
    assert result.status is OrderStatus.FILLED and result.filled_qty == D("2.5")
    assert engine.ledger.positions("a")[0].qty == D("2.5")


def test_ioc_when_only_part_crosses_then_rest_expires():
    engine, _ = make_engine()
    result = engine.place("a", order("i", Side.BUY, "1.5", "60000.5", TimeInForce.IOC), 2)
    assert result.status is OrderStatus.EXPIRED and result.filled_qty == D(1)
    assert engine.ledger.open_orders("a") == []


def test_gtc_limit_when_it_crosses_then_takes_and_rests_the_remainder():
    engine, _ = make_engine()
    result = engine.place("a", order("g", Side.BUY, "1.5", "60000.5"), 2)
    assert result.status is OrderStatus.PARTIALLY_FILLED and result.filled_qty == D(1)
    assert [o.client_id for o in engine.ledger.open_orders("a")] == ["g"]


def test_resting_order_when_market_trades_through_it_then_fills_as_maker_at_its_price():
    engine, effects = make_engine()
    engine.place("a", order("r", Side.BUY, "0.5", "59998"), 2)
    engine.on_trade("BTC-PERP", D("59998"), D(5), Side.SELL, 3)  # at our price: not through
    assert fills_of(effects) == []
    engine.on_trade("BTC-PERP", D("59997.5"), D("0.2"), Side.SELL, 4)
    engine.on_trade("BTC-PERP", D("59997"), D(5), Side.SELL, 5)
    fills = fills_of(effects)
    assert [(f.qty, f.price, f.liquidity) for f in fills] == [
        (D("0.2"), D("59998"), Liquidity.MAKER), (D("0.3"), D("59998"), Liquidity.MAKER),
    ]
    assert fills[0].fee == D("59998") * D("0.2") * FEES.maker_rate


def test_resting_order_when_book_moves_across_it_then_fills():
    engine, effects = make_engine()
    engine.place("a", order("s", Side.SELL, "0.5", "60010"), 2)
    engine.on_book("BTC-PERP", *book_around(D(60020)), 3)
    assert fills_of(effects)[-1].price == D(60010)
    assert engine.ledger.open_orders("a") == []


def test_reduce_only_when_position_smaller_than_order_then_never_flips():
    engine, effects = make_engine()
    engine.place("a", order("open", Side.BUY, "0.3"), 2)
    engine.place("a", order("close", Side.SELL, "0.01", "60100", reduce_only=True), 3)
    engine.place("a", order("big", Side.SELL, "1", reduce_only=True), 4)  # market, capped
    assert engine.ledger.positions("a") == []
    engine.on_book("BTC-PERP", *book_around(D(60200)), 5)  # would cross "close"
    assert engine.ledger.positions("a") == []
    assert [o.status for o in effects if isinstance(o, VenueOrder) and o.client_id == "close"][
        -1] is OrderStatus.EXPIRED


def test_funding_when_long_and_rate_positive_then_long_pays():
    engine, effects = make_engine()
    engine.place("a", order("l", Side.BUY, "1"), 2)
    engine.pay_funding("BTC-PERP", D(60000), D("0.0001"), 3)
    [payment] = [e for e in effects if isinstance(e, FundingPayment)]
    assert payment.amount == D(-6)


# ---- invariants under random order flow ------------------------------------------------------

prices = st.integers(min_value=119_900, max_value=120_100).map(lambda n: D(n) / 2)
quantities = st.integers(min_value=1, max_value=3000).map(lambda n: D(n) / 1000)
operations = st.one_of(
    st.tuples(st.just("limit"), st.sampled_from(list(Side)), quantities, prices,
              st.sampled_from(list(TimeInForce)), st.booleans()),
    st.tuples(st.just("market"), st.sampled_from(list(Side)), quantities, st.booleans()),
    st.tuples(st.just("book"), prices),
    st.tuples(st.just("trade"), prices, quantities, st.sampled_from(list(Side))),
    st.tuples(st.just("funding"), st.integers(min_value=-10, max_value=10)),
    st.tuples(st.just("cancel_all")),
)


def run_flow(ops: list[tuple[object, ...]]) -> tuple[MatchingEngine, list[PaperEffect]]:
    engine, effects = make_engine(D(1_000_000))
    for n, op in enumerate(ops, start=10):
        kind = op[0]
        try:
            if kind == "limit":
                _, side, qty, price, tif, reduce_only = op
                engine.place("a", order(f"o{n}", side, str(qty), str(price), tif, reduce_only), n)
            elif kind == "market":
                _, side, qty, reduce_only = op
                engine.place("a", order(f"o{n}", side, str(qty), reduce_only=reduce_only), n)
            elif kind == "book":
                engine.on_book("BTC-PERP", *book_around(op[1]), n)
            elif kind == "trade":
                _, price, qty, aggressor = op
                engine.on_trade("BTC-PERP", price, qty, aggressor, n)
            elif kind == "funding":
                engine.pay_funding("BTC-PERP", D(60000), D(op[1]) / 10_000, n)
            else:
                engine.cancel_all("a", None, n)
        except VenueRejectedError:
            pass
    return engine, effects


@settings(max_examples=150, deadline=None)
@given(st.lists(operations, max_size=60))
def test_engine_invariants_hold_under_random_order_flow(ops):
    engine, effects = run_flow(ops)
    fills = fills_of(effects)
    account = engine.ledger.account("a")
    position = account.positions.get("BTC-PERP")
    position_qty = D(0) if position is None else position.qty
    # position equals the signed sum of fills
    assert position_qty == sum((f.qty * f.side.sign for f in fills), D(0))
    # fees are exact
    for fill in fills:
        rate = FEES.maker_rate if fill.liquidity is Liquidity.MAKER else FEES.taker_rate
        assert fill.fee == fill.price * fill.qty * rate
    # a post-only order never takes
    post_only = {e.client_id for e in effects
                 if isinstance(e, VenueOrder) and e.tif is TimeInForce.POST_ONLY}
    assert all(f.liquidity is Liquidity.MAKER for f in fills if f.client_id in post_only)
    # balances are conserved: only realized PnL, fees and funding move money
    realized = D(0) if position is None else position.realized_pnl
    funding = sum((e.amount for e in effects if isinstance(e, FundingPayment)), D(0))
    fees = sum((f.fee for f in fills), D(0))
    assert account.balances["USDT"] == D(1_000_000) + realized - fees + funding
    # no order fills beyond its quantity; open orders are exactly the non-terminal ones
    last_state: dict[str, VenueOrder] = {}
    for effect in effects:
        if isinstance(effect, VenueOrder):
            last_state[effect.client_id] = effect
    for client_id, state in last_state.items():
        filled = sum((f.qty for f in fills if f.client_id == client_id), D(0))
        assert filled == state.filled_qty <= state.qty
    assert set(account.open_orders) == {
        c for c, s in last_state.items() if not s.status.is_terminal
    }


@settings(max_examples=60, deadline=None)
@given(st.lists(operations, max_size=40))
def test_ledger_when_replayed_from_effects_then_equal_to_live_state(ops):
    engine, effects = run_flow(ops)
    replayed = Ledger("paper", "USDT")
    for effect in effects:
        replayed.apply(effect)
    assert replayed.accounts == engine.ledger.accounts


# ---- spot ------------------------------------------------------------------------------------

BTC_SPOT = Instrument(
    venue="paper", symbol="BTC-USDT", base="BTC", quote="USDT", tick_size=D("0.5"),
    step_size=D("0.001"), min_qty=D("0.001"), min_notional=D(5), kind="spot",
)


def make_spot_engine() -> tuple[MatchingEngine, list[PaperEffect]]:
    effects: list[PaperEffect] = []
    ledger = Ledger("paper", "USDT", {"BTC-USDT": ("BTC", "USDT")})
    engine = MatchingEngine("paper", [BTC_SPOT], ledger, fees=FEES, on_effect=effects.append)
    engine.deposit("a", "USDT", D(10_000), 0)
    engine.deposit("a", "BTC", D("0.1"), 0)
    bids = [Level(D(60_000) - D("0.5") * (i + 1), D(1)) for i in range(5)]
    asks = [Level(D(60_000) + D("0.5") * (i + 1), D(1)) for i in range(5)]
    engine.on_book("BTC-USDT", bids, asks, 1)
    return engine, effects


def spot_order(client_id: str, side: Side, qty: str, price: str | None = None) -> OrderRequest:
    return OrderRequest(
        client_id=client_id, symbol="BTC-USDT", side=side,
        order_type=OrderType.LIMIT if price else OrderType.MARKET, qty=D(qty),
        price=D(price) if price else None,
        tif=TimeInForce.GTC if price else TimeInForce.IOC,
    )


def test_spot_buy_when_filled_then_base_up_and_quote_down_by_price_and_fee():
    engine, effects = make_spot_engine()
    engine.place("a", spot_order("b", Side.BUY, "0.05"), 2)
    [fill] = fills_of(effects)
    balances = engine.ledger.account("a").balances
    assert balances["BTC"] == D("0.15")
    assert balances["USDT"] == D(10_000) - fill.qty * fill.price - fill.fee
    assert engine.ledger.positions("a") == []  # spot holds balances, not positions


def test_spot_orders_when_funds_short_then_rejected_counting_what_open_orders_lock():
    engine, _ = make_spot_engine()
    with pytest.raises(VenueRejectedError) as info:
        engine.place("a", spot_order("s", Side.SELL, "0.2"), 2)  # holds 0.1 BTC
    assert info.value.reason is RejectReason.INSUFFICIENT_MARGIN
    engine.place("a", spot_order("rest", Side.BUY, "0.16", "59000"), 2)  # locks 9440 USDT
    with pytest.raises(VenueRejectedError):
        engine.place("a", spot_order("more", Side.BUY, "0.02", "59000"), 3)  # 1180 > 560 free
    with pytest.raises(VenueRejectedError) as info:
        engine.place("a", OrderRequest(client_id="r", symbol="BTC-USDT", side=Side.SELL,
                                       order_type=OrderType.MARKET, qty=D("0.01"),
                                       reduce_only=True), 4)
    assert info.value.reason is RejectReason.INVALID


def test_spot_when_funding_time_comes_then_nothing_is_paid():
    engine, effects = make_spot_engine()
    engine.place("a", spot_order("b", Side.BUY, "0.05"), 2)
    engine.pay_funding("BTC-USDT", D(60_000), D("0.001"), 3)
    assert not [e for e in effects if isinstance(e, FundingPayment)]
