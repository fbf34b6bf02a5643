"""A real loopback WebSocket server for market-stream tests (trio-websocket on 127.0.0.1).

`open_ws_sim()` starts the server in its own nursery on an ephemeral port and yields a
`WsSim` whose `url` a client connects to. Each accepted connection becomes a `SimConnection`
(`await sim.next_connection()`) that records the request path and every message the client
sent, and lets the test push frames, close normally or drop the connection with an abnormal
close code. Nothing here sleeps: tests wait on events and bound themselves with `fail_after`.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import trio
from trio_websocket import (
    ConnectionClosed,
    WebSocketConnection,
    WebSocketRequest,
    WebSocketServer,
    serve_websocket,
)


class SimConnection:
    """One accepted client connection, as the server sees it."""

    def __init__(self, ws: WebSocketConnection, path: str) -> None:
        self.path = path
        """The request target, query included: `/stream?streams=...`."""
        self.received: list[str | bytes] = []
        self.closed = trio.Event()
        """Set once the connection is closed, by either side."""
        self._ws = ws
        self._send_received, self._receive_received = trio.open_memory_channel[str | bytes](
            math.inf)

    async def send(self, text: str) -> None:
        """Push one text frame to the client."""
        await self._ws.send_message(text)

    async def close(self) -> None:
        """Close normally (1000), as a venue does at its planned disconnect."""
        await self._ws.aclose(code=1000, reason="sim close")

    async def drop(self, code: int = 1011) -> None:
        """Close with an abnormal code (1011 internal error unless told)."""
        await self._ws.aclose(code=code, reason="sim drop")

    async def next_message(self) -> str | bytes:
        """The next message the client sent (a subscribe request, say)."""
        return await self._receive_received.receive()

    async def _serve(self) -> None:
        try:
            while True:
                message = await self._ws.get_message()
                self.received.append(message)
                self._send_received.send_nowait(message)
        except ConnectionClosed:
            pass
        finally:
            self.closed.set()


class WsSim:
    def __init__(self) -> None:
        self.url = ""
        self.connections: list[SimConnection] = []
        self._send_new, self._receive_new = trio.open_memory_channel[SimConnection](math.inf)

    async def next_connection(self) -> SimConnection:
        """The next connection accepted (in order), waiting for it if need be."""
        return await self._receive_new.receive()

    async def _handle(self, request: WebSocketRequest) -> None:
        ws = await request.accept()
        connection = SimConnection(ws, request.path)
        self.connections.append(connection)
        self._send_new.send_nowait(connection)
        await connection._serve()


@asynccontextmanager
async def open_ws_sim() -> AsyncIterator[WsSim]:
    """Serve on 127.0.0.1, port chosen by the OS; stops (closing connections) on exit."""
    sim = WsSim()
    async with trio.open_nursery() as nursery:
        server: WebSocketServer = await nursery.start(
            partial(serve_websocket, sim._handle, "127.0.0.1", 0, None))
        sim.url = f"ws://127.0.0.1:{server.port}"
        yield sim
        nursery.cancel_scope.cancel()
