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

Liveness (`open_stream_websocket`, so market and user streams alike): a half-open TCP
connection delivers nothing and reports nothing, and a user stream's REST keepalives keep
succeeding meanwhile. So every `PING_INTERVAL_S` we ping the venue and require the pong within
`PONG_TIMEOUT_S`; without it the connection is closed and the stream's iterator raises
`VenueTransportError` ("<what>: no pong within 20 s", via `closed_error(..., ws=ws)`), so the
caller reconnects (and a gateway reconciles). A pong is read by trio-websocket's reader task,
which stalls while its one-message queue is full: a consumer that stops reading for longer
than the timeout is disconnected too. Connects and closing handshakes are bounded by
`CONNECT_TIMEOUT_S` and `DISCONNECT_TIMEOUT_S` (trio-websocket's default is 60 s each).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Final
from weakref import WeakKeyDictionary

import trio
from trio_websocket import ConnectionClosed, HandshakeError, WebSocketConnection, open_websocket_url

from ._exceptions import VenueTransportError
from ._models import MarketEvent
from ._stream_errors import MalformedMessageError

NORMAL_CLOSE_CODES: Final = frozenset({1000, 1001})
PING_INTERVAL_S: Final = 30.0
"""How often `open_stream_websocket` pings the venue (read at each connect)."""
PONG_TIMEOUT_S: Final = 20.0
"""How long a ping may wait for its pong before the connection counts as dead."""
CONNECT_TIMEOUT_S: Final = 10.0
"""TCP + TLS + WebSocket handshake."""
DISCONNECT_TIMEOUT_S: Final = 2.0
"""The closing handshake; a dead peer never answers it, so keep reconnects quick."""

_dead: WeakKeyDictionary[WebSocketConnection, VenueTransportError] = WeakKeyDictionary()
"""Connections the ping watchdog closed, and the error their iterator raises."""

FrameDecoder = Callable[[str | bytes, int], MarketEvent | None]
"""(raw frame, ts_local_ns) -> the event, or None for a frame that is not ours (depth on a
market connection, a subscription acknowledgement). Raises MalformedMessageError."""


def closed_error(venue: str, exc: ConnectionClosed, *, what: str = "market stream",
                 ws: WebSocketConnection | None = None) -> VenueTransportError | None:
    """None for a normal close, else the error to raise (`what` names the stream in it).
    Pass the connection as `ws`: one the ping watchdog closed gives the watchdog's error."""
    if ws is not None and ws in _dead:
        return _dead[ws]
    reason = exc.reason
    if reason is None or reason.code in NORMAL_CLOSE_CODES:
        return None
    return VenueTransportError(
        venue, f"{what} closed: {reason.code} {reason.name} {reason.reason or ''}")


def single_exception(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The one exception inside `group` (nested groups flattened), else None."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        exc = pending.pop()
        if isinstance(exc, BaseExceptionGroup):
            pending.extend(exc.exceptions)
        else:
            leaves.append(exc)
    return leaves[0] if len(leaves) == 1 else None


async def _watch_pongs(venue: str, ws: WebSocketConnection, what: str, interval_s: float,
                       timeout_s: float, close_timeout_s: float) -> None:
    """Ping every `interval_s`; a pong later than `timeout_s` marks `ws` dead and closes it,
    which wakes the consumer's `get_message`. Never raises: returns once `ws` is closed."""
    while True:
        await trio.sleep(interval_s)
        try:
            with trio.move_on_after(timeout_s) as waited:
                await ws.ping()
        except ConnectionClosed:
            return
        if not waited.cancelled_caught:
            continue
        error = VenueTransportError(venue, f"{what}: no pong within {timeout_s:g} s")
        logging.getLogger(f"exchanges.{venue}").warning("%s", error)
        _dead[ws] = error
        # Closing sends a Close frame the dead peer never answers; bounded, and aclose
        # closes the TCP stream in any case, which ends the reader and so `get_message`.
        with trio.move_on_after(close_timeout_s):
            await ws.aclose(1011, "no pong")
        return


@asynccontextmanager
async def open_stream_websocket(
        venue: str, url: str, *, what: str = "market stream",
        ping_interval_s: float | None = None, pong_timeout_s: float | None = None,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        disconnect_timeout_s: float = DISCONNECT_TIMEOUT_S,
) -> AsyncIterator[WebSocketConnection]:
    """Connect to `url` for the context's lifetime, pinging it (module docstring); a failed
    connect (or a closing handshake that times out) raises `VenueTransportError` naming
    `what`, the exception type and cause. The ping intervals default to `PING_INTERVAL_S` and
    `PONG_TIMEOUT_S` as they are when called (tests may shorten them).

    Iterators reading the connection pass it to `closed_error(..., ws=ws)` so that a
    connection the watchdog closed raises its "no pong" error instead of ending normally."""
    interval_s = PING_INTERVAL_S if ping_interval_s is None else ping_interval_s
    timeout_s = PONG_TIMEOUT_S if pong_timeout_s is None else pong_timeout_s
    try:
        async with open_websocket_url(url, connect_timeout=connect_timeout_s,
                                      disconnect_timeout=disconnect_timeout_s) as ws:
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_watch_pongs, venue, ws, what, interval_s, timeout_s,
                                       disconnect_timeout_s)
                    try:
                        yield ws
                    finally:
                        nursery.cancel_scope.cancel()
            except BaseExceptionGroup as group:
                # The consumer's own exception comes back wrapped by the nursery.
                single = single_exception(group)
                if single is None:
                    raise
                raise single from None
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
                error = closed_error(self._venue, exc, ws=self._ws)
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
