"""Backpack market data over one WebSocket connection (venues.md §2.1, §2.5).

`BackpackMarketData` is the `MarketDataClient` for Backpack: instruments and server time come
from `BackpackRest`; `stream_market` connects, sends one `SUBSCRIBE` for `bookTicker.<sym>` and
`markPrice.<sym>` of every symbol, and yields `BookTop` and `MarkPrice` in arrival order. Depth
is not subscribed here: the local book is synced separately (`BackpackBookSync`).

Error handling: a frame we cannot read is logged (one line: stream and reason, never the
payload) and skipped; the stream stays up. A failed connect or subscribe, or a close with any
code other than 1000 (normal) or 1001 (going away), raises `VenueTransportError`. A normal
close, including the Close a server sends before its 30 s shutdown grace, ends the iterator.
Either way the caller (the feed actor) reconnects by calling `stream_market` again.

Resource handling: the connection lives exactly as long as the `stream_market` context.
trio-websocket answers the server's pings (every 60 s, Close after 120 s without a pong) by
itself in its reader task, as long as the consumer keeps reading.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Final

import msgspec

from .._market_ws import open_market_frames
from .._models import BookTop, Instrument, MarketEvent, MarkPrice
from ._rest import BackpackRest
from ._streams import VENUE, BackpackMarkPrice, decode_market_message

WS_URL: Final = "wss://ws.backpack.exchange"
"""§2.1."""
_NS_PER_US: Final = 1_000
_NS_PER_MS: Final = 1_000_000


def subscribe_message(symbols: Sequence[str]) -> str:
    """`{"method":"SUBSCRIBE","params":["bookTicker.<sym>","markPrice.<sym>",...]}` (§2.5)."""
    if not symbols:
        raise ValueError("stream_market needs at least one symbol")
    params = [f"{kind}.{s}" for s in symbols for kind in ("bookTicker", "markPrice")]
    return msgspec.json.encode({"method": "SUBSCRIBE", "params": params}).decode()


def _mark_price(wire: BackpackMarkPrice, ts_local_ns: int) -> MarkPrice:
    return MarkPrice(venue=VENUE, symbol=wire.symbol, mark_price=wire.mark_price,
                     funding_rate=wire.funding_rate,
                     next_funding_ns=wire.next_funding_time_ms * _NS_PER_MS,
                     ts_venue_ns=wire.ts_event_us * _NS_PER_US, ts_local_ns=ts_local_ns)


def _event(raw: str | bytes, ts_local_ns: int) -> MarketEvent | None:
    event = decode_market_message(raw, ts_local_ns=ts_local_ns)
    if isinstance(event, BackpackMarkPrice):
        return _mark_price(event, ts_local_ns)
    if isinstance(event, BookTop):
        return event
    return None  # a depth update is not ours to apply here: book sync owns depth


class BackpackMarketData:
    """Backpack `MarketDataClient`: REST for instruments and time, one WS for the rest."""

    def __init__(self, rest: BackpackRest, *, ws_url: str = WS_URL) -> None:
        self._rest = rest
        self._ws_url = ws_url

    @property
    def venue(self) -> str:
        return VENUE

    async def instruments(self) -> list[Instrument]:
        return await self._rest.instruments()

    async def server_time_ns(self) -> int:
        return await self._rest.server_time_ms() * _NS_PER_MS

    @asynccontextmanager
    async def stream_market(
        self, symbols: Sequence[str]
    ) -> AsyncIterator[AsyncIterator[MarketEvent]]:
        """Book tops and mark prices of `symbols` on one connection until the context ends.

        The iterator ends when the venue closes normally and raises `VenueTransportError`
        on an abnormal close; a failed connect or subscribe raises it on entry.
        """
        message = subscribe_message(symbols)
        async with open_market_frames(VENUE, self._ws_url, _event, subscribe=message) as frames:
            yield frames
