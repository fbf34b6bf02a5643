"""The loopback HTTP server: a real `httpx.AsyncClient` against handlers over 127.0.0.1 TCP."""

from __future__ import annotations

import json
import os

import httpx
import pytest
import trio

from exchanges.aster import AsterHmacAuth

from .aster_sim import AsterSimulator
from .http_sim import open_http_sim

T0_MS = 1_700_000_000_000


class Recorder:
    """A handler that records each request and answers with `answer` (200 `{}` unless set)."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.answer = httpx.Response(200, json={})

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer


async def test_query_string_arrives_byte_exact() -> None:
    recorder = Recorder()
    query = ("symbol=BTCUSDT&ids=1%2C2%2C3&note=a+b%2Bc&x=1&x=2&list=%5B%22A%22%2C%22B%22%5D"
             "&empty=&timestamp=1700000000000"
             "&signature=3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9")
    with trio.fail_after(5):
        async with open_http_sim(recorder.handle) as server, \
                httpx.AsyncClient(base_url=server.url) as client:
            response = await client.get(f"/fapi/v1/order?{query}")
    assert response.status_code == 200
    assert response.json() == {}
    [request] = recorder.requests
    assert request.method == "GET"
    assert request.url.path == "/fapi/v1/order"
    assert request.url.query == query.encode()
    assert str(request.url) == f"{server.url}/fapi/v1/order?{query}"
    assert request.content == b""
    assert request.headers["host"] == server.url.removeprefix("http://")
    assert server.errors == []
    assert server.requests_served == 1


async def test_params_encoded_by_httpx_arrive_as_httpx_encoded_them() -> None:
    recorder = Recorder()
    params = {"symbols": '["BTCUSDT","ETHUSDT"]', "note": "a b+c/d", "k": ["1", "2"]}
    sent = httpx.Request("GET", "http://127.0.0.1/p", params=params).url.query
    with trio.fail_after(5):
        async with open_http_sim(recorder.handle) as server, \
                httpx.AsyncClient(base_url=server.url) as client:
            await client.get("/p", params=params)
    assert recorder.requests[0].url.query == sent
    assert server.errors == []


async def test_signed_aster_requests_verify_at_the_simulator() -> None:
    """End to end: the real HMAC signer and the Aster simulator's signature check over TCP."""
    api_key, secret = os.urandom(32).hex(), os.urandom(32).hex()
    sim = AsterSimulator(api_key=api_key, secret=secret, instruments=[], clock_ms=lambda: T0_MS)
    auth = AsterHmacAuth(api_key, secret, clock=lambda: T0_MS)
    with trio.fail_after(5):
        async with open_http_sim(sim.handle) as server, \
                httpx.AsyncClient(base_url=server.url, auth=auth) as client:
            balance = await client.get("/fapi/v2/balance",
                                       params={"note": '["a","b"]', "x": "1+2 3"})
            countdown = await client.post("/fapi/v1/countdownCancelAll",
                                          data={"symbol": "BTCUSDT", "countdownTime": "0"})
    assert balance.status_code == 200, balance.text
    assert isinstance(balance.json(), list)
    # Authenticated, then refused at routing: the simulator lists no instruments here.
    assert countdown.json() == {"code": -1121, "msg": "Invalid symbol."}, countdown.text
    assert sim.received[0].query.startswith("note=%5B%22a%22%2C%22b%22%5D&x=1%2B2+3&")
    assert sim.received[1].body.startswith("symbol=BTCUSDT&countdownTime=0&")
    assert server.errors == []


async def test_the_simulator_signature_check_is_live_over_tcp() -> None:
    api_key, secret = os.urandom(32).hex(), os.urandom(32).hex()
    sim = AsterSimulator(api_key=api_key, secret=secret, instruments=[], clock_ms=lambda: T0_MS)
    auth = AsterHmacAuth(api_key, os.urandom(32).hex(), clock=lambda: T0_MS)
    with trio.fail_after(5):
        async with open_http_sim(sim.handle) as server, \
                httpx.AsyncClient(base_url=server.url, auth=auth) as client:
            response = await client.get("/fapi/v2/balance")
    assert response.json()["code"] == -1022
    assert server.errors == []


