"""`BackpackSimulator`: an in-memory Backpack REST venue for tests (venues.md §2).

It is a plain request handler, `handle(request: httpx.Request) -> httpx.Response`, so it mounts
under the real client with `httpx.MockTransport(sim.handle)` today and can sit behind a loopback
HTTP server later without change.

It checks requests as the venue does, independently of the adapter's signing code:
- rebuilds the signing string from the request (instruction from method + path, the JSON body's
  keys or the query keys sorted, booleans `true`/`false`, number tokens as their text, then
  `timestamp` and `window`) and verifies `X-Signature` with the registered public key (pynacl);
- rejects `X-Timestamp` outside `X-Window` of its own clock `now_ms` ("Request has expired");
- requires `price`/`quantity` as JSON strings, so a float never reaches the "venue".
Every signing string it verified is kept in `signing_strings`, every raw body in `bodies`.

The matching model is deliberately simple: a settable book top per symbol; a crossing
`postOnly` order is rejected; a crossing GTC/IOC limit or a market order fills its whole
quantity at the touch; a non-crossing IOC expires. No fees, no partial fills, no margin model
beyond "notional ≤ available quote".

Resting orders fill as **maker** when `set_top` moves the touch through them (a resting Bid at
p fills at p once the ask is <= p), recorded in the fill history with `isMaker: true`, so a
market maker can trade against the simulator.

WebSocket (venues.md §2.5): `serve_websocket` is a `trio_websocket.serve_websocket` handler and
`open_backpack_ws(sim)` serves it on 127.0.0.1 (port 0) and yields the `ws://` URL. It accepts
`SUBSCRIBE` for `bookTicker.<sym>` (pushed on every `set_top`), `depth[.<speed>].<sym>` (one
sequenced diff per `set_top`), `markPrice.<sym>` (one sent after subscribing if `set_mark` was
called, and on every `set_mark`) and the private `account.orderUpdate[.<sym>]`, whose
`signature` it verifies like the REST checks (key, ED25519 over
`instruction=subscribe&timestamp=..&window=..`, timestamp within the window of `now_ms`); a bad
one is answered `{"id":null,"error":{"code":4006,"message":...}}` and a close with 1008. Every
order change (accepted, fill, cancel, cancel-all, expire, maker fill) becomes an
`account.orderUpdate` event in the documented shape. `handle()` stays synchronous: frames go to
each connection through an unbounded trio memory channel (`send_nowait`) that its writer drains.
`await sim.wait_subscribed(stream)` returns once some connection holds `stream`, so a test does
not race its own subscription.

Fault injection: `fail_next(path, status)` answers the next request to `path` with 503, 429 or
418; with `executed=True` the request is executed first (a "503 but the order was placed").
`cancel_all_accepted = True` makes cancel-all answer 202 and cancel on the next request.
`drop_streams(code=1011)` closes every WebSocket connection with that (abnormal) code.
"""

from __future__ import annotations

import base64
import datetime
import itertools
import json
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any
from urllib.parse import parse_qsl

import httpx
import trio
import trio_websocket
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

INSTRUCTIONS = {
    ("GET", "/api/v1/capital"): "balanceQuery",
    ("POST", "/api/v1/order"): "orderExecute",
    ("POST", "/api/v1/orders"): "orderExecute",  # batch: a JSON array (§2.2, §4 pitfall 8)
    ("DELETE", "/api/v1/order"): "orderCancel",
    ("DELETE", "/api/v1/orders"): "orderCancelAll",
    ("GET", "/api/v1/order"): "orderQuery",
    ("GET", "/api/v1/orders"): "orderQueryAll",
    ("GET", "/api/v1/position"): "positionQuery",
    ("GET", "/wapi/v1/history/fills"): "fillHistoryQueryAll",
    ("GET", "/wapi/v1/history/funding"): "fundingHistoryQueryAll",
}
"""venues.md §2.3, written out again so a wrong table in the adapter fails here."""

_FAULT_BODIES = {
    503: {"code": "MAINTENANCE", "message": "System under maintenance."},
    429: {"code": "TOO_MANY_REQUESTS", "message": "Too many requests."},
}


