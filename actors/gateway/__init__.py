"""Gateway: one venue account's order path, its order state machine and reconciliation."""

from ._actor import Gateway as Gateway
from ._orders import OrderTracker as OrderTracker
from ._orders import TrackedOrder as TrackedOrder
from ._reconcile import ReconcileReport as ReconcileReport
from ._reconcile import reconcile as reconcile

__all__ = ["Gateway", "OrderTracker", "ReconcileReport", "TrackedOrder", "reconcile"]