async def test_post_form_and_delete_json_bodies_and_headers_arrive_exactly() -> None:
    recorder = Recorder()
    form = {"symbol": "BTCUSDT", "price": "60000.1", "note": "a b&c=d"}
    payload = {"orderId": "123", "symbol": "SOL_USDC", "nested": {"a": [1, 2]}}
    with trio.fail_after(5):
        async with open_http_sim(recorder.handle) as server, \
                httpx.AsyncClient(base_url=server.url) as client:
            await client.post("/fapi/v1/order?symbol=BTCUSDT", data=form,
                              headers={"X-MBX-APIKEY": "key-1"})
            body = json.dumps(payload, separators=(",", ":")).encode()
            await client.request("DELETE", "/api/v1/order", content=body, headers={
                "Content-Type": "application/json; charset=utf-8",
                "X-API-Key": "pub+/=", "X-Signature": "c2lnbmF0dXJl==", "X-Window": "5000"})
    post, delete = recorder.requests
    assert post.method == "POST"
    assert post.url.query == b"symbol=BTCUSDT"
    assert post.content == b"symbol=BTCUSDT&price=60000.1&note=a+b%26c%3Dd"
    assert post.headers["content-type"] == "application/x-www-form-urlencoded"
    assert post.headers["content-length"] == str(len(post.content))
    assert post.headers["X-MBX-APIKEY"] == "key-1"
    assert delete.method == "DELETE"
    assert delete.url.raw_path == b"/api/v1/order"
    assert delete.content == body
    assert json.loads(delete.content) == payload
    assert delete.headers["content-type"] == "application/json; charset=utf-8"
    assert (delete.headers["x-api-key"], delete.headers["x-signature"],
            delete.headers["x-window"]) == ("pub+/=", "c2lnbmF0dXJl==", "5000")
    assert server.errors == []


async def test_status_headers_and_body_come_back() -> None:
    recorder = Recorder()
    with trio.fail_after(5):
        async with open_http_sim(recorder.handle) as server, \
                httpx.AsyncClient(base_url=server.url) as client:
            recorder.answer = httpx.Response(
                429, json={"code": -1003, "msg": "Too many requests."},
                headers={"Retry-After": "7", "X-MBX-USED-WEIGHT-1M": "2400",
                         "Transfer-Encoding": "chunked", "Keep-Alive": "timeout=1"})
            limited = await client.get("/fapi/v1/time")
            recorder.answer = httpx.Response(503, text="Service Unavailable")
            unavailable = await client.get("/fapi/v1/time")
            recorder.answer = httpx.Response(200, text="1700000000000")
            plain = await client.get("/api/v1/time")
            recorder.answer = httpx.Response(204)
            empty = await client.delete("/x")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "7"
    assert limited.headers["x-mbx-used-weight-1m"] == "2400"
    assert limited.headers["content-type"] == "application/json"
    assert "transfer-encoding" not in limited.headers
    assert "keep-alive" not in limited.headers
    assert limited.headers["content-length"] == str(len(limited.content))
    assert limited.json() == {"code": -1003, "msg": "Too many requests."}
    assert (unavailable.status_code, unavailable.text) == (503, "Service Unavailable")
    assert unavailable.reason_phrase == "Service Unavailable"
    assert (plain.status_code, plain.text) == (200, "1700000000000")
    assert (empty.status_code, empty.content) == (204, b"")
    assert server.errors == []
    assert server.requests_served == 4


async def test_a_response_the_handler_already_read_still_goes_back() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        response = httpx.Response(200, json={"ok": True})
        response.read()
        return response

    with trio.fail_after(5):
        async with open_http_sim(handler) as server, \
                httpx.AsyncClient(base_url=server.url) as client:
            response = await client.get("/")
    assert response.json() == {"ok": True}
    assert server.errors == []


async def test_keep_alive_serves_many_requests_on_one_connection() -> None:
    recorder = Recorder()
    with trio.fail_after(5):
        async with open_http_sim(recorder.handle) as server, \
                httpx.AsyncClient(base_url=server.url) as client:
            for i in range(20):
                response = await client.post(f"/n?i={i}", content=b"x" * i)
                assert response.status_code == 200
    assert server.connections_accepted == 1
    assert server.requests_served == 20
    assert [r.content for r in recorder.requests] == [b"x" * i for i in range(20)]
    assert server.errors == []


async def test_concurrent_requests_use_a_pool_of_connections() -> None:
    recorder = Recorder()
    with trio.fail_after(5):
        async with open_http_sim(recorder.handle, latency_s=0.05) as server, \
                httpx.AsyncClient(base_url=server.url) as client:
            async with trio.open_nursery() as nursery:
                for i in range(5):
                    nursery.start_soon(client.get, f"/c?i={i}")
    assert server.requests_served == 5
    assert server.connections_accepted == 5
    assert sorted(r.url.query for r in recorder.requests) == [b"i=%d" % i for i in range(5)]
    assert server.errors == []


