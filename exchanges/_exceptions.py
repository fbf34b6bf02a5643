"""Errors of venue adapters, chosen by class (never by parsing messages).

```
VenueError
├── VenueTransportError        retryable: timeout, disconnect, 5xx other than 503 on orders
├── VenueRejectedError         the venue said no; `reason` says why; do not retry as is
├── OrderOutcomeUnknownError   the order may or may not exist: reconcile before anything else
└── VenueAuthError             credentials refused: fatal for that gateway, escalate
```
Messages carry codes and the venue's words, never credentials or signed payloads.
"""

from __future__ import annotations

import enum


class RejectReason(enum.Enum):
    PRICE_TICK = "price_tick"
    QTY_STEP = "qty_step"
    MIN_QTY = "min_qty"
    MIN_NOTIONAL = "min_notional"
    POST_ONLY_WOULD_TAKE = "post_only_would_take"
    INSUFFICIENT_MARGIN = "insufficient_margin"
    REDUCE_ONLY_WOULD_INCREASE = "reduce_only_would_increase"
    DUPLICATE_CLIENT_ID = "duplicate_client_id"
    UNKNOWN_ORDER = "unknown_order"
    UNKNOWN_SYMBOL = "unknown_symbol"
    RATE_LIMITED = "rate_limited"
    TIMESTAMP = "timestamp"
    INVALID = "invalid"
    """Anything else the venue refused; `code` and the message say more."""


class VenueError(Exception):
    def __init__(self, venue: str, message: str) -> None:
        super().__init__(f"{venue}: {message}")
        self.venue = venue


class VenueTransportError(VenueError):
    """The request may not have arrived; safe to retry (idempotent client ids)."""


class VenueRejectedError(VenueError):
    def __init__(self, venue: str, reason: RejectReason, message: str, code: str = "") -> None:
        super().__init__(venue, f"{reason.value}: {message}" + (f" (code {code})" if code else ""))
        self.reason = reason
        self.code = code


class OrderOutcomeUnknownError(VenueError):
    def __init__(self, venue: str, client_id: str, message: str) -> None:
        super().__init__(venue, f"outcome of {client_id} unknown: {message}")
        self.client_id = client_id


class VenueAuthError(VenueError):
    """Keys refused or expired."""
