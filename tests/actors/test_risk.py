"""Risk's pre-trade checks as a spec: every check accepts and rejects at its boundary with its
reason code, HALTED rejects all, and `check_order` runs the checks in a fixed order.

The checks are pure functions of an intent, a `RiskView`, a `RiskConfig` and a time, so these
tests need no trio, no actor and no clock: each one builds the exact view it means and calls the
function. Boundaries are exact: "at the limit" is the limit itself and "beyond" is one tick
(price), one step (quantity) or one float ulp (age) past it.

The world most tests share: venue `paper` trades BTCUSDT (mid 60000, tick 0.1, step 0.001) and
ETHUSDT; venue `other` trades BTC-PERP (mid 62000). Hedge group `btc` holds paper/main (the
account that orders), paper/sibling and other/hedge; paper/loner is in no group.

Tests that once exposed bugs here (market orders valued at their own price, float rounding in
the token bucket, a zero reference) now guard their fixes.
"""

from __future__ import annotations

import itertools
import math
from decimal import Decimal

import hypothesis.strategies as st
import msgspec
import pytest
from hypothesis import given, settings

from actors.messages import DenyReason, OrderIntent, TradingState
from actors.risk import (
    AccountLimits,
    Denial,
    HedgeGroup,
    RestingOrder,
    RiskConfig,
    RiskView,
    TokenBucket,
    check_order,
)
from actors.risk._checks import (
    check_daily_loss,
    check_group_exposure,
    check_open_orders,
    check_order_size,
    check_position,
    check_price_band,
    check_rate,
    check_reference,
    check_self_trade,
    check_trading_state,
)
from exchanges import OrderType, Side

VENUE = "paper"
OTHER_VENUE = "other"
ACCOUNT = "main"
SIBLING = "sibling"
HEDGE = "hedge"
LONER = "loner"
SYMBOL = "BTCUSDT"
ETH = "ETHUSDT"
PERP = "BTC-PERP"

MID = Decimal(60_000)
PERP_MID = Decimal(62_000)
ETH_MID = Decimal(3_000)
TICK = Decimal("0.1")
STEP = Decimal("0.001")
NOW_S = 1_000.0

LIMITS = AccountLimits(
    max_order_qty=Decimal(1),
    max_order_notional=Decimal(30_000),
    max_position_notional=Decimal(60_000),  # one BTC at the mid
    max_open_orders=3,
    max_orders_per_s=4.0,  # 1/rate = 0.25 s, exact in binary: no float noise at the boundary
    order_burst=2,
    price_band_bps=Decimal(100),  # 600 at the mid: 59400 .. 60600
    max_reference_age_s=5.0,
)
GROUP = HedgeGroup(
    name="btc",
    accounts=[f"{VENUE}/{ACCOUNT}", f"{VENUE}/{SIBLING}", f"{OTHER_VENUE}/{HEDGE}"],
    max_net_exposure_notional=Decimal(35_000),
)
BASES = {(VENUE, SYMBOL): "BTC", (OTHER_VENUE, PERP): "BTC", (VENUE, ETH): "ETH"}

# check_order's documented order: the first failing check names the reason.
CHECK_ORDER = (
    DenyReason.TRADING_HALTED,
    DenyReason.REDUCE_ONLY_STATE,
    DenyReason.NO_REFERENCE,
    DenyReason.STALE_REFERENCE,
    DenyReason.PRICE_BAND,
    DenyReason.MAX_ORDER_QTY,
    DenyReason.MAX_ORDER_NOTIONAL,
    DenyReason.SELF_TRADE,
    DenyReason.MAX_POSITION,
    DenyReason.MAX_GROUP_EXPOSURE,
    DenyReason.MAX_OPEN_ORDERS,
    DenyReason.ORDER_RATE,
)

_ids = itertools.count(1)


# ---- helpers ---------------------------------------------------------------------------------


def make_intent(
    *,
    side: Side = Side.BUY,
    qty: Decimal | str = "0.1",
    price: Decimal | str | None = MID,
    order_type: OrderType = OrderType.LIMIT,
    reduce_only: bool = False,
    flatten: bool = False,
    venue: str = VENUE,
    account: str = ACCOUNT,
    symbol: str = SYMBOL,
) -> OrderIntent:
    return OrderIntent(
        client_id=f"c{next(_ids)}",
        strategy="mm",
        venue=venue,
        account=account,
        symbol=symbol,
        side=side,
        order_type=order_type,
        qty=Decimal(qty),
        price=None if price is None else Decimal(price),
        reduce_only=reduce_only,
        flatten=flatten,
    )


def make_market(*, side: Side = Side.BUY, qty: Decimal | str = "0.1",
                reduce_only: bool = False, flatten: bool = False) -> OrderIntent:
    return make_intent(side=side, qty=qty, price=None, order_type=OrderType.MARKET,
                       reduce_only=reduce_only, flatten=flatten)


def make_config(
    limits: AccountLimits = LIMITS,
    *,
    grouped: bool = True,
    daily_loss_limit: Decimal = Decimal(2_000),
) -> RiskConfig:
    return RiskConfig(defaults=limits, groups=[GROUP] if grouped else [],
                      daily_loss_limit=daily_loss_limit)


def make_view(
    *,
    state: TradingState = TradingState.ACTIVE,
    position: Decimal | str = "0",
    mid: Decimal = MID,
    seen_s: float | None = NOW_S,
) -> RiskView:
    """paper/main's BTCUSDT position and reference; the other references fresh. `seen_s=None`:
    no BTCUSDT reference yet."""
    view = RiskView(state=state, bases=dict(BASES))
    if Decimal(position) != 0:
        view.positions[(VENUE, ACCOUNT, SYMBOL)] = Decimal(position)
    if seen_s is not None:
        view.references[(VENUE, SYMBOL)] = (mid, seen_s)
    view.references[(OTHER_VENUE, PERP)] = (PERP_MID, NOW_S)
    view.references[(VENUE, ETH)] = (ETH_MID, NOW_S)
    return view


