"""The venue interface: what every adapter (paper, Aster, Backpack) provides.

Two halves, because they have different owners and lifetimes: market data needs no
credentials and feeds one feed actor per venue; an account client holds one account's
credentials and is used only by that account's gateway.

Functions take no timeout: the feed or gateway that calls them owns the deadline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from ._models import (
    Balance,
    Fill,
    FundingPayment,
    Instrument,
    MarketEvent,
    OrderRequest,
    Position,
    UserEvent,
    VenueOrder,
)


class MarketDataClient(Protocol):
    @property
    def venue(self) -> str: ...

    async def instruments(self) -> list[Instrument]: ...

    async def server_time_ns(self) -> int: ...

    def stream_market(
        self, symbols: Sequence[str]
    ) -> AbstractAsyncContextManager[AsyncIterator[MarketEvent]]:
        """Top of book, trades and mark price/funding for `symbols` until the context ends.

        The iterator ends (or raises VenueTransportError) when the venue drops the stream;
        the caller reconnects.
        """
        ...


class AccountClient(Protocol):
    @property
    def venue(self) -> str: ...

    @property
    def account(self) -> str: ...

    async def place_order(self, request: OrderRequest) -> VenueOrder:
        """Place; returns the order as the venue has it after any immediate matching.

        Raises VenueRejectedError (said no), OrderOutcomeUnknownError (may exist: reconcile),
        VenueTransportError (did not arrive: retry with the same client id).
        """
        ...

    async def cancel_order(self, symbol: str, client_id: str) -> VenueOrder: ...

    async def cancel_all(self, symbol: str | None = None) -> list[VenueOrder]:
        """Cancel everything the account has open on the venue, not only what we track."""
        ...

    async def get_order(self, symbol: str, client_id: str) -> VenueOrder:
        """One order's current state; VenueRejectedError(UNKNOWN_ORDER) if the venue has none."""
        ...

    async def open_orders(self, symbol: str | None = None) -> list[VenueOrder]: ...

    async def positions(self) -> list[Position]: ...

    async def balances(self) -> list[Balance]: ...

    async def fills(self, since_ns: int) -> list[Fill]:
        """Our fills with ts_venue_ns >= since_ns, oldest first. `fill_id` is unique per
        venue (adapters of venues that number trades per symbol prefix the symbol)."""
        ...

    async def funding(self, since_ns: int) -> list[FundingPayment]:
        """Funding paid or received with ts_venue_ns >= since_ns, oldest first."""
        ...

    def stream_user(self) -> AbstractAsyncContextManager[AsyncIterator[UserEvent]]:
        """Order updates, fills and funding payments of this account, in venue order."""
        ...

    async def arm_cancel_all_after(self, symbol: str, countdown_ms: int) -> bool:
        """Venue dead man's switch: cancel `symbol`'s orders unless re-armed within
        `countdown_ms` (0 disarms). Returns False where the venue has no such switch."""
        ...
