"""Reconciliation: make the journal agree with the venue before a gateway takes orders.

Run after every (re)start of a gateway and after its user stream reconnects. The venue is
the truth: what it has, we adopt; every difference becomes an event in the journal.

- orders the venue has open that the journal lacks → adopted (recorded, strategy unknown
  unless the journal knew the client id)
- orders the journal thinks open that the venue does not → closed: filled if their fills
  cover them, else cancelled
- fills since the last journaled one (with overlap: recording is idempotent) → recorded
- positions: the journal's fills against the venue's positions, each drift reported
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

import msgspec

from exchanges import AccountClient, Fill, OrderStatus, PositionState, VenueOrder

from ..journal import EventRecorded, FillRecorded, FundingRecorded, Journal, OrderRecorded

ADOPTED_STRATEGY: Final = "adopted"
FILL_OVERLAP_NS: Final = 60 * 10**9  # re-read a minute before the last journaled fill


@dataclass
class ReconcileReport:
    adopted_orders: list[VenueOrder] = field(default_factory=list)
    closed_orders: list[OrderRecorded] = field(default_factory=list)
    new_fills: list[FillRecorded] = field(default_factory=list)
    new_funding: list[FundingRecorded] = field(default_factory=list)
    position_drift: list[tuple[str, Decimal, Decimal]] = field(default_factory=list)
    """(symbol, journal qty, venue qty) where they differ."""
    open_orders: list[OrderRecorded] = field(default_factory=list)
    """The journal's open orders after reconciling (strategy attribution)."""
    venue_open_orders: list[VenueOrder] = field(default_factory=list)
    """What the venue has open: what the gateway tracks from now on."""

    @property
    def clean(self) -> bool:
        return not (self.adopted_orders or self.closed_orders or self.new_fills
                    or self.new_funding or self.position_drift)


def venue_order(record: OrderRecorded) -> VenueOrder:
    """An order as the journal last recorded it, in the venue's terms."""
    return VenueOrder(
        venue=record.venue, account=record.account, client_id=record.client_id,
        venue_order_id=record.venue_order_id, symbol=record.symbol, side=record.side,
        order_type=record.order_type, tif=record.tif, qty=record.qty, price=record.price,
        filled_qty=record.filled_qty, status=record.status, reduce_only=record.reduce_only,
        ts_venue_ns=record.ts_ns, reason=record.reason,
    )


def order_record(order: VenueOrder, strategy: str, ts_ns: int | None = None) -> OrderRecorded:
    return OrderRecorded(
        ts_ns=time.time_ns() if ts_ns is None else ts_ns, strategy=strategy, venue=order.venue,
        account=order.account, client_id=order.client_id, symbol=order.symbol, side=order.side,
        order_type=order.order_type, tif=order.tif, qty=order.qty, price=order.price,
        reduce_only=order.reduce_only, status=order.status, filled_qty=order.filled_qty,
        venue_order_id=order.venue_order_id, reason=order.reason,
    )


async def reconcile(
    journal: Journal,
    client: AccountClient,
    source: str,
    owner_of: Callable[[str], str | None] = lambda client_id: None,
) -> ReconcileReport:
    """`owner_of` names the strategy a client id belongs to when the journal never heard of
    the order (the gateway died between sending it and recording it)."""
    venue, account = client.venue, client.account
    report = ReconcileReport()
    events: list[EventRecorded] = []

    def event(kind: str, **detail: object) -> None:
        events.append(EventRecorded(ts_ns=time.time_ns(), kind=kind, source=source,
                                    detail=json.dumps(detail, default=str)))

    async def strategy_of(client_id: str) -> str:
        known = await journal.order(venue, account, client_id)
        if known is not None:
            return known.strategy
        return owner_of(client_id) or ADOPTED_STRATEGY

    # Fills first: they decide whether a vanished order was filled or cancelled.
    last_ns = await journal.last_fill_ts_ns(venue, account)
    since_ns = 0 if last_ns is None else last_ns - FILL_OVERLAP_NS
    venue_fills = await client.fills(since_ns)
    fill_records = [FillRecorded(fill=f, strategy=await strategy_of(f.client_id))
                    for f in venue_fills]
    for record, new in zip(fill_records, await journal.record_many(fill_records), strict=True):
        if new:
            report.new_fills.append(record)
            event("reconcile_adopted_fill", fill_id=record.fill.fill_id,
                  client_id=record.fill.client_id, qty=record.fill.qty, price=record.fill.price)

    journaled_funding = await journal.funding(venue=venue, account=account)
    funding_since = max((f.payment.ts_venue_ns for f in journaled_funding), default=0)
    funding_records = [FundingRecorded(payment=p)
                       for p in await client.funding(max(0, funding_since - FILL_OVERLAP_NS))]
    funding_new = await journal.record_many(funding_records)
    for paid, new in zip(funding_records, funding_new, strict=True):
        if new:
            report.new_funding.append(paid)
            event("reconcile_adopted_funding", symbol=paid.payment.symbol,
                  amount=paid.payment.amount, ts_venue_ns=paid.payment.ts_venue_ns)

    venue_open = {order.client_id: order for order in await client.open_orders()}
    journal_open = {o.client_id: o for o in await journal.open_orders(venue, account)}
    updates: list[OrderRecorded] = []
    for client_id, order in venue_open.items():
        known = journal_open.get(client_id)
        if known is None:
            strategy = await strategy_of(client_id)
            report.adopted_orders.append(order)
            updates.append(order_record(order, strategy))
            event("reconcile_adopted_order", client_id=client_id, symbol=order.symbol,
                  side=order.side.value, qty=order.qty, price=order.price, strategy=strategy)
        elif (known.status, known.filled_qty) != (order.status, order.filled_qty):
            updates.append(order_record(order, known.strategy))
    fills_by_order = _filled_qty(await journal.fills(venue=venue, account=account))
    for client_id, known in journal_open.items():
        if client_id in venue_open:
            continue
        filled = fills_by_order.get(client_id, Decimal(0))
        status = OrderStatus.FILLED if filled >= known.qty else OrderStatus.CANCELLED
        closed = msgspec.structs.replace(known, status=status, filled_qty=filled,
                                         ts_ns=time.time_ns(), reason="closed while we were away")
        report.closed_orders.append(closed)
        updates.append(closed)
        event("reconcile_closed_order", client_id=client_id, status=status.value,
              filled_qty=filled)

    journal_positions = _positions(await journal.fills(venue=venue, account=account))
    venue_positions = {p.symbol: p.qty for p in await client.positions()}
    for symbol in sorted(set(journal_positions) | set(venue_positions)):
        ours = journal_positions.get(symbol, Decimal(0))
        theirs = venue_positions.get(symbol, Decimal(0))
        if ours != theirs:
            report.position_drift.append((symbol, ours, theirs))
            event("reconcile_position_drift", symbol=symbol, journal_qty=ours,
                  venue_qty=theirs)

    await journal.record_many([*updates, *events])
    report.open_orders = await journal.open_orders(venue, account)
    report.venue_open_orders = list(venue_open.values())
    return report


def _filled_qty(fills: list[FillRecorded]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for record in fills:
        totals[record.fill.client_id] = totals.get(record.fill.client_id, Decimal(0)) + (
            record.fill.qty
        )
    return totals


def _positions(fills: list[FillRecorded]) -> dict[str, Decimal]:
    states: dict[str, PositionState] = {}
    for record in fills:
        fill: Fill = record.fill
        states.setdefault(fill.symbol, PositionState()).apply_fill(fill.side, fill.qty, fill.price)
    return {symbol: state.qty for symbol, state in states.items() if state.qty != 0}

