"""A real loopback HTTP/1.1 server (trio + h11) serving a plain `httpx.Request -> Response` handler.

The venue simulators (`AsterSim.handle`, `BackpackSim.handle`) are sync handlers meant for
`httpx.MockTransport`. That transport never leaves the client, so it cannot exercise code that
builds its own `httpx.AsyncClient(base_url=...)` — the real daemon's adapters. `open_http_sim()`
serves such a handler over real TCP on 127.0.0.1 (port chosen by the OS), so a test points the
daemon at `server.url` and the adapters talk to the simulator exactly as they would to a venue:
pooled keep-alive connections, real sockets, real timeouts.

Each request reaches the handler as an `httpx.Request` whose URL is `server.url` + the request
target exactly as the client sent it (path and query byte-exact: venues sign the query text),
with the client's headers and the full body. The handler's response goes back with its status,
reason and headers, the body re-framed with our own `Content-Length` (hop-by-hop headers the
handler set are dropped; `Connection: close` is honoured: the connection closes after it).

A handler exception does not kill the server: the client gets a 500 with a short text body and
the exception lands in `server.errors`, which a test asserts empty at the end. `latency_s`
(settable at run time) delays each answer *after* the handler ran — the venue has acted, the
client waits — which is the case that matters for timeouts on order entry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial

import h11
import httpx
import trio

Handler = Callable[[httpx.Request], httpx.Response]

_MAX_RECEIVE = 65536
# Hop-by-hop or framing headers: ours to set, never the handler's (RFC 9110 §7.6.1).
_DROPPED_HEADERS = frozenset({
    b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"te",
    b"trailer", b"upgrade", b"content-length",
})
_NO_BODY_STATUSES = frozenset({204, 304})


class TargetMismatch(Exception):
    """The request target did not survive `httpx.URL` unchanged (httpx re-encoded it)."""


class HttpSim:
    """The running server, as a test sees it."""

    def __init__(self, handler: Handler, latency_s: float) -> None:
        self.url = ""
        """`http://127.0.0.1:PORT`, set once the server listens."""
        self.port = 0
        self.latency_s = latency_s
        """Seconds to wait after the handler ran, before answering; change it at any time."""
        self.requests_served = 0
        """Requests answered (500s from handler errors included), counted before the write."""
        self.connections_accepted = 0
        self.errors: list[Exception] = []
        """Handler exceptions, unusable handler responses and client protocol errors."""
        self._handler = handler

    async def _serve_connection(self, stream: trio.SocketStream) -> None:
        self.connections_accepted += 1
        async with stream:
            try:
                await _Connection(stream).serve(self)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # the client went away; that is its right

    def _answer(self, event: h11.Request, body: bytes) -> list[h11.Event]:
        """Run the handler on one request; its exceptions become a recorded 500."""
        target = event.target.decode("latin-1")
        try:
            url = httpx.URL(self.url + target)
            if url.raw_path != event.target:
                raise TargetMismatch(f"{target!r} became {url.raw_path.decode()!r}")
            request = httpx.Request(
                event.method.decode("ascii"), url,
                headers=list(event.headers.raw_items()), content=body)
            response = self._handler(request)
            return _h11_events(event.method, response)
        except Exception as error:
            self.errors.append(error)
            return _h11_events(event.method, httpx.Response(
                500, text=f"http_sim: handler raised {type(error).__name__}: {error}"[:500]))


class _Connection:
    """One accepted TCP connection: requests in turn until either side closes."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._h11 = h11.Connection(h11.SERVER)
        self._saw_eof = False

    async def serve(self, server: HttpSim) -> None:
        conn = self._h11
        while True:
            try:
                received = await self._receive_request()
            except h11.RemoteProtocolError as error:
                if self._saw_eof:
                    return  # the client hung up mid-request
                server.errors.append(error)
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    await self._send(_bad_request(error))
                return
            if received is None:
                return  # closed cleanly between requests
            request, body = received
            events = server._answer(request, body)
            if server.latency_s > 0:
                await trio.sleep(server.latency_s)
            server.requests_served += 1
            await self._send(events)
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            conn.start_next_cycle()

    async def _receive_request(self) -> tuple[h11.Request, bytes] | None:
        conn = self._h11
        request: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                if conn.they_are_waiting_for_100_continue:
                    await self._send([h11.InformationalResponse(status_code=100, headers=[])])
                data = await self._stream.receive_some(_MAX_RECEIVE)
                self._saw_eof = not data
                conn.receive_data(data)
            elif isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert request is not None
                return request, bytes(body)
            elif isinstance(event, h11.ConnectionClosed):
                return None
            elif event is h11.PAUSED:  # pragma: no cover - a cycle starts only after DONE
                return None

    async def _send(self, events: list[h11.Event]) -> None:
        for event in events:
            data = self._h11.send(event)
            if data:
                await self._stream.send_all(data)


def _h11_events(method: bytes, response: httpx.Response) -> list[h11.Event]:
    """The handler's response as h11 events: status, headers, body with our own framing."""
    try:
        content = b"".join(response.iter_raw())  # as the handler encoded it
        headers = [(name, value) for name, value in response.headers.raw]
    except httpx.StreamConsumed:  # the handler read it: `content` is decoded by now
        content = response.content
        headers = [(name, value) for name, value in response.headers.raw
                   if name.lower() != b"content-encoding"]
    close = any(name.lower() == b"connection" and b"close" in value.lower()
                for name, value in headers)
    headers = [(name, value) for name, value in headers
               if name.lower() not in _DROPPED_HEADERS]
    status = response.status_code
    has_body = method != b"HEAD" and status not in _NO_BODY_STATUSES
    if status not in _NO_BODY_STATUSES:
        headers.append((b"Content-Length", str(len(content)).encode("ascii")))
    if close:
        headers.append((b"Connection", b"close"))
    events: list[h11.Event] = [h11.Response(
        status_code=status, headers=headers,
        reason=response.reason_phrase.encode("latin-1"))]
    if has_body and content:
        events.append(h11.Data(data=content))
    events.append(h11.EndOfMessage())
    return events


def _bad_request(error: h11.RemoteProtocolError) -> list[h11.Event]:
    text = f"http_sim: bad request: {error}".encode()[:500]
    return [
        h11.Response(status_code=error.error_status_hint, headers=[
            (b"Content-Type", b"text/plain; charset=utf-8"),
            (b"Content-Length", str(len(text)).encode("ascii")),
            (b"Connection", b"close"),
        ]),
        h11.Data(data=text),
        h11.EndOfMessage(),
    ]


@asynccontextmanager
async def open_http_sim(handler: Handler, *, latency_s: float = 0.0) -> AsyncIterator[HttpSim]:
    """Serve `handler` on 127.0.0.1, port chosen by the OS; stops (closing connections) on exit."""
    server = HttpSim(handler, latency_s)
    async with trio.open_nursery() as nursery:
        listeners: list[trio.SocketListener] = await nursery.start(
            partial(trio.serve_tcp, server._serve_connection, 0, host="127.0.0.1"))
        server.port = listeners[0].socket.getsockname()[1]
        server.url = f"http://127.0.0.1:{server.port}"
        yield server
        nursery.cancel_scope.cancel()