def add_resting(
    view: RiskView,
    *,
    side: Side,
    price: Decimal | str | None,
    account: str = ACCOUNT,
    venue: str = VENUE,
    symbol: str = SYMBOL,
) -> None:
    view.resting.setdefault((venue, account), {})[f"r{next(_ids)}"] = RestingOrder(
        symbol, side, None if price is None else Decimal(price), Decimal("0.1")
    )


def reason_of(denial: Denial | None) -> DenyReason | None:
    return None if denial is None else denial.reason


def world_failing(failing: frozenset[DenyReason]) -> tuple[OrderIntent, RiskView, RiskConfig]:
    """A buy on paper/main that fails exactly the checks in `failing` and passes the rest."""
    fails = failing.__contains__
    view = make_view(
        state=TradingState.HALTED if fails(DenyReason.TRADING_HALTED) else TradingState.ACTIVE,
        # long 1 BTC = the position limit, so one more buy goes over; a buy never reduces it
        position="1" if fails(DenyReason.MAX_POSITION) else "0",
        seen_s=(None if fails(DenyReason.NO_REFERENCE)
                else NOW_S - 6 if fails(DenyReason.STALE_REFERENCE) else NOW_S),
    )
    if fails(DenyReason.SELF_TRADE):
        add_resting(view, side=Side.SELL, price="59990", account=SIBLING)
    if fails(DenyReason.MAX_GROUP_EXPOSURE):
        view.positions[(VENUE, SIBLING, SYMBOL)] = Decimal("0.5")  # 30000 +6000 > 35000
    if fails(DenyReason.MAX_OPEN_ORDERS):
        for _ in range(LIMITS.max_open_orders):
            add_resting(view, side=Side.BUY, price="59000")  # same side: no self-trade
    if fails(DenyReason.ORDER_RATE):
        view.buckets[(VENUE, ACCOUNT)] = TokenBucket(
            LIMITS.max_orders_per_s, LIMITS.order_burst, tokens=0.0, updated_s=NOW_S
        )
    qty = ("2" if fails(DenyReason.MAX_ORDER_QTY)
           else "0.6" if fails(DenyReason.MAX_ORDER_NOTIONAL) else "0.1")
    intent = make_intent(
        qty=qty,
        price="61200" if fails(DenyReason.PRICE_BAND) else MID,  # 200 bps from the mid
        reduce_only=fails(DenyReason.REDUCE_ONLY_STATE),
    )
    return intent, view, make_config()


# ---- the order of checks -----------------------------------------------------------------


@pytest.mark.parametrize("index", range(len(CHECK_ORDER)),
                         ids=[reason.name for reason in CHECK_ORDER])
def test_check_order_when_a_check_and_every_later_check_fail_then_denies_with_that_reason(
    index: int,
) -> None:
    # Arrange
    intent, view, config = world_failing(frozenset(CHECK_ORDER[index:]))
    # Act
    denial = check_order(intent, view, config, NOW_S)
    # Assert
    assert reason_of(denial) is CHECK_ORDER[index]


@pytest.mark.parametrize("failing", CHECK_ORDER, ids=[reason.name for reason in CHECK_ORDER])
def test_check_order_when_exactly_one_check_fails_then_denies_with_its_reason(
    failing: DenyReason,
) -> None:
    # Arrange
    intent, view, config = world_failing(frozenset({failing}))
    # Act
    denial = check_order(intent, view, config, NOW_S)
    # Assert
    assert reason_of(denial) is failing


def test_check_order_when_no_check_fails_then_passes() -> None:
    # Arrange
    intent, view, config = world_failing(frozenset())
    # Act
    denial = check_order(intent, view, config, NOW_S)
    # Assert
    assert denial is None


def test_check_order_when_halted_and_every_other_check_fails_then_denies_trading_halted() -> None:
    # Arrange
    intent, view, config = world_failing(frozenset(CHECK_ORDER))
    # Act
    denial = check_order(intent, view, config, NOW_S)
    # Assert
    assert denial is not None
    assert denial.reason is DenyReason.TRADING_HALTED
    assert denial.detail != ""


# ---- trading state -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "intent",
    [
        make_intent(side=Side.BUY),
        make_intent(side=Side.SELL),
        make_market(side=Side.BUY),
        make_market(side=Side.SELL),
        make_intent(side=Side.SELL, reduce_only=True),  # reduces the long
        make_market(side=Side.SELL, reduce_only=True),
        make_market(side=Side.SELL, flatten=True),  # flatten without reduce_only
    ],
    ids=["limit-buy", "limit-sell", "market-buy", "market-sell", "reduce-only-limit",
         "reduce-only-market", "flatten-not-reduce-only"],
)
def test_check_order_when_halted_then_denies_every_order_with_trading_halted(
    intent: OrderIntent,
) -> None:
    # Arrange
    view = make_view(state=TradingState.HALTED, position="0.5")
    # Act
    denial = check_order(intent, view, make_config(), NOW_S)
    # Assert
    assert reason_of(denial) is DenyReason.TRADING_HALTED


def test_check_order_when_halted_and_flatten_reduce_only_reduces_then_passes() -> None:
    # Arrange
    view = make_view(state=TradingState.HALTED, position="0.5")
    intent = make_market(side=Side.SELL, qty="0.5", reduce_only=True, flatten=True)
    # Act
    denial = check_order(intent, view, make_config(), NOW_S)
    # Assert
    assert denial is None


