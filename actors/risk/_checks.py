"""Pre-trade checks: pure functions of an order and what risk knows. No trio, no I/O.

Each check returns None (pass) or a Denial with its reason code. `check_order` runs them in a
fixed order, cheapest and most fundamental first; the rate check runs last because it spends a
token only for an order that passed everything else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from exchanges import OrderType, Side

from ..messages import DenyReason, OrderIntent, TradingState, crosses
from ._config import AccountLimits, RiskConfig

ZERO = Decimal(0)
BPS = Decimal(10_000)
_TOKEN_EPSILON = 1e-9

AccountKey = tuple[str, str]  # venue, account


@dataclass(frozen=True, slots=True)
class Denial:
    reason: DenyReason
    detail: str


@dataclass(slots=True)
class RestingOrder:
    symbol: str
    side: Side
    price: Decimal | None
    remaining: Decimal
    rests: bool = True
    """False for IOC and market orders in flight: they count toward limits, but never rest on
    the book, so nothing can trade against them (self-trade prevention skips them)."""


@dataclass(slots=True)
class TokenBucket:
    rate_per_s: float
    burst: int
    tokens: float = -1.0
    updated_s: float = 0.0

    def take(self, now_s: float) -> bool:
        self._refill(now_s)
        if self.tokens < 1 - _TOKEN_EPSILON:  # float clocks: 100.05 - 100.0 is not 0.05
            return False
        self.tokens = max(0.0, self.tokens - 1)
        return True

    def seconds_until_token(self, now_s: float) -> float:
        self._refill(now_s)
        return max(0.0, (1 - self.tokens) / self.rate_per_s)

    def _refill(self, now_s: float) -> None:
        if self.tokens < 0:  # first use: a full bucket
            self.tokens, self.updated_s = float(self.burst), now_s
        self.tokens = min(self.burst, self.tokens + (now_s - self.updated_s) * self.rate_per_s)
        self.updated_s = now_s


@dataclass
class RiskView:
    """Everything the checks read. The risk actor keeps it current."""

    state: TradingState = TradingState.ACTIVE
    positions: dict[tuple[str, str, str], Decimal] = field(default_factory=dict)
    """(venue, account, symbol) → signed qty."""
    resting: dict[AccountKey, dict[str, RestingOrder]] = field(default_factory=dict)
    """Orders sent or open, per account, by client id."""
    references: dict[tuple[str, str], tuple[Decimal, float]] = field(default_factory=dict)
    """(venue, symbol) → (mid, trio time seen)."""
    bases: dict[tuple[str, str], str] = field(default_factory=dict)
    """(venue, symbol) → base asset, to net a hedge group's exposure across venues."""
    buckets: dict[AccountKey, TokenBucket] = field(default_factory=dict)
    daily_pnl: Decimal = ZERO

    def position(self, venue: str, account: str, symbol: str) -> Decimal:
        return self.positions.get((venue, account, symbol), ZERO)


def check_order(
    intent: OrderIntent, view: RiskView, config: RiskConfig, now_s: float
) -> Denial | None:
    limits = config.limits(intent.venue, intent.account)
    position = view.position(intent.venue, intent.account, intent.symbol)
    resting = _resting_qty(intent, view)
    # Orders already resting on the reducing side will use up the position first.
    reduces = _reduces(intent, position, resting)
    denial = check_trading_state(intent, view.state, reduces)
    if denial is not None:
        return denial
    if intent.flatten and intent.reduce_only:
        # The kill switch's own close skips the rest by design, but only if it truly reduces.
        return None if reduces else Denial(DenyReason.REDUCE_ONLY_STATE,
                                          "flatten order would not reduce a position")
    if intent.reduce_only and not reduces:
        return Denial(DenyReason.REDUCE_ONLY_STATE, "reduce-only order would not reduce")
    reference = view.references.get((intent.venue, intent.symbol))
    de_risking = intent.reduce_only and reduces
    stale = check_reference(reference, limits, now_s)
    if de_risking and stale is not None:
        # De-risking must not wait for a fresh price (a stale feed is when it matters most);
        # what can be checked without one still is: size, self-trade, open orders, rate.
        known = reference if reference is not None and reference[0] > 0 else None
        return (check_order_size(intent, known, limits)
                or check_self_trade(intent, view, config)
                or check_open_orders(intent, view, limits)
                or check_rate(intent, view, limits, now_s))
    denial = (
        stale
        or check_price_band(intent, reference, limits)
        or check_order_size(intent, reference, limits)
        or check_self_trade(intent, view, config)
    )
    if denial is not None:
        return denial
    assert reference is not None  # check_reference passed
    mid = reference[0]
    denial = (
        (None if reduces else check_position(intent, position, mid, limits, resting))
        or (None if reduces else check_group_exposure(intent, view, config))
        or check_open_orders(intent, view, limits)
    )
    if denial is not None:
        return denial
    return check_rate(intent, view, limits, now_s)


