"""One market-data WebSocket connection as an async iterator of `MarketEvent`s.

Shared by the venue adapters, which differ only in the URL, what they send after connecting
and how a frame becomes an event (`FrameDecoder`). The rules are the same for all:

- a frame the decoder cannot read (`MalformedMessageError`) is logged, one line naming the
  stream and the reason but never the payload, and skipped: the stream stays up;
- a close with 1000 (normal) or 1001 (going away, e.g. a venue's planned 24 h disconnect)
  ends the iterator; any other close, a failed connect or a failed subscribe raises
  `VenueTransportError`. Either way the feed actor reconnects.

`ts_local_ns` is `time.perf_counter_ns()` at receipt, the clock the paper venue stamps with.
trio-websocket answers the venue's pings itself, as long as the consumer keeps reading.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Final

from trio_websocket import ConnectionClosed, HandshakeError, WebSocketConnection, open_websocket_url

from ._exceptions import VenueTransportError
from ._models import MarketEvent
from ._stream_errors import MalformedMessageError

NORMAL_CLOSE_CODES: Final = frozenset({1000, 1001})

FrameDecoder = Callable[[str | bytes, int], MarketEvent | None]
"""(raw frame, ts_local_ns) -> the event, or None for a frame that is not ours (depth on a
market connection, a subscription acknowledgement). Raises MalformedMessageError."""


def closed_error(venue: str, exc: ConnectionClosed, *,
                 what: str = "market stream") -> VenueTransportError | None:
    """None for a normal close, else the error to raise (`what` names the stream in it)."""
    reason = exc.reason
    if reason is None or reason.code in NORMAL_CLOSE_CODES:
        return None
    return VenueTransportError(
        venue, f"{what} closed: {reason.code} {reason.name} {reason.reason or ''}")


@asynccontextmanager
async def open_stream_websocket(venue: str, url: str, *,
                                what: str = "market stream") -> AsyncIterator[WebSocketConnection]:
    """Connect to `url` for the context's lifetime; a failed connect (or a closing handshake
    that times out) raises `VenueTransportError` naming `what`, the exception type and cause."""
    try:
        async with open_websocket_url(url) as ws:
            yield ws
    except HandshakeError as exc:
        # Connect failed, was refused, or the closing handshake timed out.
        cause = exc.__cause__ if exc.__cause__ is not None else exc
        raise VenueTransportError(
            venue, f"{what}: {type(exc).__name__}: {cause!r}") from None


class MarketFrames:
    """The iterator `stream_market` yields: one event per readable frame, in arrival order."""

    def __init__(self, venue: str, ws: WebSocketConnection, decode: FrameDecoder) -> None:
        self._venue = venue
        self._ws = ws
        self._decode = decode
        self._logger = logging.getLogger(f"exchanges.{venue}")

    def __aiter__(self) -> MarketFrames:
        return self

    async def __anext__(self) -> MarketEvent:
        while True:
            try:
                raw = await self._ws.get_message()
            except ConnectionClosed as exc:
                error = closed_error(self._venue, exc)
                if error is None:
                    raise StopAsyncIteration from None
                raise error from None
            try:
                event = self._decode(raw, time.perf_counter_ns())
            except MalformedMessageError as exc:
                self._logger.warning("%s market stream: skipped malformed %s frame: %s",
                                     self._venue, exc.stream, exc.reason)
                continue
            if event is not None:
                return event


@asynccontextmanager
async def open_market_frames(venue: str, url: str, decode: FrameDecoder, *,
                             subscribe: str | None = None) -> AsyncIterator[MarketFrames]:
    """Connect to `url`, send `subscribe` if given, and yield the frames until the context ends.

    A failed connect or subscribe raises `VenueTransportError` on entry.
    """
    async with open_stream_websocket(venue, url) as ws:
        if subscribe is not None:
            try:
                await ws.send_message(subscribe)
            except ConnectionClosed as exc:
                raise (closed_error(venue, exc) or VenueTransportError(
                    venue, "market stream closed before the subscription was sent")) from None
        yield MarketFrames(venue, ws, decode)