def test_check_order_when_halted_and_flatten_then_skips_the_other_checks_and_spends_no_token() -> (
    None
):
    # Arrange: no reference, and a qty far over the order limits
    view = make_view(state=TradingState.HALTED, position="5", seen_s=None)
    intent = make_market(side=Side.SELL, qty="5", reduce_only=True, flatten=True)
    # Act
    denial = check_order(intent, view, make_config(), NOW_S)
    # Assert
    assert denial is None
    assert view.buckets == {}


@pytest.mark.parametrize(
    ("position", "intent"),
    [
        ("0.5", make_intent(side=Side.SELL, qty="0.5", price=MID, reduce_only=True)),
        ("0.5", make_market(side=Side.SELL, qty="0.2", reduce_only=True)),
        ("-0.5", make_intent(side=Side.BUY, qty="0.5", price=MID, reduce_only=True)),
    ],
    ids=["limit-closes-long", "market-cuts-long", "limit-closes-short"],
)
def test_check_order_when_reduce_only_state_and_reduce_only_order_reduces_then_passes(
    position: str, intent: OrderIntent,
) -> None:
    # Arrange
    view = make_view(state=TradingState.REDUCE_ONLY, position=position)
    # Act
    denial = check_order(intent, view, make_config(), NOW_S)
    # Assert
    assert denial is None


@pytest.mark.parametrize(
    ("position", "intent"),
    [
        ("0.5", make_intent(side=Side.BUY, qty="0.1", reduce_only=True)),  # adds to the long
        ("0", make_intent(side=Side.SELL, qty="0.1", reduce_only=True)),  # nothing to reduce
        ("0.5", make_intent(side=Side.SELL, qty="0.1")),  # reduces, but not reduce-only
        ("0", make_intent(side=Side.BUY, qty="0.1")),
        ("0", make_market(side=Side.BUY, qty="0.1", flatten=True, reduce_only=True)),
    ],
    ids=["would-increase", "flat", "not-flagged-reduce-only", "opening",
         "flatten-not-reducing"],
)
def test_check_order_when_reduce_only_state_and_order_does_not_reduce_then_denies(
    position: str, intent: OrderIntent,
) -> None:
    # Arrange
    view = make_view(state=TradingState.REDUCE_ONLY, position=position)
    # Act
    denial = check_order(intent, view, make_config(), NOW_S)
    # Assert
    assert reason_of(denial) is DenyReason.REDUCE_ONLY_STATE


def test_check_order_when_reduce_only_order_exceeds_position_then_passes_as_reducing() -> None:
    """The venue caps a reduce-only order at the position, so it cannot flip it."""
    # Arrange
    for state in (TradingState.ACTIVE, TradingState.REDUCE_ONLY):
        view = make_view(state=state, position="0.4")
        intent = make_intent(side=Side.SELL, qty="0.45", reduce_only=True)
        # Act
        denial = check_order(intent, view, make_config(), NOW_S)
        # Assert
        assert denial is None, state


def test_check_order_when_active_and_reduce_only_order_adds_to_position_then_denies() -> None:
    # Arrange
    view = make_view(position="0.5")
    intent = make_intent(side=Side.BUY, qty="0.1", reduce_only=True)
    # Act
    denial = check_order(intent, view, make_config(), NOW_S)
    # Assert
    assert reason_of(denial) is DenyReason.REDUCE_ONLY_STATE


@pytest.mark.parametrize(
    ("state", "reduce_only", "flatten", "reduces", "expected"),
    [
        (TradingState.ACTIVE, False, False, False, None),
        (TradingState.HALTED, False, False, False, DenyReason.TRADING_HALTED),
        (TradingState.HALTED, True, False, True, DenyReason.TRADING_HALTED),
        (TradingState.HALTED, False, True, True, DenyReason.TRADING_HALTED),
        (TradingState.HALTED, True, True, True, None),
        (TradingState.REDUCE_ONLY, True, False, True, None),
        (TradingState.REDUCE_ONLY, True, False, False, DenyReason.REDUCE_ONLY_STATE),
        (TradingState.REDUCE_ONLY, False, False, True, DenyReason.REDUCE_ONLY_STATE),
    ],
)
def test_check_trading_state_when_state_and_flags_then_expected_reason(
    state: TradingState, reduce_only: bool, flatten: bool, reduces: bool,
    expected: DenyReason | None,
) -> None:
    # Arrange
    intent = make_market(side=Side.SELL, reduce_only=reduce_only, flatten=flatten)
    # Act
    denial = check_trading_state(intent, state, reduces)
    # Assert
    assert reason_of(denial) is expected


# ---- reference -------------------------------------------------------------------------------


def test_check_reference_when_no_reference_then_denies_no_reference() -> None:
    # Act
    denial = check_reference(None, LIMITS, NOW_S)
    # Assert
    assert reason_of(denial) is DenyReason.NO_REFERENCE


@pytest.mark.parametrize(
    ("seen_s", "expected"),
    [
        (NOW_S, None),
        (NOW_S - 5.0, None),  # exactly max_reference_age_s old
        (math.nextafter(NOW_S - 5.0, -math.inf), DenyReason.STALE_REFERENCE),  # one ulp older
        (NOW_S - 60.0, DenyReason.STALE_REFERENCE),
    ],
    ids=["fresh", "exactly-max-age", "just-over", "minute-old"],
)
def test_check_reference_when_aged_then_stale_only_beyond_max_age(
    seen_s: float, expected: DenyReason | None,
) -> None:
    # Act
    denial = check_reference((MID, seen_s), LIMITS, NOW_S)
    # Assert
    assert reason_of(denial) is expected