def check_trading_state(intent: OrderIntent, state: TradingState, reduces: bool) -> Denial | None:
    if state is TradingState.HALTED and not (intent.flatten and intent.reduce_only and reduces):
        return Denial(DenyReason.TRADING_HALTED, "trading is halted")
    if state is TradingState.REDUCE_ONLY and not (intent.reduce_only and reduces):
        return Denial(DenyReason.REDUCE_ONLY_STATE, "trading is reduce-only")
    return None


def check_reference(
    reference: tuple[Decimal, float] | None, limits: AccountLimits, now_s: float
) -> Denial | None:
    if reference is None:
        return Denial(DenyReason.NO_REFERENCE, "no reference price yet")
    if reference[0] <= 0:
        return Denial(DenyReason.NO_REFERENCE, f"reference price {reference[0]} is not positive")
    age_s = now_s - reference[1]
    if age_s > limits.max_reference_age_s:
        return Denial(DenyReason.STALE_REFERENCE, f"reference price is {age_s:.1f} s old")
    return None


def check_price_band(
    intent: OrderIntent, reference: tuple[Decimal, float] | None, limits: AccountLimits
) -> Denial | None:
    if intent.order_type is not OrderType.LIMIT or intent.price is None or reference is None:
        return None
    mid = reference[0]
    distance_bps = abs(intent.price - mid) / mid * BPS
    if distance_bps > limits.price_band_bps:
        return Denial(DenyReason.PRICE_BAND, f"price {intent.price} is {distance_bps:.0f} bps "
                      f"from mid {mid}, band {limits.price_band_bps} bps")
    return None


def check_order_size(
    intent: OrderIntent, reference: tuple[Decimal, float] | None, limits: AccountLimits
) -> Denial | None:
    if limits.max_order_qty is not None and intent.qty > limits.max_order_qty:
        return Denial(DenyReason.MAX_ORDER_QTY,
                      f"qty {intent.qty} over {limits.max_order_qty}")
    # A market order fills at the book, whatever price it carries: value it at the mid.
    is_limit = intent.order_type is OrderType.LIMIT and intent.price is not None
    price = intent.price if is_limit and intent.price is not None else (reference or (ZERO, 0.0))[0]
    notional = intent.qty * price
    if notional > limits.max_order_notional:
        return Denial(DenyReason.MAX_ORDER_NOTIONAL,
                      f"notional {notional:.2f} over {limits.max_order_notional}")
    return None


def check_self_trade(intent: OrderIntent, view: RiskView, config: RiskConfig) -> Denial | None:
    """No order may cross a resting order of its own account or a sibling in its group."""
    group = config.group_of(intent.venue, intent.account)
    accounts = [(intent.venue, intent.account)]
    if group is not None:
        accounts = [tuple(member.split("/", 1)) for member in group.accounts]  # type: ignore[misc]
    for venue, account in accounts:
        if venue != intent.venue:
            continue  # different venues cannot match each other
        for client_id, order in view.resting.get((venue, account), {}).items():
            if (order.symbol != intent.symbol or order.side is intent.side
                    or order.price is None or not order.rests):
                continue
            if crosses(intent.side, _limit_price(intent), order.price):
                return Denial(DenyReason.SELF_TRADE, f"would cross {venue}/{account} order "
                              f"{client_id} at {order.price}")
    return None


