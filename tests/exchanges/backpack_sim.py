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

Fault injection: `fail_next(path, status)` answers the next request to `path` with 503, 429 or
418; with `executed=True` the request is executed first (a "503 but the order was placed").
`cancel_all_accepted = True` makes cancel-all answer 202 and cancel on the next request.
"""

from __future__ import annotations

import base64
import datetime
import itertools
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import httpx
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

INSTRUCTIONS = {
    ("GET", "/api/v1/capital"): "balanceQuery",
    ("POST", "/api/v1/order"): "orderExecute",
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


@dataclass
class _Fault:
    status: int
    executed: bool


@dataclass
class _Position:
    qty: Decimal = Decimal(0)
    entry: Decimal = Decimal(0)


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

    # -----------------------------------------------------------------------------------------
    # Set-up

    def add_market(self, symbol: str, *, tick: str = "0.01", step: str = "0.01",
                   min_qty: str = "0.01", kind: str = "PERP") -> None:
        base, quote = symbol.split("_")[:2]
        self.markets[symbol] = _Market(symbol, base, quote, Decimal(tick), Decimal(step),
                                       Decimal(min_qty), kind)

    def set_top(self, symbol: str, bid: str, ask: str) -> None:
        market = self.markets[symbol]
        market.bid, market.ask = Decimal(bid), Decimal(ask)

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

    # -----------------------------------------------------------------------------------------
    # Endpoints

    def _route(self, method: str, path: str, params: dict[str, Any]) -> httpx.Response:
        if (method, path) == ("POST", "/api/v1/order"):
            return httpx.Response(200, json=self._execute(params))
        if (method, path) == ("DELETE", "/api/v1/order"):
            order = self._find_open(params)
            order["status"] = "Cancelled"
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
        if crosses and touch is not None:
            self._fill(order, market, touch, qty)
        elif order_type == "Market" or order["timeInForce"] in ("IOC", "FOK"):
            order["status"] = "Expired"
            order["expiryReason"] = "ImmediateOrCancel"
        self.orders[order["id"]] = order
        return order

    def _fill(self, order: dict[str, Any], market: _Market, price: Decimal, qty: Decimal) -> None:
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
        self.fills.append({
            "tradeId": len(self.fills) + 1, "orderId": order["id"],
            "clientId": order["clientId"], "symbol": market.symbol, "side": order["side"],
            "price": str(price), "quantity": str(qty), "fee": "0", "feeSymbol": market.quote,
            "isMaker": False, "timestamp": _iso(self.now_ms), "_ts_ms": self.now_ms,
        })

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
                cancelled.append(order)
        return cancelled

    def _run_pending_cancel_all(self) -> None:
        while self._pending_cancel_all:
            self._cancel_all(self._pending_cancel_all.pop(0))

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