def test_check_order_when_no_reference_for_the_symbol_then_denies_no_reference() -> None:
    # Arrange: a reference for the same symbol on another venue does not count
    view = make_view(seen_s=None)
    view.references[(OTHER_VENUE, SYMBOL)] = (MID, NOW_S)
    # Act
    denial = check_order(make_intent(), view, make_config(), NOW_S)
    # Assert
    assert reason_of(denial) is DenyReason.NO_REFERENCE


# ---- price band ----------------------------------------------------------------------------


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
@pytest.mark.parametrize(
    ("price", "expected"),
    [
        (MID, None),
        (Decimal("60600"), None),  # exactly 100 bps above
        (Decimal("60600.1"), DenyReason.PRICE_BAND),  # one tick beyond
        (Decimal("59400"), None),  # exactly 100 bps below
        (Decimal("59399.9"), DenyReason.PRICE_BAND),
    ],
    ids=["at-mid", "band-above", "tick-beyond-above", "band-below", "tick-beyond-below"],
)
def test_check_price_band_when_limit_price_at_or_beyond_band_then_denies_only_beyond(
    side: Side, price: Decimal, expected: DenyReason | None,
) -> None:
    # Arrange
    intent = make_intent(side=side, price=price)
    # Act
    denial = check_price_band(intent, (MID, NOW_S), LIMITS)
    # Assert
    assert reason_of(denial) is expected


def test_check_price_band_when_market_order_then_skips_the_band() -> None:
    # Arrange: the market order carries a price far outside the band
    intent = make_intent(order_type=OrderType.MARKET, price="90000")
    # Act
    denial = check_price_band(intent, (MID, NOW_S), LIMITS)
    # Assert
    assert denial is None


def test_check_order_when_limit_price_one_tick_beyond_band_then_denies_price_band() -> None:
    # Act
    denial = check_order(make_intent(side=Side.SELL, price=Decimal("59399.9")), make_view(),
                         make_config(), NOW_S)
    # Assert
    assert reason_of(denial) is DenyReason.PRICE_BAND


# ---- order size ------------------------------------------------------------------------------

WIDE_NOTIONAL = msgspec.structs.replace(LIMITS, max_order_notional=Decimal(1_000_000))


@pytest.mark.parametrize(
    ("qty", "expected"),
    [("1", None), ("1.001", DenyReason.MAX_ORDER_QTY)],
    ids=["exactly-max", "one-step-over"],
)
def test_check_order_size_when_qty_at_or_over_max_then_denies_only_over(
    qty: str, expected: DenyReason | None,
) -> None:
    # Arrange
    intent = make_intent(qty=qty)
    # Act
    denial = check_order_size(intent, (MID, NOW_S), WIDE_NOTIONAL)
    # Assert
    assert reason_of(denial) is expected


@pytest.mark.parametrize(
    ("qty", "price", "expected"),
    [
        ("0.5", "60000", None),  # exactly 30000
        ("0.501", "60000", DenyReason.MAX_ORDER_NOTIONAL),  # one step over
        ("0.5", "60000.1", DenyReason.MAX_ORDER_NOTIONAL),  # one tick over
    ],
    ids=["exactly-max", "qty-step-over", "price-tick-over"],
)
def test_check_order_size_when_limit_notional_at_or_over_max_then_denies_only_over(
    qty: str, price: str, expected: DenyReason | None,
) -> None:
    # Arrange
    intent = make_intent(qty=qty, price=price)
    # Act
    denial = check_order_size(intent, (MID, NOW_S), LIMITS)
    # Assert
    assert reason_of(denial) is expected


@pytest.mark.parametrize(
    ("mid", "expected"),
    [(Decimal("60000"), None), (Decimal("60000.1"), DenyReason.MAX_ORDER_NOTIONAL)],
    ids=["mid-makes-exactly-max", "mid-makes-over"],
)
def test_check_order_size_when_market_order_then_notional_at_reference_mid(
    mid: Decimal, expected: DenyReason | None,
) -> None:
    # Arrange
    intent = make_market(qty="0.5")
    # Act
    denial = check_order_size(intent, (mid, NOW_S), LIMITS)
    # Assert
    assert reason_of(denial) is expected


def test_check_order_size_when_no_qty_limit_then_only_notional_applies() -> None:
    # Arrange
    limits = msgspec.structs.replace(LIMITS, max_order_qty=None)
    intent = make_intent(qty="1000", price="30")  # 30000: exactly the notional limit
    # Act
    denial = check_order_size(intent, (MID, NOW_S), limits)
    # Assert
    assert denial is None


def test_check_order_when_market_order_carries_a_low_price_then_notional_at_mid_denies() -> None:
    # Arrange: no group, and 1 BTC is exactly the position limit, so only the notional can deny
    intent = make_intent(order_type=OrderType.MARKET, qty="1", price="1")
    limits = msgspec.structs.replace(LIMITS, max_order_qty=None)
    # Act
    denial = check_order(intent, make_view(), make_config(limits, grouped=False), NOW_S)
    # Assert
    assert reason_of(denial) is DenyReason.MAX_ORDER_NOTIONAL


# ---- self-trade ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "price", "resting_price", "expected"),
    [
        (Side.BUY, "60000", "60000", DenyReason.SELF_TRADE),  # at the resting sell
        (Side.BUY, "60010", "60000", DenyReason.SELF_TRADE),  # above it
        (Side.BUY, "59999.9", "60000", None),  # one tick below
        (Side.SELL, "60000", "60000", DenyReason.SELF_TRADE),  # at the resting buy
        (Side.SELL, "59990", "60000", DenyReason.SELF_TRADE),  # below it
        (Side.SELL, "60000.1", "60000", None),  # one tick above
    ],
    ids=["buy-at", "buy-above", "buy-tick-below", "sell-at", "sell-below", "sell-tick-above"],
)
def test_check_self_trade_when_own_opposite_order_rests_then_denies_only_when_crossing(
    side: Side, price: str, resting_price: str, expected: DenyReason | None,
) -> None:
    # Arrange
    view = make_view()
    add_resting(view, side=side.opposite, price=resting_price)
    # Act
    denial = check_self_trade(make_intent(side=side, price=price), view, make_config())
    # Assert
    assert reason_of(denial) is expected