def _limit_price(intent: OrderIntent) -> Decimal | None:
    """The price the order is limited to; None for a market order (it takes any price)."""
    return None if intent.order_type is OrderType.MARKET else intent.price


def check_position(
    intent: OrderIntent, position: Decimal, mid: Decimal, limits: AccountLimits,
    resting_same_side: Decimal = ZERO,
) -> Denial | None:
    """Counts resting orders on the same side too: they may all fill."""
    projected = position + (intent.qty + resting_same_side) * intent.side.sign
    notional = abs(projected) * mid
    if notional > limits.max_position_notional:
        return Denial(DenyReason.MAX_POSITION, f"position would be {projected} "
                      f"({notional:.2f}), limit {limits.max_position_notional}")
    return None


def check_group_exposure(intent: OrderIntent, view: RiskView, config: RiskConfig) -> Denial | None:
    group = config.group_of(intent.venue, intent.account)
    base = view.bases.get((intent.venue, intent.symbol))
    if group is None or base is None:
        return None
    members = {tuple(member.split("/", 1)) for member in group.accounts}
    net = ZERO
    for (venue, account, symbol), qty in view.positions.items():
        if (venue, account) in members and view.bases.get((venue, symbol)) == base:
            reference = view.references.get((venue, symbol))
            if reference is not None:
                net += qty * reference[0]
    # Resting orders in the intent's direction may all fill: count them too.
    for (venue, account), orders in view.resting.items():
        if (venue, account) not in members:
            continue
        for order in orders.values():
            reference = view.references.get((venue, order.symbol))
            if (order.side is intent.side and reference is not None
                    and view.bases.get((venue, order.symbol)) == base):
                net += order.remaining * order.side.sign * reference[0]
    mid = view.references[(intent.venue, intent.symbol)][0]
    after = net + intent.qty * intent.side.sign * mid
    if abs(after) > group.max_net_exposure_notional and abs(after) > abs(net):
        return Denial(DenyReason.MAX_GROUP_EXPOSURE, f"group {group.name} net {base} exposure "
                      f"would be {after:.2f}, limit {group.max_net_exposure_notional}")
    return None


def check_open_orders(intent: OrderIntent, view: RiskView, limits: AccountLimits) -> Denial | None:
    count = len(view.resting.get((intent.venue, intent.account), {}))
    if count >= limits.max_open_orders:
        return Denial(DenyReason.MAX_OPEN_ORDERS, f"{count} orders open, limit "
                      f"{limits.max_open_orders}")
    return None


def check_rate(
    intent: OrderIntent, view: RiskView, limits: AccountLimits, now_s: float
) -> Denial | None:
    key = (intent.venue, intent.account)
    bucket = view.buckets.get(key)
    if bucket is None:
        bucket = view.buckets[key] = TokenBucket(limits.max_orders_per_s, limits.order_burst)
    if not bucket.take(now_s):
        return Denial(DenyReason.ORDER_RATE, f"over {limits.max_orders_per_s} orders/s")
    return None


def check_daily_loss(daily_pnl: Decimal, config: RiskConfig) -> Denial | None:
    if daily_pnl <= -config.daily_loss_limit:
        return Denial(DenyReason.DAILY_LOSS, f"daily PnL {daily_pnl:.2f} breaches "
                      f"-{config.daily_loss_limit}")
    return None


def _resting_qty(intent: OrderIntent, view: RiskView) -> Decimal:
    """Resting (and in-flight) qty of this account on the intent's symbol and side."""
    return sum(
        (order.remaining for order in view.resting.get((intent.venue, intent.account), {}).values()
         if order.symbol == intent.symbol and order.side is intent.side),
        ZERO,
    )


def _reduces(intent: OrderIntent, position: Decimal, resting_same_side: Decimal = ZERO) -> bool:
    """Trades against an open position without flipping it, counting what already rests on
    that side (five sells each smaller than a long are not five reductions). A reduce-only
    order larger than what is left still reduces: the venue caps it at the position."""
    if intent.qty <= 0 or position == 0 or (position > 0) == (intent.side is Side.BUY):
        return False
    left = abs(position) - resting_same_side
    if intent.reduce_only:
        return True
    return left > 0 and intent.qty <= left