async def test_connection_close_from_client_or_handler_closes_after_the_answer() -> None:
    recorder = Recorder()
    with trio.fail_after(5):
        async with open_http_sim(recorder.handle) as server, \
                httpx.AsyncClient(base_url=server.url) as client:
            first = await client.get("/a", headers={"Connection": "close"})
            second = await client.get("/b")
            recorder.answer = httpx.Response(200, text="bye", headers={"Connection": "close"})
            third = await client.get("/c")
            recorder.answer = httpx.Response(200, text="again")
            fourth = await client.get("/d")
    assert first.headers["connection"] == "close"
    assert third.headers["connection"] == "close"
    assert (third.text, fourth.text) == ("bye", "again")
    assert second.status_code == 200
    assert server.connections_accepted == 3  # a, then b+c, then d
    assert server.requests_served == 4
    assert server.errors == []


async def test_a_handler_exception_answers_500_and_the_server_keeps_serving() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/boom":
            raise KeyError("no such order")
        return httpx.Response(200, text="fine")

    with trio.fail_after(5):
        async with open_http_sim(handler) as server, \
                httpx.AsyncClient(base_url=server.url) as client:
            boom = await client.get("/boom")
            fine = await client.get("/fine")
    assert boom.status_code == 500
    assert "KeyError" in boom.text
    assert (fine.status_code, fine.text) == (200, "fine")
    assert server.connections_accepted == 1  # the 500 did not cost the connection
    assert [type(e) for e in server.errors] == [KeyError]
    assert server.requests_served == 2


async def test_an_unusable_handler_response_is_a_recorded_500() -> None:
    with trio.fail_after(5):
        async with open_http_sim(lambda _: httpx.Response(101)) as server, \
                httpx.AsyncClient(base_url=server.url) as client:
            response = await client.get("/")
    assert response.status_code == 500
    assert len(server.errors) == 1


async def test_latency_delays_the_answer_and_is_settable() -> None:
    recorder = Recorder()
    with trio.fail_after(5):
        async with open_http_sim(recorder.handle, latency_s=0.2) as server, \
                httpx.AsyncClient(base_url=server.url) as client:
            start = trio.current_time()
            await client.get("/slow")
            slow = trio.current_time() - start
            server.latency_s = 0.0
            start = trio.current_time()
            await client.get("/fast")
            fast = trio.current_time() - start
    assert slow >= 0.2
    assert fast < 0.15
    assert server.errors == []


async def test_a_client_timeout_during_latency_is_quiet_and_the_handler_ran() -> None:
    recorder = Recorder()
    with trio.fail_after(5):
        async with open_http_sim(recorder.handle, latency_s=0.5) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=0.1) as client:
                with pytest.raises(httpx.ReadTimeout):
                    await client.post("/fapi/v1/order", data={"symbol": "BTCUSDT"})
            assert [r.url.path for r in recorder.requests] == ["/fapi/v1/order"]
            server.latency_s = 0.0
            await trio.sleep(0.6)  # the abandoned answer hits a closed socket
            async with httpx.AsyncClient(base_url=server.url) as client:
                assert (await client.get("/after")).status_code == 200
    assert server.errors == []


async def test_client_disconnects_and_garbage_do_not_kill_the_server() -> None:
    recorder = Recorder()
    with trio.fail_after(5):
        async with open_http_sim(recorder.handle) as server:
            port = server.port
            # Connect and hang up at once; hang up mid-body; send garbage.
            (await trio.open_tcp_stream("127.0.0.1", port)).socket.close()
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            await stream.send_all(b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
            await stream.aclose()
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            await stream.send_all(b"NOT HTTP AT ALL\r\n\r\n")
            answer = await _read_until_closed(stream)
            assert answer.startswith(b"HTTP/1.1 400 ")
            async with httpx.AsyncClient(base_url=server.url) as client:
                assert (await client.get("/after")).status_code == 200
    assert [r.url.path for r in recorder.requests] == ["/after"]
    assert len(server.errors) == 1  # the garbage, a client protocol error


async def test_raw_pipelined_requests_are_answered_in_order() -> None:
    recorder = Recorder()
    recorder.answer = httpx.Response(200, text="ok")
    with trio.fail_after(5):
        async with open_http_sim(recorder.handle) as server:
            stream = await trio.open_tcp_stream("127.0.0.1", server.port)
            await stream.send_all(
                b"GET /one?a=%2C+b HTTP/1.1\r\nHost: x\r\n\r\n"
                b"POST /two HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
                b"GET /three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = await _read_until_closed(stream)
    assert answer.count(b"HTTP/1.1 200 OK\r\n") == 3
    assert [r.url.raw_path for r in recorder.requests] == [b"/one?a=%2C+b", b"/two", b"/three"]
    assert recorder.requests[1].content == b"abcde"
    assert server.errors == []


async def _read_until_closed(stream: trio.SocketStream) -> bytes:
    chunks = []
    while chunk := await stream.receive_some(65536):
        chunks.append(chunk)
    return b"".join(chunks)