def test_check_self_trade_when_sibling_on_same_venue_rests_crossing_order_then_denies() -> None:
    # Arrange
    view = make_view()
    add_resting(view, side=Side.SELL, price="60000", account=SIBLING)
    # Act
    denial = check_self_trade(make_intent(price="60000"), view, make_config())
    # Assert
    assert reason_of(denial) is DenyReason.SELF_TRADE


def test_check_self_trade_when_group_member_on_other_venue_rests_crossing_order_then_passes() -> (
    None
):
    # Arrange: same symbol name, same group, but another venue cannot match us
    view = make_view()
    add_resting(view, side=Side.SELL, price="59000", account=HEDGE, venue=OTHER_VENUE)
    # Act
    denial = check_self_trade(make_intent(price="60000"), view, make_config())
    # Assert
    assert denial is None


def test_check_self_trade_when_account_outside_group_rests_crossing_order_then_passes() -> None:
    # Arrange
    view = make_view()
    add_resting(view, side=Side.SELL, price="59000", account=LONER)
    # Act
    denial = check_self_trade(make_intent(price="60000"), view, make_config())
    # Assert
    assert denial is None


def test_check_self_trade_when_sibling_rests_but_no_groups_configured_then_passes() -> None:
    # Arrange
    view = make_view()
    add_resting(view, side=Side.SELL, price="59000", account=SIBLING)
    # Act
    denial = check_self_trade(make_intent(price="60000"), view, make_config(grouped=False))
    # Assert
    assert denial is None


def test_check_self_trade_when_crossing_order_rests_in_another_symbol_then_passes() -> None:
    # Arrange
    view = make_view()
    add_resting(view, side=Side.SELL, price="100", symbol=ETH)
    # Act
    denial = check_self_trade(make_intent(price="60000"), view, make_config())
    # Assert
    assert denial is None


@pytest.mark.parametrize("resting_price", ["1", "60000", "90000"])
def test_check_self_trade_when_market_order_and_any_opposite_order_rests_then_denies(
    resting_price: str,
) -> None:
    # Arrange
    view = make_view()
    add_resting(view, side=Side.SELL, price=resting_price, account=SIBLING)
    # Act
    denial = check_self_trade(make_market(side=Side.BUY), view, make_config())
    # Assert
    assert reason_of(denial) is DenyReason.SELF_TRADE


def test_check_self_trade_when_market_order_and_only_same_side_orders_rest_then_passes() -> None:
    # Arrange
    view = make_view()
    add_resting(view, side=Side.BUY, price="59000")
    add_resting(view, side=Side.BUY, price="59000", account=SIBLING)
    # Act
    denial = check_self_trade(make_market(side=Side.BUY), view, make_config())
    # Assert
    assert denial is None


# ---- max position --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("position", "side", "qty", "expected"),
    [
        ("0.9", Side.BUY, "0.1", None),  # projected 1.0 BTC = 60000, exactly the limit
        ("0.9", Side.BUY, "0.101", DenyReason.MAX_POSITION),
        ("-0.9", Side.SELL, "0.1", None),
        ("-0.9", Side.SELL, "0.101", DenyReason.MAX_POSITION),
        ("0.5", Side.SELL, "1.5", None),  # flips to -1.0: exactly the limit
        ("0.5", Side.SELL, "1.501", DenyReason.MAX_POSITION),
    ],
    ids=["long-at", "long-over", "short-at", "short-over", "flip-at", "flip-over"],
)
def test_check_position_when_projected_notional_at_or_over_limit_then_denies_only_over(
    position: str, side: Side, qty: str, expected: DenyReason | None,
) -> None:
    # Arrange
    intent = make_intent(side=side, qty=qty)
    # Act
    denial = check_position(intent, Decimal(position), MID, LIMITS)
    # Assert
    assert reason_of(denial) is expected


def test_check_order_when_position_beyond_limit_and_order_reduces_then_passes() -> None:
    # Arrange: long 2 BTC = 120000, twice the limit
    view = make_view(position="2")
    # Act
    denial = check_order(make_intent(side=Side.SELL, qty="0.5"), view, make_config(), NOW_S)
    # Assert
    assert denial is None


def test_check_order_when_position_beyond_limit_and_order_adds_then_denies_max_position() -> None:
    # Arrange
    view = make_view(position="2")
    # Act
    denial = check_order(make_intent(side=Side.BUY, qty="0.001"), view, make_config(), NOW_S)
    # Assert
    assert reason_of(denial) is DenyReason.MAX_POSITION


def test_check_order_when_order_flips_position_beyond_limit_then_denies_max_position() -> None:
    # Arrange: a flip is not a reduction, even though |position| shrinks from 2 to 1.1
    limits = msgspec.structs.replace(LIMITS, max_order_qty=None,
                                     max_order_notional=Decimal(1_000_000))
    view = make_view(position="2")
    # Act
    denial = check_order(make_intent(side=Side.SELL, qty="3.1"), view, make_config(limits),
                         NOW_S)
    # Assert
    assert reason_of(denial) is DenyReason.MAX_POSITION


# ---- group exposure ------------------------------------------------------------------------


