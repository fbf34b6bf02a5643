"""Messages of the trading actors: commands (imperative, to one owner), events (past tense).

```
strategy --SubmitOrder--> risk --SubmitOrder--> gateway --> venue
strategy <--OrderDenied-- risk                (our risk said no)
strategy <--OrderAccepted | OrderRejected | OrderUpdated | OrderFilled-- gateway
```
Every SubmitOrder ends in exactly one of OrderDenied, OrderRejected or OrderAccepted; an
accepted order then ends in one terminal OrderUpdated (filled, cancelled, expired). Fills are
journaled before anyone hears of them. Money is Decimal, timestamps say their unit.
"""

from __future__ import annotations

import enum
import hashlib
from decimal import Decimal

import msgspec

from exchanges import Fill, FundingPayment, OrderType, Side, TimeInForce, VenueOrder


class TradingState(enum.Enum):
    ACTIVE = "active"
    REDUCE_ONLY = "reduce_only"
    HALTED = "halted"


class DenyReason(enum.Enum):
    """Why our risk said no (the venue's refusals are exchanges.RejectReason)."""

    TRADING_HALTED = "trading_halted"
    REDUCE_ONLY_STATE = "reduce_only_state"
    MAX_ORDER_QTY = "max_order_qty"
    MAX_ORDER_NOTIONAL = "max_order_notional"
    MAX_POSITION = "max_position"
    MAX_GROUP_EXPOSURE = "max_group_exposure"
    PRICE_BAND = "price_band"
    ORDER_RATE = "order_rate"
    MAX_OPEN_ORDERS = "max_open_orders"
    STALE_REFERENCE = "stale_reference"
    NO_REFERENCE = "no_reference"
    SELF_TRADE = "self_trade"
    DAILY_LOSS = "daily_loss"
    UNKNOWN_ACCOUNT = "unknown_account"
    DUPLICATE_CLIENT_ID = "duplicate_client_id"


class OrderIntent(msgspec.Struct, frozen=True, kw_only=True):
    """An order a strategy wants: where, what, and for how long."""

    client_id: str
    strategy: str
    venue: str
    account: str
    symbol: str
    side: Side
    order_type: OrderType
    qty: Decimal
    price: Decimal | None = None
    tif: TimeInForce = TimeInForce.GTC
    reduce_only: bool = False
    expire_after_s: float | None = None
    """The gateway cancels the order if it still rests this long after it was accepted."""
    flatten: bool = False
    """The kill switch's own reduce-only close: the one order HALTED lets through."""
    ts_created_ns: int = 0


# ---- commands ------------------------------------------------------------------------------


