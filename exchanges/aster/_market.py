"""Aster futures market data over one combined WebSocket stream (venues.md §1.2, §1.7).

`AsterMarketData` is the `MarketDataClient` for Aster: instruments and server time come from
`AsterRest`; `stream_market` opens one combined-stream connection carrying `<s>@bookTicker`
and `<s>@markPrice@1s` for every symbol and yields `BookTop` and `MarkPrice` in arrival order.
Depth is not subscribed here: the local book is synced separately (`AsterBookSync`).

Error handling: a frame we cannot read is logged (one line: stream and reason, never the
payload) and skipped; the stream stays up. A failed connect, or a close with any code other
than 1000 (normal) or 1001 (going away), raises `VenueTransportError`. A normal close, which
includes the venue's planned disconnect after 24 h, ends the iterator. Either way the caller
(the feed actor) reconnects by calling `stream_market` again.

Resource handling: the connection lives exactly as long as the `stream_market` context.
trio-websocket answers the venue's pings (every 5 min, pong due within 15 min) by itself in
its reader task, as long as the consumer keeps reading.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Final

from .._market_ws import open_market_frames
from .._models import BookTop, Instrument, MarketEvent, MarkPrice
from ._rest import AsterRest
from ._streams import VENUE, AsterMarkPrice, decode_combined

FUTURES_WS_URL: Final = "wss://fstream.asterdex.com"
"""Futures WebSocket base (§1.2); combined streams are under `/stream?streams=a/b/c`."""
MAX_STREAMS_PER_CONNECTION: Final = 200
"""§1.7: more streams on one connection are refused; each symbol takes two here."""
_NS_PER_MS: Final = 1_000_000


def combined_stream_url(ws_url: str, symbols: Sequence[str]) -> str:
    """`<ws_url>/stream?streams=btcusdt@bookTicker/btcusdt@markPrice@1s/...` (lowercase, §1.7)."""
    if not symbols:
        raise ValueError("stream_market needs at least one symbol")
    names = [f"{s.lower()}@{kind}" for s in symbols for kind in ("bookTicker", "markPrice@1s")]
    if len(names) > MAX_STREAMS_PER_CONNECTION:
        raise ValueError(f"{len(names)} streams exceed {MAX_STREAMS_PER_CONNECTION} per connection")
    return f"{ws_url.rstrip('/')}/stream?streams={'/'.join(names)}"


def _mark_price(wire: AsterMarkPrice, ts_local_ns: int) -> MarkPrice:
    return MarkPrice(venue=VENUE, symbol=wire.symbol, mark_price=wire.mark_price,
                     funding_rate=wire.funding_rate,
                     next_funding_ns=wire.next_funding_time_ms * _NS_PER_MS,
                     ts_venue_ns=wire.ts_event_ms * _NS_PER_MS, ts_local_ns=ts_local_ns)


def _event(raw: str | bytes, ts_local_ns: int) -> MarketEvent | None:
    event = decode_combined(raw, ts_local_ns=ts_local_ns)
    if isinstance(event, AsterMarkPrice):
        return _mark_price(event, ts_local_ns)
    if isinstance(event, BookTop):
        return event
    return None  # a depth update is not ours to apply here: book sync owns depth


class AsterMarketData:
    """Aster futures `MarketDataClient`: REST for instruments and time, one WS for the rest."""

    def __init__(self, rest: AsterRest, *, ws_url: str = FUTURES_WS_URL) -> None:
        self._rest = rest
        self._ws_url = ws_url

    @property
    def venue(self) -> str:
        return VENUE

    async def instruments(self) -> list[Instrument]:
        return await self._rest.instruments()

    async def server_time_ns(self) -> int:
        return await self._rest.server_time_ns()

    @asynccontextmanager
    async def stream_market(
        self, symbols: Sequence[str]
    ) -> AsyncIterator[AsyncIterator[MarketEvent]]:
        """Book tops and mark prices of `symbols` on one connection until the context ends.

        The iterator ends when the venue closes normally and raises `VenueTransportError`
        on an abnormal close; a failed connect raises `VenueTransportError` on entry.
        """
        url = combined_stream_url(self._ws_url, symbols)
        async with open_market_frames(VENUE, url, _event) as frames:
            yield frames
