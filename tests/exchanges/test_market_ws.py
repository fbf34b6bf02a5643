"""`exchanges._market_ws`: the ping watchdog and the connect/disconnect bounds, over loopback.

A live peer is `ws_sim` (trio-websocket answers pings by itself). A dead peer, as a half-open
TCP connection looks to us, is `open_dead_peer`: a raw TCP server that completes the WebSocket
handshake and then never reads or writes again, so our pings are accepted by the kernel and
never answered. Every test is bounded by `trio.fail_after`.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import pytest
import trio
from trio_websocket import ConnectionClosed

from exchanges import VenueTransportError, _market_ws
from exchanges._market_ws import (
    CONNECT_TIMEOUT_S,
    DISCONNECT_TIMEOUT_S,
    PING_INTERVAL_S,
    PONG_TIMEOUT_S,
    closed_error,
    open_market_frames,
    open_stream_websocket,
)

from .ws_sim import open_ws_sim

BOUND_S = 3
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


async def _handshake_then_hang(stream: trio.SocketStream) -> None:
    request = b""
    while b"\r\n\r\n" not in request:
        chunk = await stream.receive_some(4096)
        if not chunk:
            return
        request += chunk
    key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
               if line.lower().startswith(b"sec-websocket-key:"))
    accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
    await stream.send_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
    await trio.sleep_forever()  # never reads again: no pong, no close


@asynccontextmanager
async def open_dead_peer() -> AsyncIterator[str]:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, _handshake_then_hang, 0,
                                                host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ws"
        nursery.cancel_scope.cancel()


def test_defaults_are_the_documented_ones():
    assert (PING_INTERVAL_S, PONG_TIMEOUT_S) == (30.0, 20.0)
    assert (CONNECT_TIMEOUT_S, DISCONNECT_TIMEOUT_S) == (10.0, 2.0)


async def test_open_stream_websocket_when_peer_stops_answering_pings_then_transport_error():
    with trio.fail_after(BOUND_S):
        async with open_dead_peer() as url:
            with pytest.raises(VenueTransportError,
                               match=r"user stream: no pong within 0\.2 s") as caught:
                async with open_stream_websocket("test", url, what="user stream",
                                                 ping_interval_s=0.05,
                                                 pong_timeout_s=0.2) as ws:
                    try:
                        await ws.get_message()  # would block forever without the watchdog
                    except ConnectionClosed as exc:
                        error = closed_error("test", exc, what="user stream", ws=ws)
                        assert error is not None
                        raise error from None
    assert caught.value.venue == "test"


async def test_market_frames_when_peer_dead_then_iterator_raises(monkeypatch: pytest.MonkeyPatch):
    # The constants are read at each connect, so every stream built on the helper (market
    # and user streams alike) gets the watchdog without new parameters.
    monkeypatch.setattr(_market_ws, "PING_INTERVAL_S", 0.05)
    monkeypatch.setattr(_market_ws, "PONG_TIMEOUT_S", 0.2)
    with trio.fail_after(BOUND_S):
        async with open_dead_peer() as url:
            with pytest.raises(VenueTransportError, match="market stream: no pong"):
                async with open_market_frames("test", url, lambda raw, ts: None) as frames:
                    await frames.__anext__()


async def test_open_stream_websocket_when_peer_answers_pings_then_stays_up():
    with trio.fail_after(BOUND_S):
        async with open_ws_sim() as sim, open_stream_websocket(
                "test", sim.url, ping_interval_s=0.02, pong_timeout_s=0.5) as ws:
            connection = await sim.next_connection()
            await trio.sleep(0.3)  # ~15 pings answered
            await connection.send("still here")
            assert await ws.get_message() == "still here"


async def test_open_stream_websocket_when_consumer_raises_then_its_exception_unwrapped():
    with trio.fail_after(BOUND_S):
        async with open_ws_sim() as sim:
            with pytest.raises(VenueTransportError, match="consumer"):
                async with open_stream_websocket("test", sim.url):
                    raise VenueTransportError("test", "consumer")
