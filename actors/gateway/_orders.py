"""The gateway's view of its orders: a state machine per client id. Pure, no trio.

    pending → open | partially_filled | filled | rejected | expired | cancelled
    open → partially_filled | filled | cancelled | expired
    partially_filled → partially_filled (more filled) | filled | cancelled | expired
    terminal → nothing: a late report is ignored, so an order never comes back to life

A venue may report the same state twice or out of order (Aster user events need sorting by
event time); `apply` keeps the furthest state and says whether anything changed.
"""

from __future__ import annotations

from dataclasses import dataclass

from exchanges import OrderStatus, VenueOrder

from ..messages import OrderIntent

_RANK = {
    OrderStatus.PENDING: 0,
    OrderStatus.OPEN: 1,
    OrderStatus.PARTIALLY_FILLED: 2,
}


@dataclass
class TrackedOrder:
    strategy: str
    symbol: str
    intent: OrderIntent | None
    """None for orders adopted from the venue."""
    order: VenueOrder | None = None
    expire_at_s: float | None = None

    @property
    def status(self) -> OrderStatus:
        return OrderStatus.PENDING if self.order is None else self.order.status


class OrderTracker:
    def __init__(self) -> None:
        self.orders: dict[str, TrackedOrder] = {}

    def add(self, intent: OrderIntent) -> TrackedOrder:
        tracked = TrackedOrder(strategy=intent.strategy, symbol=intent.symbol, intent=intent)
        self.orders[intent.client_id] = tracked
        return tracked

    def adopt(self, order: VenueOrder, strategy: str) -> TrackedOrder:
        tracked = TrackedOrder(strategy=strategy, symbol=order.symbol, intent=None, order=order)
        self.orders[order.client_id] = tracked
        return tracked

    def get(self, client_id: str) -> TrackedOrder | None:
        return self.orders.get(client_id)

    def apply(self, order: VenueOrder) -> bool:
        """Take a venue report; True if it moved the order forward."""
        tracked = self.orders.get(order.client_id)
        if tracked is None:
            return False
        if not _advances(tracked.order, order):
            return False
        tracked.order = order
        return True

    def forget(self, client_id: str) -> None:
        self.orders.pop(client_id, None)

    def live(self) -> list[TrackedOrder]:
        return [t for t in self.orders.values() if not t.status.is_terminal]

    def prune_terminal(self) -> None:
        """Terminal orders are in the journal; the tracker keeps only what may still change."""
        self.orders = {cid: t for cid, t in self.orders.items() if not t.status.is_terminal}


def _advances(current: VenueOrder | None, update: VenueOrder) -> bool:
    if current is None:
        return True
    if current.status.is_terminal:
        return False
    if update.status.is_terminal:
        return True
    if update.filled_qty != current.filled_qty:
        return update.filled_qty > current.filled_qty
    return _RANK.get(update.status, 0) > _RANK.get(current.status, 0)
