"""Aster spot market data: REST on `sapi.asterdex.com`, book tops on `sstream.asterdex.com`
(venues.md §1.2, §1.5, §1.7 "Spot (`sstream`) differs").

`AsterSpotMarketData` is the spot `MarketDataClient`. Instruments come from
`GET /api/v1/exchangeInfo` read by the shared `instruments_from_exchange_info(kind="spot")`
(filters only, never precision fields); server time from `GET /api/v1/time` (`AsterRest`'s own
clock calls use the futures path, so spot asks itself). `stream_market` opens one combined
stream of `<s>@bookTicker` per symbol and yields `BookTop`s. Spot has no mark price or funding.

The spot `bookTicker` payload is not the futures one: the spot doc (AS1 §"Best order book
information by symbol") shows `{"u","s","b","B","a","A"}` with no event type `e` and no time
`T`, which is Binance spot's shape, so the futures decoder (`_streams.py`, tagged by `e`, needs
`T`) cannot read it. Here `E`/`T` are read when present (T first); without them
`ts_venue_ns` is our wall clock at receipt, the best stand-in for the venue's clock we have.

Error handling and resource handling are `_market_ws.open_market_frames`'s: unreadable frames
are logged and skipped; a normal close (1000/1001, the 24 h limit) ends the iterator; any other
close or a failed connect raises `VenueTransportError`. trio-websocket answers the spot
server's pings (every 3 min, pong due within 10 min) while the consumer keeps reading.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Final

import msgspec

from .._exceptions import VenueTransportError
from .._market_ws import open_market_frames
from .._models import BookTop, Instrument, MarketEvent
from .._stream_errors import MalformedMessageError
from ._instruments import instruments_from_exchange_info
from ._rest import AsterRest
from ._streams import VENUE

SPOT_BASE_URL: Final = "https://sapi.asterdex.com"
"""Spot REST base (§1.2); paths are `/api/v1/...`. Pass it as `AsterRest(base_url=...)`."""
SPOT_WS_URL: Final = "wss://sstream.asterdex.com"
"""Spot WebSocket base (§1.2): `/stream?streams=a/b` for market data, `/ws/<listenKey>`."""
MAX_SPOT_STREAMS_PER_CONNECTION: Final = 1024
"""§1.7: the spot server's limit per connection (futures: 200)."""
SERVER_TIME_PATH: Final = "/api/v1/time"
EXCHANGE_INFO_PATH: Final = "/api/v1/exchangeInfo"
_NS_PER_MS: Final = 1_000_000


class _ServerTime(msgspec.Struct):
    serverTime: int


class _SpotBookTicker(msgspec.Struct):
    """Binance-spot `bookTicker`; `E`/`T` are not in the spot doc but read if Aster sends them."""

    s: str
    b: Decimal
    B: Decimal
    a: Decimal
    A: Decimal
    u: int = 0
    E: int = 0
    T: int = 0


class _Combined(msgspec.Struct):
    stream: str
    data: msgspec.Raw


_SERVER_TIME: Final = msgspec.json.Decoder(_ServerTime)
_BOOK_TICKER: Final = msgspec.json.Decoder(_SpotBookTicker)
_COMBINED: Final = msgspec.json.Decoder(_Combined)


async def spot_server_time_ms(rest: AsterRest) -> int:
    """`GET /api/v1/time` on a spot `AsterRest`: the venue's clock in ms."""
    body = await rest.public("GET", SERVER_TIME_PATH)
    try:
        return _SERVER_TIME.decode(body).serverTime
    except msgspec.DecodeError as exc:
        raise VenueTransportError(VENUE, f"{SERVER_TIME_PATH}: unexpected answer: {exc}") from None


def spot_stream_url(ws_url: str, symbols: Sequence[str]) -> str:
    """`<ws_url>/stream?streams=bnbusdt@bookTicker/...` (lowercase symbols, §1.7)."""
    if not symbols:
        raise ValueError("stream_market needs at least one symbol")
    if len(symbols) > MAX_SPOT_STREAMS_PER_CONNECTION:
        raise ValueError(f"{len(symbols)} streams exceed {MAX_SPOT_STREAMS_PER_CONNECTION} "
                         "per connection")
    names = "/".join(f"{s.lower()}@bookTicker" for s in symbols)
    return f"{ws_url.rstrip('/')}/stream?streams={names}"


def decode_spot_book_ticker(raw: bytes | str, *, ts_local_ns: int) -> BookTop:
    """A spot `bookTicker` frame, combined (`{"stream","data"}`) or raw, as a `BookTop`.

    Raises `MalformedMessageError` for anything unreadable or non-finite.
    """
    payload: bytes | str | msgspec.Raw
    try:
        payload = _COMBINED.decode(raw).data
    except msgspec.DecodeError:  # not wrapped: a raw `/ws/<s>@bookTicker` frame
        payload = raw
    try:
        wire = _BOOK_TICKER.decode(payload)
    except msgspec.DecodeError as exc:
        raise MalformedMessageError(VENUE, "bookTicker", str(exc), raw) from None
    if not all(d.is_finite() for d in (wire.b, wire.B, wire.a, wire.A)):
        raise MalformedMessageError(VENUE, "bookTicker", "non-finite price or quantity", raw)
    venue_ms = wire.T or wire.E
    return BookTop(venue=VENUE, symbol=wire.s, bid=wire.b, bid_qty=wire.B, ask=wire.a,
                   ask_qty=wire.A,
                   ts_venue_ns=venue_ms * _NS_PER_MS if venue_ms else time.time_ns(),
                   ts_local_ns=ts_local_ns)


def _event(raw: str | bytes, ts_local_ns: int) -> MarketEvent | None:
    return decode_spot_book_ticker(raw, ts_local_ns=ts_local_ns)


class AsterSpotMarketData:
    """Aster spot `MarketDataClient`: `rest` must point at `SPOT_BASE_URL` (no credentials
    needed); `ws_url` is the spot WebSocket base."""

    def __init__(self, rest: AsterRest, *, ws_url: str = SPOT_WS_URL) -> None:
        self._rest = rest
        self._ws_url = ws_url

    @property
    def venue(self) -> str:
        return VENUE

    async def instruments(self) -> list[Instrument]:
        """TRADING spot symbols from `GET /api/v1/exchangeInfo`, `kind="spot"`."""
        return instruments_from_exchange_info(
            await self._rest.public("GET", EXCHANGE_INFO_PATH), kind="spot")

    async def server_time_ns(self) -> int:
        return await spot_server_time_ms(self._rest) * _NS_PER_MS

    @asynccontextmanager
    async def stream_market(
        self, symbols: Sequence[str]
    ) -> AsyncIterator[AsyncIterator[MarketEvent]]:
        """Book tops of `symbols` on one combined connection until the context ends.

        The iterator ends when the venue closes normally and raises `VenueTransportError`
        on an abnormal close; a failed connect raises `VenueTransportError` on entry.
        """
        url = spot_stream_url(self._ws_url, symbols)
        async with open_market_frames(VENUE, url, _event) as frames:
            yield frames
