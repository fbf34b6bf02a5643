"""What the journal holds: five record types, one per kind of fact worth surviving a crash.

Records are frozen, tagged msgspec Structs like every Steward message, so the same values can
cross a mailbox (the journal actor's), the journal file and, later, a process boundary. Money
is Decimal and timestamps are integer nanoseconds, as in `exchanges`.

Each record says how it is stored, which is what makes replays and reconciliation safe:

- `OrderRecorded` is an upsert keyed by (venue, account, client_id): the latest state wins,
  except that a terminal status is never replaced by a non-terminal one (a late "open" must not
  resurrect a filled order).
- `FillRecorded` and `FundingRecorded` are idempotent inserts keyed by the venue's identity of
  the fact, so re-recording what reconciliation found again counts nothing twice.
- `EventRecorded` and `TradingStateRecorded` are append-only history.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

import msgspec

from exchanges import Fill, FundingPayment, OrderStatus, OrderType, Side, TimeInForce

TRADING_STATES: Final = frozenset({"active", "reduce_only", "halted"})
"""The values `TradingStateRecorded.state` may take (risk's ACTIVE/REDUCING/HALTED)."""


class OrderRecorded(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """One order's state at one moment, as the gateway knows it."""

    ts_ns: int
    strategy: str
    venue: str
    account: str
    client_id: str
    symbol: str
    side: Side
    order_type: OrderType
    tif: TimeInForce
    qty: Decimal
    price: Decimal | None
    """None for market orders."""
    reduce_only: bool
    status: OrderStatus
    filled_qty: Decimal
    venue_order_id: str
    """"" while the venue has not told us its id."""
    reason: str
    """Why it was rejected, cancelled or expired; "" otherwise."""


class FillRecorded(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """A fill and the strategy that owns the order. Journaled before strategies hear of it."""

    fill: Fill
    strategy: str


class FundingRecorded(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    payment: FundingPayment


class EventRecorded(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Something an operator may want to know later: a crash, an adopted order, a denial."""

    ts_ns: int
    kind: str
    """Snake case, e.g. "actor_crashed", "reconcile_adopted_order", "control_action"."""
    source: str
    """Who reports it: an actor name, or the control plane's caller."""
    detail: str
    """JSON text made by the caller (checked to parse). Never secrets."""


class TradingStateRecorded(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """A change of trading state. The latest row is the current state."""

    ts_ns: int
    state: str
    """One of TRADING_STATES."""
    reason: str
    actor: str
    """Who changed it: an actor name or a control-plane identity."""


JournalRecord = (
    OrderRecorded | FillRecorded | FundingRecorded | EventRecorded | TradingStateRecorded
)

RECORDS: Final = (
    OrderRecorded, FillRecorded, FundingRecorded, EventRecorded, TradingStateRecorded,
)
"""Every record type, once: for isinstance checks and for a process codec's tagged union."""
