"""What every venue speaks: instruments, orders, fills, positions, balances, market data.

Money and quantities are Decimal from the wire to the journal. Timestamps say their unit:
`ts_venue_ns` is the venue's clock, `ts_local_ns` ours at receipt. Structs are frozen and
tagged: the same types cross mailboxes, the journal and (later) process boundaries.
"""

from __future__ import annotations

import enum
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Literal

import msgspec


class Side(enum.Enum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(enum.Enum):
    LIMIT = "limit"
    MARKET = "market"


class TimeInForce(enum.Enum):
    GTC = "gtc"
    IOC = "ioc"
    POST_ONLY = "post_only"
    """Aster GTX, Backpack postOnly: rejected if it would take liquidity."""


class OrderStatus(enum.Enum):
    PENDING = "pending"
    """Sent, no answer yet (gateway-side only)."""
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)


class Liquidity(enum.Enum):
    MAKER = "maker"
    TAKER = "taker"


class Instrument(msgspec.Struct, frozen=True, kw_only=True):
    """A tradable symbol and its filters (from exchangeInfo / markets: never precision fields)."""

    venue: str
    symbol: str
    base: str
    quote: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    min_notional: Decimal = Decimal(0)
    kind: Literal["perp", "spot"] = "perp"
    """Perpetual futures trade on margin and hold positions; spot trades balances."""

    @property
    def is_spot(self) -> bool:
        return self.kind == "spot"

    def round_price(self, price: Decimal, side: Side) -> Decimal:
        """To the tick, away from crossing: bids round down, asks round up."""
        rounding = ROUND_FLOOR if side is Side.BUY else ROUND_CEILING
        ticks = (price / self.tick_size).to_integral_value(rounding=rounding)
        return ticks * self.tick_size

    def round_qty(self, qty: Decimal) -> Decimal:
        """Down to the step: never more than asked."""
        steps = (qty / self.step_size).to_integral_value(rounding=ROUND_FLOOR)
        return steps * self.step_size


class OrderRequest(msgspec.Struct, frozen=True, kw_only=True):
    """An order as we send it. `client_id` is ours and idempotent across retries."""

    client_id: str
    symbol: str
    side: Side
    order_type: OrderType
    qty: Decimal
    price: Decimal | None = None
    tif: TimeInForce = TimeInForce.GTC
    reduce_only: bool = False


class VenueOrder(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """An order as the venue reports it, at one moment."""

    venue: str
    account: str
    client_id: str
    venue_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    tif: TimeInForce
    qty: Decimal
    price: Decimal | None
    filled_qty: Decimal
    status: OrderStatus
    reduce_only: bool
    ts_venue_ns: int
    reason: str = ""
    """Why it was rejected or expired, in the venue's words."""


class Fill(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """One execution of one of our orders. `fill_id` is unique per venue."""

    venue: str
    account: str
    fill_id: str
    client_id: str
    venue_order_id: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    fee: Decimal
    """Positive is paid; negative is a rebate."""
    fee_asset: str
    liquidity: Liquidity
    ts_venue_ns: int


class FundingPayment(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    venue: str
    account: str
    symbol: str
    amount: Decimal
    """Received (+) or paid (-) in the quote asset."""
    rate: Decimal
    position_qty: Decimal
    mark_price: Decimal
    ts_venue_ns: int


class Position(msgspec.Struct, frozen=True, kw_only=True):
    venue: str
    account: str
    symbol: str
    qty: Decimal
    """Signed: + long, - short."""
    entry_price: Decimal


class Balance(msgspec.Struct, frozen=True, kw_only=True):
    asset: str
    total: Decimal
    available: Decimal


class BookTop(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    venue: str
    symbol: str
    bid: Decimal
    bid_qty: Decimal
    ask: Decimal
    ask_qty: Decimal
    ts_venue_ns: int
    ts_local_ns: int

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2


class Trade(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """A market trade (anyone's). `aggressor` is the side that took liquidity."""

    venue: str
    symbol: str
    price: Decimal
    qty: Decimal
    aggressor: Side
    ts_venue_ns: int
    ts_local_ns: int


class MarkPrice(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    venue: str
    symbol: str
    mark_price: Decimal
    funding_rate: Decimal
    next_funding_ns: int
    """Venue clock, ns: when the next funding payment happens."""
    ts_venue_ns: int
    ts_local_ns: int


MarketEvent = BookTop | Trade | MarkPrice
UserEvent = VenueOrder | Fill | FundingPayment