def make_group_view(sibling: Decimal | str, hedge: Decimal | str) -> RiskView:
    """Group net exposure = sibling BTCUSDT x 60000 + hedge BTC-PERP x 62000, plus noise the
    check must ignore: a non-member's BTC and a member's ETH."""
    view = make_view()
    view.positions[(VENUE, SIBLING, SYMBOL)] = Decimal(sibling)
    view.positions[(OTHER_VENUE, HEDGE, PERP)] = Decimal(hedge)
    view.positions[(VENUE, LONER, SYMBOL)] = Decimal(50)
    view.positions[(VENUE, ACCOUNT, ETH)] = Decimal(100)
    return view


@pytest.mark.parametrize(
    ("sibling", "hedge", "side", "qty", "expected"),
    [
        # net 60000 - 31000 = 29000; a 0.1 buy adds 6000: exactly 35000
        ("1", "-0.5", Side.BUY, "0.1", None),
        ("1", "-0.5", Side.BUY, "0.1001", DenyReason.MAX_GROUP_EXPOSURE),
        # net -29000; a 0.1 sell makes exactly -35000
        ("-1", "0.5", Side.SELL, "0.1", None),
        ("-1", "0.5", Side.SELL, "0.1001", DenyReason.MAX_GROUP_EXPOSURE),
    ],
    ids=["long-at", "long-beyond", "short-at", "short-beyond"],
)
def test_check_group_exposure_when_net_at_or_beyond_limit_then_denies_only_beyond(
    sibling: str, hedge: str, side: Side, qty: str, expected: DenyReason | None,
) -> None:
    # Arrange
    view = make_group_view(sibling, hedge)
    # Act
    denial = check_group_exposure(make_intent(side=side, qty=qty), view, make_config())
    # Assert
    assert reason_of(denial) is expected


@pytest.mark.parametrize(
    ("side", "expected"),
    [(Side.SELL, None), (Side.BUY, DenyReason.MAX_GROUP_EXPOSURE)],
    ids=["reduces-net", "adds-to-net"],
)
def test_check_group_exposure_when_net_already_beyond_limit_then_only_reducing_passes(
    side: Side, expected: DenyReason | None,
) -> None:
    # Arrange: net 120000 - 31000 = 89000, far beyond 35000
    view = make_group_view("2", "-0.5")
    # Act
    denial = check_group_exposure(make_intent(side=side, qty="0.1"), view, make_config())
    # Assert
    assert reason_of(denial) is expected


def test_check_group_exposure_when_account_in_no_group_then_passes() -> None:
    # Arrange
    view = make_group_view("2", "0")
    intent = make_intent(account=LONER, qty="1")
    # Act
    denial = check_group_exposure(intent, view, make_config())
    # Assert
    assert denial is None


def test_check_group_exposure_when_symbol_has_no_base_then_passes() -> None:
    # Arrange
    view = make_group_view("2", "0")
    del view.bases[(VENUE, SYMBOL)]
    # Act
    denial = check_group_exposure(make_intent(qty="1"), view, make_config())
    # Assert
    assert denial is None


def test_check_order_when_group_net_beyond_limit_then_denies_max_group_exposure() -> None:
    # Arrange: own position 0 (MAX_POSITION passes); the group is net long 89000
    view = make_group_view("2", "-0.5")
    # Act
    denial = check_order(make_intent(side=Side.BUY, qty="0.1"), view, make_config(), NOW_S)
    # Assert
    assert reason_of(denial) is DenyReason.MAX_GROUP_EXPOSURE


def test_check_order_when_reducing_order_unwinds_a_hedge_leg_then_passes_despite_group_limit() -> (
    None
):
    # Arrange: main long 1 BTC hedged by the sibling's short 1 BTC: net 0. Selling main's leg
    # takes the group net to -36000, beyond 35000; an order that reduces its own account's
    # position skips the group check by design (see check_order).
    view = make_view(position="1")
    view.positions[(VENUE, SIBLING, SYMBOL)] = Decimal(-1)
    limits = msgspec.structs.replace(LIMITS, max_order_notional=Decimal(60_000))
    # Act
    denial = check_order(make_intent(side=Side.SELL, qty="0.6"), view, make_config(limits),
                         NOW_S)
    # Assert
    assert denial is None


# ---- open orders ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("open_orders", "expected"),
    [(LIMITS.max_open_orders - 1, None), (LIMITS.max_open_orders, DenyReason.MAX_OPEN_ORDERS)],
    ids=["one-below-max", "at-max"],
)
def test_check_open_orders_when_count_at_max_then_denies(
    open_orders: int, expected: DenyReason | None,
) -> None:
    # Arrange: the sibling's orders do not count towards main's limit
    view = make_view()
    for _ in range(open_orders):
        add_resting(view, side=Side.BUY, price="59000")
    for _ in range(LIMITS.max_open_orders):
        add_resting(view, side=Side.BUY, price="59000", account=SIBLING)
    # Act
    denial = check_open_orders(make_intent(), view, LIMITS)
    # Assert
    assert reason_of(denial) is expected


# ---- rate ----------------------------------------------------------------------------------


def test_check_rate_when_burst_spent_at_one_instant_then_next_denied_until_refilled() -> None:
    # Arrange
    view = make_view()
    intent = make_intent()
    # Act
    burst = [check_rate(intent, view, LIMITS, NOW_S) for _ in range(LIMITS.order_burst)]
    over = check_rate(intent, view, LIMITS, NOW_S)
    refilled = check_rate(intent, view, LIMITS, NOW_S + 1 / LIMITS.max_orders_per_s)
    again = check_rate(intent, view, LIMITS, NOW_S + 1 / LIMITS.max_orders_per_s)
    # Assert
    assert burst == [None] * LIMITS.order_burst
    assert reason_of(over) is DenyReason.ORDER_RATE
    assert refilled is None
    assert reason_of(again) is DenyReason.ORDER_RATE


