"""Fault injectors: a venue account client that fails the way live venues do.

`FaultyAccount` wraps a real (paper) account client. Faults are queued per operation and used
once each, so a test says exactly which call fails and how:

- `lost_request`: the call never reached the venue (VenueTransportError, nothing happened)
- `lost_response`: the venue did it, the answer was lost (VenueTransportError afterwards)
- `unknown_outcome`: HTTP 503 after the venue did it (OrderOutcomeUnknownError)
- `unknown_outcome_not_placed`: HTTP 503 and the venue never did it
- `rate_limited`: HTTP 429 with `Retry-After: 5`, nothing happened
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Literal

from exchanges import (
    AccountClient,
    Balance,
    Fill,
    FundingPayment,
    OrderOutcomeUnknownError,
    OrderRequest,
    Position,
    RateLimitedError,
    UserEvent,
    VenueOrder,
    VenueTransportError,
)

Fault = Literal["lost_request", "lost_response", "unknown_outcome", "unknown_outcome_not_placed",
                "rate_limited"]
RATE_LIMIT_RETRY_AFTER_S = 5.0


class FaultyAccount:
    def __init__(self, inner: AccountClient) -> None:
        self.inner = inner
        self.place_faults: list[Fault] = []
        self.place_calls: list[OrderRequest] = []
        self.cancel_faults: list[Fault] = []
        self.get_rate_limits = 0
        """How many of the next `get_order` calls answer HTTP 429."""

    def fail_next_place(self, *faults: Fault) -> None:
        self.place_faults.extend(faults)

    def fail_next_cancel(self, *faults: Fault) -> None:
        self.cancel_faults.extend(faults)

    @property
    def venue(self) -> str:
        return self.inner.venue

    @property
    def account(self) -> str:
        return self.inner.account

    async def place_order(self, request: OrderRequest) -> VenueOrder:
        self.place_calls.append(request)
        fault = self.place_faults.pop(0) if self.place_faults else None
        if fault == "lost_request":
            raise VenueTransportError(self.venue, "connection reset before the request was sent")
        if fault == "unknown_outcome_not_placed":
            raise OrderOutcomeUnknownError(self.venue, request.client_id, "HTTP 503")
        if fault == "rate_limited":
            raise RateLimitedError(self.venue, "HTTP 429: too many requests",
                                   retry_after_s=RATE_LIMIT_RETRY_AFTER_S)
        order = await self.inner.place_order(request)
        if fault == "lost_response":
            raise VenueTransportError(self.venue, "read timeout")
        if fault == "unknown_outcome":
            raise OrderOutcomeUnknownError(self.venue, request.client_id, "HTTP 503")
        return order

    async def cancel_order(self, symbol: str, client_id: str) -> VenueOrder:
        fault = self.cancel_faults.pop(0) if self.cancel_faults else None
        if fault in ("lost_request", "unknown_outcome_not_placed"):
            raise VenueTransportError(self.venue, "read timeout before the cancel was sent")
        order = await self.inner.cancel_order(symbol, client_id)
        if fault in ("lost_response", "unknown_outcome"):
            raise OrderOutcomeUnknownError(self.venue, client_id, "HTTP 503 on cancel")
        return order

    async def cancel_all(self, symbol: str | None = None) -> list[VenueOrder]:
        return await self.inner.cancel_all(symbol)

    async def get_order(self, symbol: str, client_id: str) -> VenueOrder:
        if self.get_rate_limits > 0:
            self.get_rate_limits -= 1
            raise RateLimitedError(self.venue, "HTTP 429: too many requests",
                                   retry_after_s=RATE_LIMIT_RETRY_AFTER_S)
        return await self.inner.get_order(symbol, client_id)

    async def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        return await self.inner.open_orders(symbol)

    async def positions(self) -> list[Position]:
        return await self.inner.positions()

    async def balances(self) -> list[Balance]:
        return await self.inner.balances()

    async def fills(self, since_ns: int) -> list[Fill]:
        return await self.inner.fills(since_ns)

    async def funding(self, since_ns: int) -> list[FundingPayment]:
        return await self.inner.funding(since_ns)

    def stream_user(self) -> AbstractAsyncContextManager[AsyncIterator[UserEvent]]:
        return self.inner.stream_user()

    async def arm_cancel_all_after(self, symbol: str, countdown_ms: int) -> bool:
        return await self.inner.arm_cancel_all_after(symbol, countdown_ms)


def requests_by_client_id(calls: Sequence[OrderRequest]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for request in calls:
        counts[request.client_id] = counts.get(request.client_id, 0) + 1
    return counts