class SubmitOrder(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    intent: OrderIntent


class CancelOrder(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    venue: str
    account: str
    symbol: str
    client_id: str


class CancelAll(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Everything the account has on the venue (optionally one symbol), not only ours."""

    venue: str
    account: str
    symbol: str | None = None


class SetTradingState(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    state: TradingState
    reason: str
    actor: str
    """Who asked: a token name, a certificate CN, or an actor."""


class GetTradingState(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    pass


class GetPositions(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """All positions (reply: list[PositionView]), or one strategy's (reply:
    StrategyPositions, with the fills already in them)."""

    strategy: str | None = None


class GetOrders(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """The gateway's tracked orders that are not terminal, of one strategy or all."""

    strategy: str | None = None


class UpdateParams(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Replace a strategy's parameters: validated whole, applied at its next decision."""

    params: dict[str, object]
    dry_run: bool = False


class GetParams(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    pass


class ParamsReply(msgspec.Struct, frozen=True, kw_only=True):
    params: dict[str, object]
    """The parameters in force (after an accepted update, the new ones; else unchanged)."""
    schema: dict[str, object]
    """JSON schema of the parameters."""
    accepted: bool = True
    error: str = ""
    """Why an update was rejected, naming the field (msgspec's words: `... at `$.spread_bps``)."""


class GetFeedStatus(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    pass


class GetBalances(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """The gateway's account balances, as the venue reports them now (reply: list[Balance])."""


# ---- events --------------------------------------------------------------------------------


class OrderDenied(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    intent: OrderIntent
    reason: DenyReason
    detail: str


class OrderAccepted(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    strategy: str
    order: VenueOrder


class OrderRejected(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    intent: OrderIntent
    reason: str
    """exchanges.RejectReason value, or "unknown_outcome_not_found" after reconciliation."""
    detail: str


class OrderUpdated(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """A tracked order changed status (partially filled, filled, cancelled, expired)."""

    strategy: str
    order: VenueOrder


class OrderCancelFailed(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """A cancel did not go through (refused, or its outcome unknown): the order may still
    rest, so its owner must treat it as live and cancel again."""

    strategy: str
    cancel: CancelOrder
    reason: str


class OrderFilled(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """A fill, already in the journal."""

    strategy: str
    fill: Fill


class OpenOrder(msgspec.Struct, frozen=True, kw_only=True):
    client_id: str
    symbol: str
    side: Side
    price: Decimal | None
    remaining_qty: Decimal


class OpenOrdersReconciled(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """After reconciling, what the account really has open: it replaces what risk assumed."""

    venue: str
    account: str
    orders: tuple[OpenOrder, ...]


class FundingPaid(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    payment: FundingPayment


class TradingStateChanged(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    state: TradingState
    reason: str
    actor: str
    ts_ns: int


# ---- replies -------------------------------------------------------------------------------


class PositionView(msgspec.Struct, frozen=True, kw_only=True):
    venue: str
    account: str
    symbol: str
    strategy: str
    qty: Decimal
    entry_price: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    funding: Decimal
    maker_volume: Decimal
    """Quote notional traded as maker."""
    taker_volume: Decimal
    mark_price: Decimal | None


class StrategyPositions(msgspec.Struct, frozen=True, kw_only=True):
    """A strategy's positions, and the keys of its recent fills they already include: a
    restarted strategy skips queued copies of those fills (see actors._recent)."""

    positions: list[PositionView]
    recent_fill_keys: tuple[str, ...]


class FeedStatus(msgspec.Struct, frozen=True, kw_only=True):
    venue: str
    connected: bool
    reconnects: int
    data_age_s: float | None
    """Seconds since the newest quote of any symbol; None before the first."""
    stale_symbols: tuple[str, ...]


def crosses(side: Side, price: Decimal | None, resting_price: Decimal | None) -> bool:
    """Would an order on `side` at `price` trade with a resting order on the other side at
    `resting_price`? None stands for "at any price" (a market order, an unknown price).

    Risk's self-trade rule; strategies ask it too, so they never place what risk would deny.
    """
    if price is None or resting_price is None:
        return True
    return price >= resting_price if side is Side.BUY else price <= resting_price


def quote_key(venue: str, symbol: str) -> tuple[str, str]:
    """The conflation key of market data topics: one pending value per venue and symbol."""
    return (venue, symbol)


def strategy_tag(name: str) -> str:
    """How a strategy's client ids begin: a readable cut of its name and a hash of all of it.

    Unique per name (two strategies sharing their first characters still differ), ids stay
    short and within Aster's [.A-Za-z0-9:/_-]{1,36}, and a gateway that lost track of an order
    (it died mid-placement) can still tell whose it is from the id alone.
    """
    readable = "".join(c for c in name if c.isascii() and (c.isalnum() or c in "-_"))[:6]
    digest = hashlib.blake2b(name.encode(), digest_size=2).hexdigest()
    return f"{readable}{digest}"


def fill_key(fill: Fill) -> str:
    """A fill's identity across the daemon: venue and the venue's fill id."""
    return f"{fill.venue}/{fill.fill_id}"


def funding_key(payment: FundingPayment) -> str:
    return f"{payment.venue}/{payment.account}/{payment.symbol}/{payment.ts_venue_ns}"


def gateway_name(venue: str, account: str) -> str:
    """The registered name of a venue account's gateway."""
    return f"gateway.{venue}.{account}"


RISK: str = "risk"
POSITIONS: str = "positions"
JOURNAL: str = "journal"