def test_check_rate_when_one_account_spent_its_burst_then_another_account_still_passes() -> None:
    # Arrange
    view = make_view()
    for _ in range(LIMITS.order_burst):
        check_rate(make_intent(), view, LIMITS, NOW_S)
    # Act
    denial = check_rate(make_intent(account=SIBLING), view, LIMITS, NOW_S)
    # Assert
    assert denial is None


def test_check_order_when_an_order_is_denied_before_the_rate_check_then_no_token_spent() -> None:
    # Arrange: a burst of one
    config = make_config(msgspec.structs.replace(LIMITS, order_burst=1))
    view = make_view()
    check_order(make_intent(price="61200"), view, config, NOW_S)  # PRICE_BAND
    check_order(make_intent(qty="2"), view, config, NOW_S)  # MAX_ORDER_QTY
    # Act
    first = check_order(make_intent(), view, config, NOW_S)
    second = check_order(make_intent(), view, config, NOW_S)
    # Assert
    assert first is None
    assert reason_of(second) is DenyReason.ORDER_RATE


def test_take_when_waited_seconds_until_token_then_takes_a_token() -> None:
    # Arrange
    bucket = TokenBucket(rate_per_s=20.0, burst=1)
    assert bucket.take(100.0)
    wait_s = bucket.seconds_until_token(100.0)
    # Act
    taken = bucket.take(100.0 + wait_s)
    # Assert
    assert taken


# ---- daily loss ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("daily_pnl", "expected"),
    [
        ("-2000", DenyReason.DAILY_LOSS),  # exactly -limit
        ("-2500", DenyReason.DAILY_LOSS),
        ("-1999.99", None),
        ("0", None),
        ("5000", None),
    ],
)
def test_check_daily_loss_when_pnl_at_or_below_minus_limit_then_denies(
    daily_pnl: str, expected: DenyReason | None,
) -> None:
    # Act
    denial = check_daily_loss(Decimal(daily_pnl), make_config())
    # Assert
    assert reason_of(denial) is expected


# ---- a degenerate reference ----------------------------------------------------------------


@pytest.mark.parametrize("intent", [make_intent(), make_market(qty="10")],
                         ids=["limit-raises", "market-passes"])
def test_check_order_when_reference_mid_is_zero_then_denies(intent: OrderIntent) -> None:
    # Arrange
    limits = msgspec.structs.replace(LIMITS, max_order_qty=None)
    view = make_view(mid=Decimal(0))
    # Act
    denial = check_order(intent, view, make_config(limits), NOW_S)
    # Assert
    assert denial is not None


# ---- properties ----------------------------------------------------------------------------

ACCOUNTS = [(VENUE, ACCOUNT), (VENUE, SIBLING), (OTHER_VENUE, HEDGE), (VENUE, LONER)]
SYMBOLS = {VENUE: [SYMBOL, ETH], OTHER_VENUE: [PERP]}
MIDS = {(VENUE, SYMBOL): MID, (VENUE, ETH): ETH_MID, (OTHER_VENUE, PERP): PERP_MID}
MARKETS = [(venue, account, symbol) for venue, account in ACCOUNTS for symbol in SYMBOLS[venue]]


def milli(n: int) -> Decimal:
    return Decimal(n).scaleb(-3)


# Built once: strategies made inside a composite are rebuilt and revalidated on every draw.
rarely = st.sampled_from([False, False, False, True])
quantities = st.integers(1, 3_000).map(milli)
signed_quantities = st.integers(-3_000, 3_000).map(milli)
limits_st = st.builds(
    AccountLimits,
    max_order_qty=st.none() | st.integers(10, 5_000).map(milli),
    max_order_notional=st.integers(1_000, 200_000).map(Decimal),
    max_position_notional=st.integers(1_000, 200_000).map(Decimal),
    max_open_orders=st.integers(0, 4),
    max_orders_per_s=st.sampled_from([1.0, 4.0, 20.0]),
    order_burst=st.integers(0, 3),
    price_band_bps=st.integers(50, 500).map(Decimal),
    max_reference_age_s=st.sampled_from([1.0, 5.0, 10.0]),
)
intent_st = st.builds(
    lambda market, side, order_type, qty, factor, reduce_only, flatten: OrderIntent(
        client_id="p1", strategy="mm", venue=market[0], account=market[1], symbol=market[2],
        side=side, order_type=order_type, qty=qty, reduce_only=reduce_only, flatten=flatten,
        price=(None if order_type is OrderType.MARKET
               else (MIDS[(market[0], market[2])] * milli(factor)).quantize(TICK)),
    ),
    st.sampled_from(MARKETS), st.sampled_from(Side), st.sampled_from(OrderType), quantities,
    st.integers(950, 1_050), rarely, rarely,
)
# ages in s; None: no reference yet
references_st = st.tuples(*[st.sampled_from([0.0, 0.0, 0.0, 1.0, 5.0, 9.0, None])] * len(MIDS))
states_st = st.sampled_from([TradingState.ACTIVE] * 4
                            + [TradingState.REDUCE_ONLY, TradingState.HALTED])
positions_st = st.dictionaries(st.sampled_from(MARKETS), signed_quantities, max_size=4)
resting_st = st.lists(st.tuples(st.sampled_from(MARKETS), st.sampled_from(Side),
                                st.sampled_from([None, 990, 1_000, 1_010]), quantities),
                      max_size=4)
buckets_st = st.dictionaries(st.sampled_from(ACCOUNTS), st.integers(0, 3), max_size=2)