@dataclass
class _Market:
    symbol: str
    base: str
    quote: str
    tick: Decimal
    step: Decimal
    min_qty: Decimal
    kind: str
    bid: Decimal | None = None
    ask: Decimal | None = None
    bid_qty: Decimal = Decimal(0)
    ask_qty: Decimal = Decimal(0)
    mark: tuple[str, str, int] | None = None
    """(mark price, funding rate, next funding ms) from `set_mark`."""
    depth_seq: int = 0


@dataclass
class _Fault:
    status: int
    executed: bool


@dataclass
class _Position:
    qty: Decimal = Decimal(0)
    entry: Decimal = Decimal(0)


@dataclass
class _Close:
    code: int


@dataclass
class _Connection:
    """One WebSocket client: its subscribed streams and the queue its writer drains."""

    send: trio.MemorySendChannel[str | _Close]
    streams: set[str] = field(default_factory=set)


@dataclass
class _Reject(Exception):
    status: int
    code: str
    message: str


@dataclass
class BackpackSimulator:
    """One venue, one account: register the account's base64 public key as `api_key_b64`."""

    api_key_b64: str
    now_ms: int = 1_700_000_000_000
    markets: dict[str, _Market] = field(default_factory=dict)
    balances: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    positions: dict[str, _Position] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    fills: list[dict[str, Any]] = field(default_factory=list)
    funding: list[dict[str, Any]] = field(default_factory=list)
    signing_strings: list[str] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    cancel_all_accepted: bool = False
    _faults: dict[str, list[_Fault]] = field(default_factory=dict)
    _pending_cancel_all: list[str] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(111_000_000_001))
    _connections: list[_Connection] = field(default_factory=list)
    _event_us: int = 0
    _subscribed: trio.Event | None = None

    # -----------------------------------------------------------------------------------------
    # Set-up

    def add_market(self, symbol: str, *, tick: str = "0.01", step: str = "0.01",
                   min_qty: str = "0.01", kind: str = "PERP") -> None:
        base, quote = symbol.split("_")[:2]
        self.markets[symbol] = _Market(symbol, base, quote, Decimal(tick), Decimal(step),
                                       Decimal(min_qty), kind)

    def set_top(self, symbol: str, bid: str, ask: str, *, bid_qty: str = "1",
                ask_qty: str = "1") -> None:
        """Move the touch; resting orders it crosses fill as maker at their own price, and
        `bookTicker`/`depth` subscribers are sent the new top."""
        market = self.markets[symbol]
        old_bid, old_ask = market.bid, market.ask
        market.bid, market.ask = Decimal(bid), Decimal(ask)
        market.bid_qty, market.ask_qty = Decimal(bid_qty), Decimal(ask_qty)
        for order in list(self.orders.values()):
            if order["symbol"] != symbol or order["status"] not in ("New", "PartiallyFilled"):
                continue
            price = Decimal(order["price"])
            if (price >= market.ask) if order["side"] == "Bid" else (price <= market.bid):
                self._fill(order, market, price, Decimal(order["quantity"]), maker=True)
        self._push_top(market, old_bid, old_ask)

    def set_mark(self, symbol: str, mark: str, funding_rate: str = "0.0001",
                 next_funding_ms: int | None = None) -> None:
        """Set the mark price and estimated funding; `markPrice.<sym>` subscribers get it."""
        market = self.markets[symbol]
        next_ms = next_funding_ms if next_funding_ms is not None else self.now_ms + 3_600_000
        market.mark = (mark, funding_rate, next_ms)
        self._publish("markPrice", symbol, self._mark_data(market))

    def expire(self, order_id: str, reason: str = "ExpiredByVenue") -> None:
        """Expire an open order, as the venue does (an `orderExpired` event with `R`)."""
        order = self.orders[order_id]
        order["status"] = "Expired"
        order["expiryReason"] = reason
        self._order_event("orderExpired", order)

    def drop_streams(self, code: int = 1011) -> None:
        """Close every WebSocket connection with `code` (abnormal unless 1000/1001)."""
        for connection in self._connections:
            connection.send.send_nowait(_Close(code))

    async def wait_subscribed(self, stream: str) -> None:
        """Return once some connection is subscribed to `stream`."""
        while not any(stream in c.streams for c in self._connections):
            if self._subscribed is None:
                self._subscribed = trio.Event()
            await self._subscribed.wait()

    def set_balance(self, asset: str, available: str, locked: str = "0") -> None:
        self.balances[asset] = {"available": Decimal(available), "locked": Decimal(locked),
                                "staked": Decimal(0)}

    def add_funding(self, symbol: str, quantity: str, rate: str, ts_ms: int) -> None:
        self.funding.append({"symbol": symbol, "quantity": quantity, "fundingRate": rate,
                             "intervalEndTimestamp": _iso(ts_ms), "userId": 1})

    def fail_next(self, path: str, status: int, *, executed: bool = False) -> None:
        """Answer the next request to `path` with `status` (503, 429, 418); `executed=True`
        executes it first, as a venue that placed the order and then failed to say so."""
        self._faults.setdefault(path, []).append(_Fault(status, executed))

    def pending_faults(self, path: str) -> int:
        """Faults queued for `path` that no request has used yet."""
        return len(self._faults.get(path, []))

    def open_order_by_client_id(self, client_id: int) -> dict[str, Any] | None:
        for order in self.orders.values():
            if order["clientId"] == client_id and order["status"] in ("New", "PartiallyFilled"):
                return order
        return None

    # -----------------------------------------------------------------------------------------
    # The handler

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        try:
            if path == "/api/v1/time":
                return httpx.Response(200, text=str(self.now_ms))
            if path == "/api/v1/markets":
                return httpx.Response(200, json=[self._market_json(m)
                                                 for m in self.markets.values()])
            params = self._verify(request)
            self._run_pending_cancel_all()
            faults = self._faults.get(path)
            fault = faults.pop(0) if faults else None
            if fault is not None and not fault.executed:
                return _fault_response(fault.status)
            response = self._route(request.method, path, params)
            if fault is not None:
                return _fault_response(fault.status)
            return response
        except _Reject as reject:
            return httpx.Response(reject.status,
                                  json={"code": reject.code, "message": reject.message})

    # -----------------------------------------------------------------------------------------
    # Authentication

    def _verify(self, request: httpx.Request) -> dict[str, Any]:
        instruction = INSTRUCTIONS.get((request.method, request.url.path))
        if instruction is None:
            raise _Reject(404, "RESOURCE_NOT_FOUND", "Not found")
        headers = request.headers
        if headers.get("X-API-Key") != self.api_key_b64:
            raise _Reject(401, "UNAUTHORIZED", "API key not found")
        try:
            timestamp = int(headers["X-Timestamp"])
            window = int(headers.get("X-Window", "5000"))
        except (KeyError, ValueError):
            raise _Reject(400, "INVALID_CLIENT_REQUEST", "Invalid timestamp") from None
        if not 0 < window <= 60_000:
            raise _Reject(400, "INVALID_CLIENT_REQUEST", "Invalid window")
        if abs(self.now_ms - timestamp) > window:
            raise _Reject(401, "INVALID_CLIENT_REQUEST", "Request has expired")
        content = request.content
        if content:
            if request.method in ("POST", "DELETE") and request.headers.get(
                    "Content-Type") != "application/json; charset=utf-8":
                raise _Reject(400, "INVALID_CLIENT_REQUEST", "Expected JSON")
            self.bodies.append(content)
            parsed = json.loads(content, parse_float=str, parse_int=str)
            if isinstance(parsed, list):
                return self._verify_batch(parsed, json.loads(content), instruction, timestamp,
                                          window, headers.get("X-Signature", ""))
            params: dict[str, Any] = dict(parsed)
            raw = json.loads(content)
            for key in ("price", "quantity"):
                if key in raw and not isinstance(raw[key], str):
                    raise _Reject(400, "INVALID_CLIENT_REQUEST", f"{key} must be a string")
        else:
            params = dict(parse_qsl(request.url.query.decode("ascii")))
        pairs = "".join(f"&{k}={_text(params[k])}" for k in sorted(params))
        message = f"instruction={instruction}{pairs}&timestamp={timestamp}&window={window}"
        try:
            VerifyKey(base64.b64decode(self.api_key_b64)).verify(
                message.encode("utf-8"), base64.b64decode(headers.get("X-Signature", "")))
        except (BadSignatureError, ValueError):
            raise _Reject(400, "INVALID_SIGNATURE",
                          "Invalid signature, could not verify signature") from None
        self.signing_strings.append(message)
        return params

    def _verify_batch(self, orders: list[Any], raw: list[Any], instruction: str, timestamp: int,
                      window: int, signature: str) -> dict[str, Any]:
        """A JSON-array body (§2.2 batch rule): each order's keys sorted and prefixed with
        `instruction=<i>`, the orders joined by `&`, then timestamp and window once. Returns
        `{"orders": [...]}` for `_route`."""
        if not orders or not all(isinstance(o, dict) for o in orders):
            raise _Reject(400, "INVALID_CLIENT_REQUEST", "Expected an array of orders")
        for order in raw:
            for key in ("price", "quantity"):
                if key in order and not isinstance(order[key], str):
                    raise _Reject(400, "INVALID_CLIENT_REQUEST", f"{key} must be a string")
        message = "&".join(
            f"instruction={instruction}" + "".join(f"&{k}={_text(o[k])}" for k in sorted(o))
            for o in orders) + f"&timestamp={timestamp}&window={window}"
        try:
            VerifyKey(base64.b64decode(self.api_key_b64)).verify(
                message.encode("utf-8"), base64.b64decode(signature))
        except (BadSignatureError, ValueError):
            raise _Reject(400, "INVALID_SIGNATURE",
                          "Invalid signature, could not verify signature") from None
        self.signing_strings.append(message)
        return {"orders": orders}

    def _execute_batch(self, orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`POST /api/v1/orders`: each order executed as `POST /api/v1/order` would, in order;
        results tagged `"operation": "Ok"` (the order) or `"Err"` (`code`, `message`), the
        shape of the OpenAPI's `BatchCommandOrderResult` (not in venues.md)."""
        results: list[dict[str, Any]] = []
        for order in orders:
            try:
                results.append({"operation": "Ok", **self._execute(order)})
            except _Reject as reject:
                results.append({"operation": "Err", "code": reject.code,
                                "message": reject.message})
        return results

    # -----------------------------------------------------------------------------------------
    # Endpoints

    def _route(self, method: str, path: str, params: dict[str, Any]) -> httpx.Response:
        if (method, path) == ("POST", "/api/v1/order"):
            return httpx.Response(200, json=self._execute(params))
        if (method, path) == ("POST", "/api/v1/orders"):
            return httpx.Response(200, json=self._execute_batch(params["orders"]))
        if (method, path) == ("DELETE", "/api/v1/order"):
            order = self._find_open(params)
            order["status"] = "Cancelled"
            self._order_event("orderCancelled", order)
            return httpx.Response(200, json=order)
        if (method, path) == ("DELETE", "/api/v1/orders"):
            symbol = params["symbol"]
            if self.cancel_all_accepted:
                self._pending_cancel_all.append(symbol)
                return httpx.Response(202)
            return httpx.Response(200, json=self._cancel_all(symbol))
        if (method, path) == ("GET", "/api/v1/order"):
            return httpx.Response(200, json=self._find_open(params))
        if (method, path) == ("GET", "/api/v1/orders"):
            return httpx.Response(200, json=[
                o for o in self.orders.values()
                if o["status"] in ("New", "PartiallyFilled")
                and params.get("symbol") in (None, o["symbol"])])
        if (method, path) == ("GET", "/api/v1/position"):
            return httpx.Response(200, json=[
                {"symbol": s, "netQuantity": str(p.qty), "entryPrice": str(p.entry)}
                for s, p in self.positions.items() if p.qty != 0])
        if (method, path) == ("GET", "/api/v1/capital"):
            return httpx.Response(200, json={
                asset: {k: str(v) for k, v in amounts.items()}
                for asset, amounts in self.balances.items()})
        if (method, path) == ("GET", "/wapi/v1/history/fills"):
            since = int(params.get("from", 0))
            found = [f for f in self.fills if f["_ts_ms"] >= since]
            return httpx.Response(200, json=self._page(found, params))
        if (method, path) == ("GET", "/wapi/v1/history/funding"):
            return httpx.Response(200, json=self._page(self.funding, params))
        raise _Reject(404, "RESOURCE_NOT_FOUND", "Not found")

    def _execute(self, p: dict[str, Any]) -> dict[str, Any]:
        market = self.markets.get(p.get("symbol", ""))
        if market is None:
            raise _Reject(400, "INVALID_MARKET", "Market not found")
        client_id = int(p["clientId"]) if "clientId" in p else None
        if client_id is not None and self.open_order_by_client_id(client_id) is not None:
            raise _Reject(400, "INVALID_ORDER",
                          f"Order with client ID already exists: {client_id}")
        qty = Decimal(p.get("quantity", "0"))
        if qty % market.step != 0:
            raise _Reject(400, "INVALID_QUANTITY", "Quantity does not match step size")
        if qty < market.min_qty:
            raise _Reject(400, "INVALID_QUANTITY", "Quantity is below the minimum")
        side, order_type = p.get("side"), p.get("orderType")
        if side not in ("Bid", "Ask") or order_type not in ("Limit", "Market"):
            raise _Reject(400, "INVALID_ORDER", "Invalid order")
        touch = market.ask if side == "Bid" else market.bid
        price: Decimal | None = None
        if order_type == "Limit":
            if "price" not in p:
                raise _Reject(400, "INVALID_ORDER", "Limit orders must specify a price")
            price = Decimal(p["price"])
            if price % market.tick != 0:
                raise _Reject(400, "INVALID_PRICE", "Price does not match tick size")
        crosses = touch is not None and (
            price is None or (price >= touch if side == "Bid" else price <= touch))
        if p.get("postOnly") is True and crosses:
            raise _Reject(400, "INVALID_ORDER", "Order would immediately match and take")
        reference = touch if crosses else price
        quote = self.balances.get(market.quote, {}).get("available", Decimal(0))
        if p.get("reduceOnly") is not True and reference is not None and reference * qty > quote:
            raise _Reject(400, "INSUFFICIENT_FUNDS", "Insufficient funds")
        order: dict[str, Any] = {
            "id": str(next(self._ids)), "clientId": client_id, "symbol": market.symbol,
            "side": side, "orderType": order_type, "quantity": p["quantity"],
            "price": p.get("price"), "executedQuantity": "0", "executedQuoteQuantity": "0",
            "postOnly": p.get("postOnly") is True, "reduceOnly": p.get("reduceOnly") is True,
            "timeInForce": p.get("timeInForce", "GTC"), "selfTradePrevention": "RejectTaker",
            "status": "New", "createdAt": self.now_ms,
        }
        self.orders[order["id"]] = order
        self._order_event("orderAccepted", order)
        if crosses and touch is not None:
            self._fill(order, market, touch, qty)
        elif order_type == "Market" or order["timeInForce"] in ("IOC", "FOK"):
            self.expire(order["id"], "ImmediateOrCancel")
        return order

    def _fill(self, order: dict[str, Any], market: _Market, price: Decimal, qty: Decimal,
              *, maker: bool = False) -> None:
        order["status"] = "Filled"
        order["executedQuantity"] = order["quantity"]
        order["executedQuoteQuantity"] = str(price * qty)
        signed_qty = qty if order["side"] == "Bid" else -qty
        position = self.positions.setdefault(market.symbol, _Position())
        if position.qty == 0 or (position.qty > 0) == (signed_qty > 0):
            total = position.qty + signed_qty
            position.entry = (position.entry * abs(position.qty) + price * qty) / abs(total)
            position.qty = total
        else:
            position.qty += signed_qty
            if position.qty == 0:
                position.entry = Decimal(0)
        trade = {
            "tradeId": len(self.fills) + 1, "orderId": order["id"],
            "clientId": order["clientId"], "symbol": market.symbol, "side": order["side"],
            "price": str(price), "quantity": str(qty), "fee": "0", "feeSymbol": market.quote,
            "isMaker": maker, "timestamp": _iso(self.now_ms), "_ts_ms": self.now_ms,
        }
        self.fills.append(trade)
        self._order_event("orderFill", order, trade)

    def _find_open(self, p: dict[str, Any]) -> dict[str, Any]:
        if ("clientId" in p) == ("orderId" in p):
            raise _Reject(400, "INVALID_CLIENT_REQUEST", "Must specify either `clientId` or "
                          "`orderId`")
        for order in self.orders.values():
            same = (order["clientId"] == int(p["clientId"]) if "clientId" in p
                    else order["id"] == p["orderId"])
            if (same and order["symbol"] == p.get("symbol")
                    and order["status"] in ("New", "PartiallyFilled")):
                return order
        raise _Reject(404, "RESOURCE_NOT_FOUND", "Order not found")

    def _cancel_all(self, symbol: str) -> list[dict[str, Any]]:
        cancelled = []
        for order in self.orders.values():
            if order["symbol"] == symbol and order["status"] in ("New", "PartiallyFilled"):
                order["status"] = "Cancelled"
                self._order_event("orderCancelled", order)
                cancelled.append(order)
        return cancelled

    def _run_pending_cancel_all(self) -> None:
        while self._pending_cancel_all:
            self._cancel_all(self._pending_cancel_all.pop(0))

    # -----------------------------------------------------------------------------------------
    # WebSocket

    async def serve_websocket(self, request: trio_websocket.WebSocketRequest) -> None:
        """A `trio_websocket.serve_websocket` handler: one client connection until it closes."""
        ws = await request.accept()
        send, receive = trio.open_memory_channel[str | _Close](math.inf)
        connection = _Connection(send)
        self._connections.append(connection)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._ws_write, ws, receive)
                try:
                    while True:
                        self._ws_request(connection, await ws.get_message())
                except trio_websocket.ConnectionClosed:
                    pass
                nursery.cancel_scope.cancel()
        finally:
            self._connections.remove(connection)

    @staticmethod
    async def _ws_write(ws: trio_websocket.WebSocketConnection,
                        receive: trio.MemoryReceiveChannel[str | _Close]) -> None:
        try:
            async for item in receive:
                if isinstance(item, _Close):
                    await ws.aclose(code=item.code, reason="sim close")
                    return
                await ws.send_message(item)
        except trio_websocket.ConnectionClosed:
            pass

    def _ws_request(self, connection: _Connection, raw: str | bytes) -> None:
        try:
            request = json.loads(raw)
            method, params = request["method"], list(request["params"])
        except (ValueError, KeyError, TypeError):
            connection.send.send_nowait(json.dumps(
                {"id": None, "error": {"code": 4000, "message": "Invalid request"}}))
            return
        if method == "UNSUBSCRIBE":
            connection.streams.difference_update(params)
            return
        if method != "SUBSCRIBE":
            return
        if any(str(p).startswith("account.") for p in params):
            refusal = self._verify_ws_signature(request.get("signature"))
            if refusal is not None:
                connection.send.send_nowait(json.dumps(
                    {"id": None, "error": {"code": 4006, "message": refusal}}))
                connection.send.send_nowait(_Close(1008))
                return
        connection.streams.update(str(p) for p in params)
        for stream in params:
            kind, symbol = str(stream).split(".")[0], str(stream).split(".")[-1]
            market = self.markets.get(symbol)
            if kind == "markPrice" and market is not None and market.mark is not None:
                connection.send.send_nowait(json.dumps(
                    {"stream": stream, "data": self._mark_data(market)}))
        if self._subscribed is not None:
            self._subscribed.set()
            self._subscribed = None

    def _verify_ws_signature(self, signature: object) -> str | None:
        """None if the private subscription is signed right, else the venue's words."""
        if not (isinstance(signature, list) and len(signature) == 4
                and all(isinstance(part, str) for part in signature)):
            return "Invalid signature, could not verify signature"
        key, sig, timestamp_text, window_text = signature
        if key != self.api_key_b64:
            return "API key not found"
        try:
            timestamp, window = int(timestamp_text), int(window_text)
        except ValueError:
            return "Invalid timestamp"
        if not 0 < window <= 60_000:
            return "Invalid window"
        if abs(self.now_ms - timestamp) > window:
            return "Request has expired"
        message = f"instruction=subscribe&timestamp={timestamp}&window={window}"
        try:
            VerifyKey(base64.b64decode(self.api_key_b64)).verify(
                message.encode("utf-8"), base64.b64decode(sig))
        except (BadSignatureError, ValueError):
            return "Invalid signature, could not verify signature"
        self.signing_strings.append(message)
        return None

    def _next_event_us(self) -> int:
        # µs (§2.1), strictly increasing even when several events share one `now_ms`.
        self._event_us = max(self.now_ms * 1000, self._event_us + 1)
        return self._event_us

    def _publish(self, kind: str, symbol: str, data: dict[str, Any]) -> None:
        """Send `data` to every connection subscribed to `<kind>[.<anything>].<symbol>` (or,
        for the account streams, to `<kind>` itself)."""
        for connection in self._connections:
            for stream in connection.streams:
                parts = stream.split(".")
                if ".".join(parts[:2] if kind.startswith("account.") else parts[:1]) != kind:
                    continue
                if (kind.startswith("account.") and len(parts) == 2) or parts[-1] == symbol:
                    connection.send.send_nowait(json.dumps({"stream": stream, "data": data}))

    def _order_event(self, kind: str, order: dict[str, Any],
                     trade: dict[str, Any] | None = None) -> None:
        event_us = self._next_event_us()
        data: dict[str, Any] = {
            "e": kind, "E": event_us, "s": order["symbol"], "S": order["side"],
            "o": order["orderType"].upper(), "f": order["timeInForce"],
            "q": order["quantity"], "X": order["status"], "i": order["id"],
            "z": order["executedQuantity"], "Z": order["executedQuoteQuantity"],
            "V": order["selfTradePrevention"], "T": event_us - 1, "O": "USER",
            "y": order["postOnly"], "r": order["reduceOnly"],
        }
        if order["clientId"] is not None:
            data["c"] = order["clientId"]
        if order["price"] is not None:
            data["p"] = order["price"]
        if kind == "orderExpired":
            data["R"] = order.get("expiryReason", "")
        if trade is not None:
            data.update({"l": trade["quantity"], "L": trade["price"], "m": trade["isMaker"],
                         "n": trade["fee"], "N": trade["feeSymbol"], "t": trade["tradeId"]})
        self._publish("account.orderUpdate", order["symbol"], data)

    def _push_top(self, market: _Market, old_bid: Decimal | None,
                  old_ask: Decimal | None) -> None:
        event_us = self._next_event_us()
        self._publish("bookTicker", market.symbol, {
            "e": "bookTicker", "E": event_us, "s": market.symbol, "a": str(market.ask),
            "A": str(market.ask_qty), "b": str(market.bid), "B": str(market.bid_qty),
            "u": str(event_us), "T": event_us - 1})
        bids = [[str(market.bid), str(market.bid_qty)]]
        asks = [[str(market.ask), str(market.ask_qty)]]
        if old_bid is not None and old_bid != market.bid:
            bids.append([str(old_bid), "0"])
        if old_ask is not None and old_ask != market.ask:
            asks.append([str(old_ask), "0"])
        market.depth_seq += 1
        self._publish("depth", market.symbol, {
            "e": "depth", "E": event_us, "s": market.symbol, "a": asks, "b": bids,
            "U": market.depth_seq, "u": market.depth_seq, "T": event_us - 1})

    def _mark_data(self, market: _Market) -> dict[str, Any]:
        assert market.mark is not None
        mark, rate, next_ms = market.mark
        event_us = self._next_event_us()
        return {"e": "markPrice", "E": event_us, "s": market.symbol, "p": mark, "f": rate,
                "i": mark, "n": next_ms, "T": event_us - 1}

    @staticmethod
    def _page(items: list[dict[str, Any]], p: dict[str, Any]) -> list[dict[str, Any]]:
        offset, limit = int(p.get("offset", 0)), int(p.get("limit", 100))
        newest_first = list(reversed(items))  # the venue lists history newest first
        return [{k: v for k, v in item.items() if not k.startswith("_")}
                for item in newest_first[offset:offset + limit]]

    @staticmethod
    def _market_json(m: _Market) -> dict[str, Any]:
        return {"symbol": m.symbol, "baseSymbol": m.base, "quoteSymbol": m.quote,
                "marketType": m.kind, "orderBookState": "Open",
                "filters": {"price": {"tickSize": str(m.tick)},
                            "quantity": {"stepSize": str(m.step), "minQuantity": str(m.min_qty)}}}


@asynccontextmanager
async def open_backpack_ws(sim: BackpackSimulator) -> AsyncIterator[str]:
    """Serve `sim.serve_websocket` on 127.0.0.1 (OS-chosen port) and yield its `ws://` URL;
    stops, closing every connection, on exit."""
    async with trio.open_nursery() as nursery:
        server: trio_websocket.WebSocketServer = await nursery.start(
            partial(trio_websocket.serve_websocket, sim.serve_websocket, "127.0.0.1", 0, None))
        yield f"ws://127.0.0.1:{server.port}"
        nursery.cancel_scope.cancel()


def _text(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def _fault_response(status: int) -> httpx.Response:
    body = _FAULT_BODIES.get(status)
    if body is None:
        return httpx.Response(status, text="banned")
    return httpx.Response(status, json=body)


def _iso(ts_ms: int) -> str:
    moment = datetime.datetime.fromtimestamp(ts_ms / 1000, tz=datetime.UTC)
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds")