@st.composite
def worlds(draw: st.DrawFn) -> tuple[OrderIntent, RiskView, RiskConfig]:
    """Any intent against any view over the shared world; every mid positive."""
    intent = draw(intent_st)
    limits = draw(limits_st)
    view = RiskView(state=draw(states_st), bases=dict(BASES), positions=draw(positions_st))
    for (key, mid), age_s in zip(MIDS.items(), draw(references_st), strict=True):
        if age_s is not None:
            view.references[key] = (mid, NOW_S - age_s)
    for n, ((venue, account, symbol), side, factor, qty) in enumerate(draw(resting_st)):
        price = None if factor is None else MIDS[(venue, symbol)] * milli(factor)
        view.resting.setdefault((venue, account), {})[f"r{n}"] = RestingOrder(
            symbol, side, price, qty
        )
    for key, tokens in draw(buckets_st).items():
        view.buckets[key] = TokenBucket(limits.max_orders_per_s, limits.order_burst,
                                        tokens=float(min(tokens, limits.order_burst)),
                                        updated_s=NOW_S - 0.1)
    config = RiskConfig(defaults=limits, groups=draw(st.sampled_from([[], [GROUP]])))
    return intent, view, config


@settings(max_examples=80, deadline=None)
@given(world=worlds())
def test_check_order_when_any_intent_and_view_then_returns_none_or_a_denial_with_a_reason(
    world: tuple[OrderIntent, RiskView, RiskConfig],
) -> None:
    # Arrange
    intent, view, config = world
    # Act
    denial = check_order(intent, view, config, NOW_S)
    # Assert
    assert denial is None or (isinstance(denial, Denial)
                              and isinstance(denial.reason, DenyReason)
                              and denial.detail != "")


@settings(max_examples=50, deadline=None)
@given(world=worlds())
def test_check_order_when_halted_then_denies_all_but_a_flatten_reduce_only_order(
    world: tuple[OrderIntent, RiskView, RiskConfig],
) -> None:
    # Arrange
    intent, view, config = world
    view.state = TradingState.HALTED
    # Act
    denial = check_order(intent, view, config, NOW_S)
    # Assert
    position = view.positions.get((intent.venue, intent.account, intent.symbol), Decimal(0))
    reduces = (
        intent.qty > 0 and position != 0 and (position > 0) != (intent.side is Side.BUY)
    )
    if intent.flatten and intent.reduce_only and reduces:
        assert denial is None
    else:
        assert reason_of(denial) is DenyReason.TRADING_HALTED


@settings(max_examples=60, deadline=None)
@given(world=worlds(), data=st.data())
def test_check_order_when_reduce_only_order_reduces_then_never_denied_for_its_exposure(
    world: tuple[OrderIntent, RiskView, RiskConfig], data: st.DataObject,
) -> None:
    # Arrange: give the intent's account a position and make the intent cut into it
    drawn, view, config = world
    magnitude = data.draw(quantities, label="|position|")
    position = magnitude if data.draw(st.booleans(), label="long") else -magnitude
    view.positions[(drawn.venue, drawn.account, drawn.symbol)] = position
    qty = milli(data.draw(st.integers(1, int(abs(position).scaleb(3))), label="qty milli"))
    side = Side.SELL if position > 0 else Side.BUY
    intent = msgspec.structs.replace(drawn, side=side, qty=qty, reduce_only=True)
    # Act
    denial = check_order(intent, view, config, NOW_S)
    # Assert: it may still be halted, stale, too big, crossing, too many or too fast
    assert reason_of(denial) not in {DenyReason.MAX_POSITION, DenyReason.MAX_GROUP_EXPOSURE,
                                     DenyReason.REDUCE_ONLY_STATE}


@settings(max_examples=60, deadline=None)
@given(world=worlds())
def test_check_order_when_denied_before_the_rate_check_then_no_bucket_is_touched(
    world: tuple[OrderIntent, RiskView, RiskConfig],
) -> None:
    # Arrange
    intent, view, config = world
    before = {key: (bucket.tokens, bucket.updated_s) for key, bucket in view.buckets.items()}
    # Act
    denial = check_order(intent, view, config, NOW_S)
    # Assert
    if denial is not None and denial.reason is not DenyReason.ORDER_RATE:
        after = {key: (bucket.tokens, bucket.updated_s) for key, bucket in view.buckets.items()}
        assert after == before


# ---- regressions from review -------------------------------------------------------------------


def test_check_order_when_reducing_orders_stack_past_the_position_then_max_position_applies():
    """Five sells each smaller than a long are not five reductions: what already rests on the
    reducing side uses up the position first."""
    # Arrange: long 0.4; 0.4 of sells already resting; a 0.3 sell would open a short
    view = make_view(position="0.4")
    for _ in range(4):  # 0.1 each
        add_resting(view, side=Side.SELL, price=MID + 100)
    config = RiskConfig(defaults=AccountLimits(max_position_notional=Decimal(10_000)))
    intent = make_intent(side=Side.SELL, qty="0.3")
    # Act
    denial = check_order(intent, view, config, NOW_S)
    # Assert: 0.4 - 0.4 resting - 0.3 leaves a 0.3 short, worth more than 10000
    assert reason_of(denial) is DenyReason.MAX_POSITION


def test_check_order_when_reduce_only_and_reference_fresh_then_band_and_size_still_apply():
    """De-risking skips only what needs a fresh price when the price is stale; with a fresh
    one the fat-finger band and the size limits still hold (review: they were skipped)."""
    far = make_intent(side=Side.SELL, qty="0.5", price="30000", reduce_only=True)
    assert reason_of(check_order(far, make_view(position="0.5"), make_config(), NOW_S)) is (
        DenyReason.PRICE_BAND)
    huge = make_market(side=Side.SELL, qty="500", reduce_only=True)
    assert reason_of(check_order(huge, make_view(position="0.5"), make_config(), NOW_S)) in (
        DenyReason.MAX_ORDER_QTY, DenyReason.MAX_ORDER_NOTIONAL)
