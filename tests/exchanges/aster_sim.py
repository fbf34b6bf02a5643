"""An in-memory Aster futures venue (V1 HMAC, and V3 API wallet when registered) for adapter
tests (venues.md §1.3, §1.4, §1.6, §1.9).

`AsterSimulator.handle` is a plain `httpx.Request -> httpx.Response` function: mount it with
`httpx.MockTransport(sim.handle)` today, or behind a loopback HTTP server later, unchanged.

It checks what the venue checks, the way the doc says: the `X-MBX-APIKEY` header, the HMAC
signature recomputed over query + body exactly as sent (§1.3), `timestamp` against its own
(injectable) clock and `recvWindow`, and the symbol filters. With V3 credentials registered
(`wallet_user`, `wallet_signer`) it also serves `/fapi/v3/<name>`, routed to the handler of
`/fapi/v1/<name>` or `/fapi/v2/<name>` ("V3 uses the same names", §1.6), authenticated the V3
way (§1.4) independently of the adapter's signing code: `user`, `signer`, `nonce` (µs) and
`signature` last; the EIP-712 signer is recovered with eth-account over the parameter string
as sent, minus `&signature=...`; the nonce must be within 10 s of the sim's clock and not one of
the user's last 100. `/fapi/v3` takes only V3 auth and `/fapi/v1`/`/fapi/v2` only V1 auth (a V3
request there has no API-key header). Matching is deliberately simple:
each symbol has a settable top of book with unlimited size; a marketable LIMIT GTC/IOC or a
MARKET order fills completely at the touch, a non-marketable IOC expires, a LIMIT GTC rests.
Errors use the documented codes and words; where the doc is silent the choice is noted at the
constant. Fees: a taker fill pays `taker_fee_rate` × notional in the quote asset, a maker fill
`maker_fee_rate`. A resting LIMIT order fills as maker, completely and at its own price, when
`set_book` moves the touch through it (a BUY at p once the ask is <= p, a SELL once the bid is
>= p), so a market maker can trade against the sim.

It is also the venue's WebSocket side (§1.7, §1.8), served by `serve_websocket` (a handler for
`trio_websocket.serve_websocket`; `open_aster_ws(sim)` serves it on loopback):

- user data: listen keys (`POST/PUT/DELETE /fapi/v1/listenKey`: one key per account, 60 min
  after its last extension on the sim's clock; a POST returns the live key and extends it) and
  `/ws/<listenKey>`, which receives `ORDER_TRADE_UPDATE` for every order change (NEW, TRADE,
  CANCELED, EXPIRED), `ACCOUNT_UPDATE` (reason ORDER after a fill, FUNDING_FEE from
  `add_funding`) and `listenKeyExpired` in the documented shapes;
- market data: `/stream?streams=<s>@bookTicker/<s>@markPrice@1s/...`, combined frames
  `{"stream": name, "data": {...}}`. On connect each subscribed stream gets the current book
  and mark (standing in for the live venue's constant flow); then `set_book` pushes a
  bookTicker and `set_mark` a markPriceUpdate.

`handle` stays a plain sync function: it hands events to unbounded trio memory channels
(`send_nowait`) that the WebSocket tasks drain, so it must run in the trio thread (as it does
under `httpx.MockTransport`). Faults: `fail_next(path, status)`, `expire_listen_key()`,
`drop_user_streams(code)`.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any
from urllib.parse import parse_qsl

import httpx
import trio
import trio_websocket
from eth_account import Account
from eth_account.messages import encode_typed_data
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketServer

from exchanges import Instrument
from exchanges.aster import hmac_payload, hmac_signature

# (HTTP status, code, msg). AF1 §Error Codes unless noted.
BAD_API_KEY = (401, -2015, "Invalid API-key, IP, or permissions for action.")  # Binance; not in AF1
BAD_SIGNATURE = (400, -1022, "Signature for this request is not valid.")
BAD_TIMESTAMP = (400, -1021, "Timestamp for this request is outside of the recvWindow.")
BAD_PRECISION = (400, -1111, "Precision is over the maximum defined for this asset.")
PRICE_TICK = (400, -4014, "Price not increased by tick size.")
QTY_STEP = (400, -4023, "Quantity not increased by step size.")
MIN_NOTIONAL = (400, -4164,
                "Order's notional must be no smaller than 5.0 (unless you choose reduce only)")
POST_ONLY_CROSS = (400, -5022, "Due to the order could not be executed as maker, the Post Only "
                               "order will be rejected. The order will not be recorded in the "
                               "order history")
"""Binance's code and words (§4.4). No Aster doc says what a crossing GTX returns: it may be
this error or an order that ends EXPIRED (§1.9). We simulate the Binance behaviour."""
DUPLICATE_ORDER = (400, -2010, "Duplicate order sent.")
"""The doc says only that `newClientOrderId` is unique among open orders (§1.6), not which
code a duplicate gets; -2010 NEW_ORDER_REJECTED is documented, the words are Binance spot's."""
REDUCE_ONLY = (400, -2022, "ReduceOnly Order is rejected.")
NO_BOOK = (400, -2010, "No liquidity to match the order.")  # our words
UNKNOWN_ORDER = (400, -2013, "Order does not exist.")
CANCEL_UNKNOWN = (400, -2011, "Unknown order sent.")
MISSING_SYMBOL = (400, -1102, "Mandatory parameter 'symbol' was not sent.")  # Binance
UNKNOWN_SYMBOL = (400, -1121, "Invalid symbol.")
NOT_FOUND = (404, -1000, "Unknown path.")  # ours
INVALID_LISTEN_KEY = (400, -1125, "This listenKey does not exist.")  # Binance's words for -1125
NONCE_EXPIRED = (400, -4225, "Nonce Expired")
"""AF3's demo output (§1.4), for a nonce below the oldest of the last 100. We also give it to a
nonce more than 10 s from the sim's clock, either way (the doc names no code for that)."""
DUPLICATE_NONCE = (400, -4226, "Duplicate nonce.")
"""Ours, code and words: AF3 says a reused nonce is rejected as a duplicate, with no code."""
STATUS_UNKNOWN = (503, -1007, "Timeout waiting for response from backend server. Send status "
                              "unknown; execution status unknown.")  # Binance -1007

BAD_BATCH = (400, -1130, "Data sent for parameter 'batchOrders' is not valid.")
"""The doc gives no code for an over-long or malformed `batchOrders`; -1130 is Binance's
INVALID_PARAMETER, with its words."""
MAX_BATCH_ORDERS = 5  # §1.6, §4.13

PUBLIC_PATHS = frozenset({"/fapi/v1/time", "/fapi/v1/exchangeInfo"})
LISTEN_KEY_PATH = "/fapi/v1/listenKey"
USER_STREAM_PATHS = frozenset({LISTEN_KEY_PATH})
"""USER_STREAM security (§1.3): the API key is enough; a signature, if sent, must be valid."""
V3_PREFIX = "/fapi/v3/"
V3_NONCE_WINDOW_US = 10_000_000  # AF3 §V3 Nonce Mechanism (§1.4): within 10 s of server time
V3_NONCES_KEPT = 100  # ... and the user's most recent 100 nonces are kept
V3_CHAIN_ID = 1666  # mainnet EIP-712 chainId (§1.4)
LISTEN_KEY_LIFETIME_MS = 60 * 60 * 1000
FUNDING_INTERVAL_MS = 8 * 60 * 60 * 1000
"""Default next-funding time for marks nobody set: the next 8 h boundary."""


class _Reject(Exception):
    def __init__(self, error: tuple[int, int, str]) -> None:
        super().__init__(error[2])
        self.error = error


@dataclass
class _Fault:
    status: int
    retry_after_s: int | None
    then_process: bool


@dataclass
class SimOrder:
    order_id: int
    symbol: str
    client_id: str
    side: str
    type: str
    tif: str
    qty: Decimal
    price: Decimal
    reduce_only: bool
    status: str = "NEW"
    executed: Decimal = Decimal(0)
    time_ms: int = 0
    update_ms: int = 0
    avg_price: Decimal = Decimal(0)

    def as_json(self) -> dict[str, Any]:
        return {"orderId": self.order_id, "symbol": self.symbol, "status": self.status,
                "clientOrderId": self.client_id, "price": str(self.price),
                "avgPrice": str(self.avg_price), "origQty": str(self.qty),
                "executedQty": str(self.executed),
                "cumQuote": "0", "timeInForce": self.tif, "type": self.type,
                "reduceOnly": self.reduce_only, "closePosition": False, "side": self.side,
                "positionSide": "BOTH", "stopPrice": "0", "origType": self.type,
                "time": self.time_ms, "updateTime": self.update_ms}


@dataclass
class _PositionState:
    qty: Decimal = Decimal(0)
    entry: Decimal = Decimal(0)


@dataclass(frozen=True)
class _Close:
    """Queued to a socket: close it with `code`."""

    code: int


_Outgoing = str | _Close


@dataclass
class _Socket:
    """One WebSocket connection as the venue keeps it: where its frames go and what it gets."""

    send: trio.MemorySendChannel[_Outgoing]
    listen_key: str = ""
    streams: frozenset[str] = frozenset()


@dataclass
class Received:
    """One request as the venue saw it (before its checks)."""

    method: str
    path: str
    query: str
    body: str
    params: dict[str, str] = field(default_factory=dict)


class AsterSimulator:
    """A futures venue with one account (`api_key`, `secret`; also reachable with V3 API-wallet
    auth when `wallet_user` and `wallet_signer` are given) and the given instruments.

    `clock_ms` is the venue's clock (ms). `received` records every request as sent; tests
    assert on the exact bytes there. Fault injection: `fail_next(path, status)`.
    """

    def __init__(self, *, api_key: str, secret: str, instruments: Sequence[Instrument],
                 clock_ms: Callable[[], int], quote_balance: Decimal = Decimal(10_000),
                 taker_fee_rate: Decimal = Decimal("0.0004"),
                 maker_fee_rate: Decimal = Decimal("0.0002"), wallet_user: str | None = None,
                 wallet_signer: str | None = None) -> None:
        self._api_key = api_key
        self._secret = secret
        self._wallet_user = wallet_user
        self._wallet_signer = wallet_signer
        """V3 credentials (§1.4): the main wallet and the API wallet's address; both or none."""
        self._nonces: list[int] = []
        """The V3 user's kept nonces, ascending: the highest V3_NONCES_KEPT accepted so far."""
        self.clock_ms = clock_ms
        self.instruments = {i.symbol: i for i in instruments}
        self.books: dict[str, tuple[Decimal, Decimal]] = {}
        self.orders: dict[int, SimOrder] = {}
        self.trades: dict[str, list[dict[str, Any]]] = {s: [] for s in self.instruments}
        self.positions = {s: _PositionState() for s in self.instruments}
        self.balance = quote_balance
        self.quote = "USDT"
        self.taker_fee_rate = taker_fee_rate
        self.maker_fee_rate = maker_fee_rate
        self.touch_qty = Decimal(1000)
        """The size bookTicker reports at each side (matching ignores size)."""
        self.marks: dict[str, tuple[Decimal, Decimal, int]] = {}
        self.listen_key: str | None = None
        self.listen_key_expiry_ms = 0
        self.listen_keys_issued: list[str] = []
        self.listen_key_extensions = 0
        """Successful PUTs (keepalives)."""
        self._extension_waiters: list[tuple[int, trio.Event]] = []
        self._user_sockets: list[_Socket] = []
        self._market_sockets: list[_Socket] = []
        self._book_update_id = 0
        self.income: list[dict[str, Any]] = []
        self.countdowns: dict[str, int] = {}
        self.received: list[Received] = []
        self._faults: dict[str, list[_Fault]] = {}
        self._next_order_id = 1000

    # -----------------------------------------------------------------------------------------
    # Test controls

    def set_book(self, symbol: str, bid: Decimal, ask: Decimal) -> None:
        """Move the touch: resting orders it crosses fill as maker, then a bookTicker goes out."""
        self.books[symbol] = (bid, ask)
        for order in sorted(self.open_orders_of(symbol), key=lambda o: o.order_id):
            if order.type == "LIMIT" and (order.price >= ask if order.side == "BUY"
                                          else order.price <= bid):
                self._fill(order, order.price, maker=True)
        self._push_market(f"{symbol.lower()}@bookTicker", self._book_ticker(symbol))

    def set_mark(self, symbol: str, mark: Decimal, funding_rate: Decimal,
                 next_funding_ms: int) -> None:
        """Set the mark price and funding; subscribers get a markPriceUpdate."""
        self.marks[symbol] = (mark, funding_rate, next_funding_ms)
        for name in (f"{symbol.lower()}@markPrice@1s", f"{symbol.lower()}@markPrice"):
            self._push_market(name, self._mark_price(symbol))

    def expire_listen_key(self) -> None:
        """Expire the live key now: its sockets get `listenKeyExpired` and nothing after."""
        self._expire_listen_key()

    async def wait_listen_key_extensions(self, count: int) -> None:
        """Return once `count` keepalives (PUTs) in all have extended a key."""
        if self.listen_key_extensions >= count:
            return
        event = trio.Event()
        self._extension_waiters.append((count, event))
        await event.wait()

    def drop_user_streams(self, code: int = 1011) -> None:
        """Close every user-stream socket with `code` (abnormal unless 1000/1001)."""
        for socket in list(self._user_sockets):
            self._queue(self._user_sockets, socket, _Close(code))

    def fail_next(self, path: str, status: int, *, retry_after_s: int | None = None,
                  then_process: bool = False) -> None:
        """Answer the next request to `path` with HTTP `status` (503, 429, 418...).

        429 and 418 carry `Retry-After` when `retry_after_s` is given. `then_process` (503 only)
        handles the request fully first and then answers 503: "the order was actually placed".
        """
        self._faults.setdefault(path, []).append(_Fault(status, retry_after_s, then_process))

    def pending_faults(self, path: str) -> int:
        """Faults queued for `path` that no request has used yet."""
        return len(self._faults.get(path, []))

    def add_funding(self, symbol: str, amount: Decimal, time_ms: int) -> None:
        """Book a funding payment (moves the balance) and announce it on the user stream the
        way a cross-margin account sees it: ACCOUNT_UPDATE FUNDING_FEE, balances, no symbol."""
        self.income.append({"symbol": symbol, "incomeType": "FUNDING_FEE", "income": str(amount),
                            "asset": self.quote, "info": "", "time": time_ms,
                            "tranId": len(self.income) + 1, "tradeId": ""})
        self.balance += amount
        self._push_user(self._account_update("FUNDING_FEE", positions=[]))

    def open_orders_of(self, symbol: str | None = None) -> list[SimOrder]:
        return [o for o in self.orders.values()
                if o.status in ("NEW", "PARTIALLY_FILLED") and symbol in (None, o.symbol)]

    # -----------------------------------------------------------------------------------------
    # The venue

    def handle(self, request: httpx.Request) -> httpx.Response:
        query = request.url.query.decode("ascii")
        body = request.content.decode("ascii")
        params = dict(parse_qsl(body))
        params.update(parse_qsl(query))  # the query string wins (§1.3)
        path = request.url.path
        self.received.append(Received(request.method, path, query, body, params))
        faults = self._faults.get(path)
        fault = faults.pop(0) if faults else None
        if fault is not None and not fault.then_process:
            headers = {} if fault.retry_after_s is None else {
                "Retry-After": str(fault.retry_after_s)}
            if fault.status in (418, 429):
                return _error((fault.status, -1003, "Too many requests."), headers)
            return httpx.Response(fault.status, text="Service Unavailable", headers=headers)
        try:
            if path.startswith(V3_PREFIX):
                self._authenticate_v3(query, body, params)
            elif path in USER_STREAM_PATHS and "signature" not in params:
                if request.headers.get("X-MBX-APIKEY") != self._api_key:
                    raise _Reject(BAD_API_KEY)
            elif path not in PUBLIC_PATHS:
                self._authenticate(request, query, body, params)
            answer = self._route(request.method, path, params)
        except _Reject as rejection:
            return _error(rejection.error)
        if fault is not None:
            return _error(STATUS_UNKNOWN)
        return httpx.Response(200, json=answer)

    def _authenticate(self, request: httpx.Request, query: str, body: str,
                      params: dict[str, str]) -> None:
        if request.headers.get("X-MBX-APIKEY") != self._api_key:
            raise _Reject(BAD_API_KEY)
        signature = params.get("signature", "")
        # The signature is the last parameter, of the query or of the body (§1.3).
        suffix = f"signature={signature}"
        if body.endswith(suffix):
            body = body[: -len(suffix)].removesuffix("&")
        elif query.endswith(suffix):
            query = query[: -len(suffix)].removesuffix("&")
        else:
            raise _Reject(BAD_SIGNATURE)
        expected = hmac_signature(self._secret, hmac_payload(query, body))
        if signature.lower() != expected:
            raise _Reject(BAD_SIGNATURE)
        try:
            timestamp = int(params["timestamp"])
            recv_window = int(params.get("recvWindow", "5000"))
        except (KeyError, ValueError):
            raise _Reject(BAD_TIMESTAMP) from None
        now = self.clock_ms()
        if not (timestamp < now + 1000 and now - timestamp <= recv_window):
            raise _Reject(BAD_TIMESTAMP)

    def _authenticate_v3(self, query: str, body: str, params: dict[str, str]) -> None:
        """V3 API-wallet auth (§1.4), checked from the bytes as sent."""
        if self._wallet_user is None or self._wallet_signer is None:
            raise _Reject(BAD_SIGNATURE)  # no V3 account here: the venue cannot verify it
        if any(name not in params for name in ("user", "signer", "nonce", "signature")):
            raise _Reject(BAD_SIGNATURE)  # e.g. a V1 request sent to /fapi/v3
        if query and body:
            raise _Reject(BAD_SIGNATURE)  # ours: AF3 signs one parameter string, not two
        sent = body or query
        suffix = f"&signature={params['signature']}"
        if not sent.endswith(suffix):
            raise _Reject(BAD_SIGNATURE)  # the signature must be the last parameter
        msg = sent[: -len(suffix)]
        typed_data = {
            "types": {"EIP712Domain": [{"name": "name", "type": "string"},
                                       {"name": "version", "type": "string"},
                                       {"name": "chainId", "type": "uint256"},
                                       {"name": "verifyingContract", "type": "address"}],
                      "Message": [{"name": "msg", "type": "string"}]},
            "primaryType": "Message",
            "domain": {"name": "AsterSignTransaction", "version": "1", "chainId": V3_CHAIN_ID,
                       "verifyingContract": "0x" + "0" * 40},
            "message": {"msg": msg}}
        try:
            recovered = Account.recover_message(encode_typed_data(full_message=typed_data),
                                                signature=params["signature"])
        except Exception:  # malformed signature: eth-account raises several kinds
            raise _Reject(BAD_SIGNATURE) from None
        if (recovered.lower() != self._wallet_signer.lower()
                or params["signer"].lower() != self._wallet_signer.lower()):
            raise _Reject(BAD_SIGNATURE)
        if params["user"].lower() != self._wallet_user.lower():
            raise _Reject(BAD_API_KEY)
        try:
            nonce = int(params["nonce"])
        except ValueError:
            raise _Reject(NONCE_EXPIRED) from None
        if abs(nonce - self.clock_ms() * 1000) > V3_NONCE_WINDOW_US:
            raise _Reject(NONCE_EXPIRED)
        if nonce in self._nonces:
            raise _Reject(DUPLICATE_NONCE)
        if len(self._nonces) >= V3_NONCES_KEPT and nonce < min(self._nonces):
            raise _Reject(NONCE_EXPIRED)
        self._nonces = sorted([*self._nonces, nonce])[-V3_NONCES_KEPT:]

    def _route(self, method: str, path: str, params: dict[str, str]) -> Any:
        routes: dict[tuple[str, str], Callable[[dict[str, str]], Any]] = {
            ("GET", "/fapi/v1/time"): lambda _: {"serverTime": self.clock_ms()},
            ("GET", "/fapi/v1/exchangeInfo"): lambda _: self._exchange_info(),
            ("POST", "/fapi/v1/order"): self._new_order,
            ("POST", "/fapi/v1/batchOrders"): self._batch_orders,
            ("DELETE", "/fapi/v1/order"): self._cancel,
            ("GET", "/fapi/v1/order"): lambda p: self._find(p, UNKNOWN_ORDER).as_json(),
            ("GET", "/fapi/v1/openOrders"): lambda p: [
                o.as_json() for o in self.open_orders_of(p.get("symbol"))],
            ("DELETE", "/fapi/v1/allOpenOrders"): self._cancel_all,
            ("POST", "/fapi/v1/countdownCancelAll"): self._countdown,
            ("GET", "/fapi/v2/positionRisk"): lambda _: self._position_risk(),
            ("GET", "/fapi/v2/balance"): lambda _: self._balances(),
            ("GET", "/fapi/v1/userTrades"): self._user_trades,
            ("GET", "/fapi/v1/income"): self._income,
            ("POST", LISTEN_KEY_PATH): self._new_listen_key,
            ("PUT", LISTEN_KEY_PATH): self._keepalive_listen_key,
            ("DELETE", LISTEN_KEY_PATH): self._close_listen_key,
        }
        route = routes.get((method, path))
        if route is None and path.startswith(V3_PREFIX):  # same names as V1/V2 (§1.6)
            name = path.removeprefix(V3_PREFIX)
            route = (routes.get((method, f"/fapi/v1/{name}"))
                     or routes.get((method, f"/fapi/v2/{name}")))
        if route is None:
            raise _Reject(NOT_FOUND)
        return route(params)

    # -----------------------------------------------------------------------------------------
    # Endpoints

    def _exchange_info(self) -> dict[str, Any]:
        return {"symbols": [{
            "symbol": i.symbol, "status": "TRADING", "baseAsset": i.base, "quoteAsset": i.quote,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": str(i.tick_size), "maxPrice": "1000000",
                 "tickSize": str(i.tick_size)},
                {"filterType": "LOT_SIZE", "minQty": str(i.min_qty), "maxQty": "100000",
                 "stepSize": str(i.step_size)},
                {"filterType": "MIN_NOTIONAL", "notional": str(i.min_notional)}]}
            for i in self.instruments.values()]}

    def _instrument(self, params: dict[str, str]) -> Instrument:
        if "symbol" not in params:
            raise _Reject(MISSING_SYMBOL)
        instrument = self.instruments.get(params["symbol"])
        if instrument is None:
            raise _Reject(UNKNOWN_SYMBOL)
        return instrument

    def _batch_orders(self, params: dict[str, str]) -> list[dict[str, Any]]:
        """`POST /fapi/v1/batchOrders` (§1.6, §4.13): `batchOrders` is a JSON list of 1 to
        `MAX_BATCH_ORDERS` orders of string values, each placed as `POST /fapi/v1/order`
        places one; a rejected order is its own `{code, msg}` item; results in request order.
        The venue runs the orders concurrently; the sim runs them one after the other."""
        try:
            orders = json.loads(params.get("batchOrders", ""))
        except ValueError:
            raise _Reject(BAD_BATCH) from None
        if not (isinstance(orders, list) and 1 <= len(orders) <= MAX_BATCH_ORDERS
                and all(isinstance(o, dict) and all(isinstance(v, str) for v in o.values())
                        for o in orders)):
            raise _Reject(BAD_BATCH)
        results: list[dict[str, Any]] = []
        for order in orders:
            try:
                results.append(self._new_order(order))
            except _Reject as rejection:
                results.append({"code": rejection.error[1], "msg": rejection.error[2]})
        return results

    def _new_order(self, params: dict[str, str]) -> dict[str, Any]:
        instrument = self._instrument(params)
        symbol = instrument.symbol
        side, order_type = params["side"], params["type"]
        tif = params.get("timeInForce", "GTC")
        qty = Decimal(params["quantity"])
        reduce_only = params.get("reduceOnly") == "true"
        client_id = params.get("newClientOrderId") or f"sim-{self._next_order_id}"
        if any(o.client_id == client_id for o in self.open_orders_of(symbol)):
            raise _Reject(DUPLICATE_ORDER)
        if _decimals(qty) > _decimals(instrument.step_size):
            raise _Reject(BAD_PRECISION)
        if qty % instrument.step_size != 0:
            raise _Reject(QTY_STEP)
        bid, ask = self.books.get(symbol, (Decimal(0), Decimal(0)))
        touch = ask if side == "BUY" else bid
        if order_type == "LIMIT":
            price = Decimal(params["price"])
            if price % instrument.tick_size != 0:
                raise _Reject(PRICE_TICK)
            notional_price = price
            marketable = touch > 0 and (price >= ask if side == "BUY" else price <= bid)
        else:
            price = Decimal(0)
            if touch == 0:
                raise _Reject(NO_BOOK)
            notional_price, marketable = (bid + ask) / 2, True  # mark price stand-in
        if not reduce_only and qty * notional_price < instrument.min_notional:
            raise _Reject(MIN_NOTIONAL)
        position = self.positions[symbol].qty
        if reduce_only and (position == 0 or (position > 0) == (side == "BUY")
                            or qty > abs(position)):
            raise _Reject(REDUCE_ONLY)
        if tif == "GTX" and marketable:
            raise _Reject(POST_ONLY_CROSS)
        now = self.clock_ms()
        order = SimOrder(self._next_order_id, symbol, client_id, side, order_type, tif, qty,
                         price, reduce_only, time_ms=now, update_ms=now)
        self._next_order_id += 1
        self.orders[order.order_id] = order
        self._push_order(order, "NEW")
        if marketable:
            self._fill(order, touch)
        elif tif == "IOC":
            order.status = "EXPIRED"
            self._push_order(order, "EXPIRED")
        return order.as_json()

    def _fill(self, order: SimOrder, price: Decimal, *, maker: bool = False) -> None:
        qty = order.qty - order.executed
        order.executed = order.qty
        order.status = "FILLED"
        order.avg_price = price
        order.update_ms = self.clock_ms()
        fee = qty * price * (self.maker_fee_rate if maker else self.taker_fee_rate)
        self.balance -= fee
        signed = qty if order.side == "BUY" else -qty
        position = self.positions[order.symbol]
        if position.qty == 0 or (position.qty > 0) == (signed > 0):
            total = position.qty + signed
            position.entry = (position.entry * abs(position.qty) + price * qty) / abs(total)
            position.qty = total
        else:
            position.qty += signed
            if position.qty == 0:
                position.entry = Decimal(0)
        trades = self.trades[order.symbol]
        trade = {"buyer": order.side == "BUY", "commission": str(fee),
                 "commissionAsset": self.quote, "id": len(trades) + 1, "maker": maker,
                 "orderId": order.order_id, "price": str(price), "qty": str(qty),
                 "quoteQty": str(qty * price), "realizedPnl": "0", "side": order.side,
                 "positionSide": "BOTH", "symbol": order.symbol, "time": self.clock_ms()}
        trades.append(trade)
        self._push_order(order, "TRADE", trade=trade)
        self._push_user(self._account_update("ORDER", positions=[order.symbol]))

    def _find(self, params: dict[str, str], unknown: tuple[int, int, str]) -> SimOrder:
        symbol = self._instrument(params).symbol
        matches = [o for o in self.orders.values() if o.symbol == symbol and (
            str(o.order_id) == params.get("orderId")
            or o.client_id == params.get("origClientOrderId"))]
        if not matches:
            raise _Reject(unknown)
        return matches[-1]

    def _cancel(self, params: dict[str, str]) -> dict[str, Any]:
        order = self._find(params, CANCEL_UNKNOWN)
        if order.status not in ("NEW", "PARTIALLY_FILLED"):
            raise _Reject(CANCEL_UNKNOWN)
        order.status, order.update_ms = "CANCELED", self.clock_ms()
        self._push_order(order, "CANCELED")
        return order.as_json()

    def _cancel_all(self, params: dict[str, str]) -> dict[str, Any]:
        for order in self.open_orders_of(self._instrument(params).symbol):
            order.status, order.update_ms = "CANCELED", self.clock_ms()
            self._push_order(order, "CANCELED")
        return {"code": "200", "msg": "The operation of cancel all open order is done."}

    def _countdown(self, params: dict[str, str]) -> dict[str, Any]:
        symbol = self._instrument(params).symbol
        self.countdowns[symbol] = int(params["countdownTime"])
        return {"symbol": symbol, "countdownTime": params["countdownTime"]}

    def _position_risk(self) -> list[dict[str, Any]]:
        return [{"symbol": s, "positionAmt": str(p.qty), "entryPrice": str(p.entry),
                 "markPrice": "0", "unRealizedProfit": "0", "leverage": "10",
                 "marginType": "cross", "positionSide": "BOTH", "updateTime": self.clock_ms()}
                for s, p in self.positions.items()]

    def _balances(self) -> list[dict[str, Any]]:
        return [{"accountAlias": "sim", "asset": self.quote, "balance": str(self.balance),
                 "crossWalletBalance": str(self.balance), "crossUnPnl": "0",
                 "availableBalance": str(self.balance), "maxWithdrawAmount": str(self.balance),
                 "marginAvailable": True, "updateTime": self.clock_ms()}]

    def _user_trades(self, params: dict[str, str]) -> list[dict[str, Any]]:
        trades = self.trades[self._instrument(params).symbol]
        start = int(params.get("startTime", "0"))
        from_id = int(params.get("fromId", "0"))
        limit = int(params.get("limit", "500"))
        return [t for t in trades if t["time"] >= start and t["id"] >= from_id][:limit]

    def _income(self, params: dict[str, str]) -> list[dict[str, Any]]:
        start = int(params.get("startTime", "0"))
        kind = params.get("incomeType")
        return [i for i in self.income
                if i["time"] >= start and kind in (None, i["incomeType"])]


    # -----------------------------------------------------------------------------------------
    # Listen keys (§1.8)

    def _live_key(self) -> str | None:
        """The active key; one past its expiry on the sim's clock is expired first."""
        if self.listen_key is not None and self.clock_ms() >= self.listen_key_expiry_ms:
            self._expire_listen_key()
        return self.listen_key

    def _expire_listen_key(self) -> None:
        key = self.listen_key
        if key is None:
            return
        self.listen_key = None
        text = json.dumps({"e": "listenKeyExpired", "E": self.clock_ms(), "listenKey": key})
        for socket in list(self._user_sockets):
            if socket.listen_key == key:
                self._queue(self._user_sockets, socket, text)

    def _new_listen_key(self, _: dict[str, str]) -> dict[str, Any]:
        key = self._live_key()
        if key is None:
            key = secrets.token_hex(32)
            self.listen_key = key
            self.listen_keys_issued.append(key)
        self.listen_key_expiry_ms = self.clock_ms() + LISTEN_KEY_LIFETIME_MS
        return {"listenKey": key}

    def _keepalive_listen_key(self, _: dict[str, str]) -> dict[str, Any]:
        if self._live_key() is None:
            raise _Reject(INVALID_LISTEN_KEY)
        self.listen_key_expiry_ms = self.clock_ms() + LISTEN_KEY_LIFETIME_MS
        self.listen_key_extensions += 1
        for count, event in self._extension_waiters:
            if self.listen_key_extensions >= count:
                event.set()
        return {}

    def _close_listen_key(self, _: dict[str, str]) -> dict[str, Any]:
        key, self.listen_key = self.listen_key, None
        for socket in list(self._user_sockets):
            if socket.listen_key == key:
                self._queue(self._user_sockets, socket, _Close(1000))
        return {}

    # -----------------------------------------------------------------------------------------
    # Events

    def _push_order(self, order: SimOrder, execution: str, *,
                    trade: dict[str, Any] | None = None) -> None:
        """`ORDER_TRADE_UPDATE` for `order` as it is now (§1.8 sample shape)."""
        now = self.clock_ms()
        self._push_user({"e": "ORDER_TRADE_UPDATE", "E": now, "T": now, "o": {
            "s": order.symbol, "c": order.client_id, "S": order.side, "o": order.type,
            "f": order.tif, "q": str(order.qty), "p": str(order.price),
            "ap": str(order.avg_price), "sp": "0", "x": execution, "X": order.status,
            "i": order.order_id,
            "l": trade["qty"] if trade else "0", "z": str(order.executed),
            "L": trade["price"] if trade else "0", "N": self.quote,
            "n": trade["commission"] if trade else "0", "T": now,
            "t": trade["id"] if trade else 0, "b": "0", "a": "0",
            "m": trade["maker"] if trade else False, "R": order.reduce_only,
            "wt": "CONTRACT_PRICE", "ot": order.type, "ps": "BOTH", "cp": False, "rp": "0"}})

    def _account_update(self, reason: str, *, positions: list[str]) -> dict[str, Any]:
        now = self.clock_ms()
        return {"e": "ACCOUNT_UPDATE", "E": now, "T": now, "a": {
            "m": reason,
            "B": [{"a": self.quote, "wb": str(self.balance), "cw": str(self.balance),
                   "bc": "0"}],
            "P": [{"s": s, "pa": str(self.positions[s].qty), "ep": str(self.positions[s].entry),
                   "cr": "0", "up": "0", "mt": "cross", "iw": "0", "ps": "BOTH"}
                  for s in positions]}}

    def _push_user(self, event: dict[str, Any]) -> None:
        key = self._live_key()
        if key is None:
            return  # nobody can be listening: no more events until a valid key is used
        text = json.dumps(event)
        for socket in list(self._user_sockets):
            if socket.listen_key == key:
                self._queue(self._user_sockets, socket, text)

    def _book_ticker(self, symbol: str) -> dict[str, Any]:
        bid, ask = self.books[symbol]
        self._book_update_id += 1
        now = self.clock_ms()
        return {"e": "bookTicker", "u": self._book_update_id, "E": now, "T": now, "s": symbol,
                "b": str(bid), "B": str(self.touch_qty), "a": str(ask), "A": str(self.touch_qty)}

    def _mark_price(self, symbol: str) -> dict[str, Any]:
        now = self.clock_ms()
        default_next = (now // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS
        bid, ask = self.books.get(symbol, (Decimal(0), Decimal(0)))
        mark, rate, next_ms = self.marks.get(symbol, ((bid + ask) / 2, Decimal(0), default_next))
        return {"e": "markPriceUpdate", "E": now, "s": symbol, "p": str(mark), "i": str(mark),
                "P": str(mark), "r": str(rate), "T": next_ms}

    def _push_market(self, stream: str, data: dict[str, Any]) -> None:
        text = json.dumps({"stream": stream, "data": data})
        for socket in list(self._market_sockets):
            if stream in socket.streams:
                self._queue(self._market_sockets, socket, text)

    @staticmethod
    def _queue(sockets: list[_Socket], socket: _Socket, item: _Outgoing) -> None:
        try:
            socket.send.send_nowait(item)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            if socket in sockets:
                sockets.remove(socket)

    # -----------------------------------------------------------------------------------------
    # WebSocket side

    async def serve_websocket(self, request: trio_websocket.WebSocketRequest) -> None:
        """Handler for `trio_websocket.serve_websocket`: `/ws/<listenKey>` (user data; an
        unknown or expired key is refused with HTTP 400 at the handshake) and
        `/stream?streams=...` (combined market streams). Anything else is refused with 404."""
        path = request.path
        send, receive = trio.open_memory_channel[_Outgoing](math.inf)
        if path.startswith("/ws/"):
            key = path.removeprefix("/ws/")
            if key != self._live_key():
                await request.reject(400, body=json.dumps(
                    {"code": INVALID_LISTEN_KEY[1], "msg": INVALID_LISTEN_KEY[2]}).encode())
                return
            sockets, socket = self._user_sockets, _Socket(send, listen_key=key)
        elif path.startswith("/stream?streams="):
            names = frozenset(path.removeprefix("/stream?streams=").split("/"))
            sockets, socket = self._market_sockets, _Socket(send, streams=names)
            for symbol in self.instruments:
                lower = symbol.lower()
                if f"{lower}@bookTicker" in names and symbol in self.books:
                    send.send_nowait(json.dumps({"stream": f"{lower}@bookTicker",
                                                 "data": self._book_ticker(symbol)}))
                for name in (f"{lower}@markPrice@1s", f"{lower}@markPrice"):
                    if name in names:
                        send.send_nowait(json.dumps({"stream": name,
                                                     "data": self._mark_price(symbol)}))
        else:
            await request.reject(404)
            return
        # Registered before the handshake completes: nothing pushed after the client is
        # connected can be missed.
        sockets.append(socket)
        try:
            ws = await request.accept()
            await _pump(ws, receive)
        finally:
            if socket in sockets:
                sockets.remove(socket)
            send.close()


async def _pump(ws: WebSocketConnection, receive: trio.MemoryReceiveChannel[_Outgoing]) -> None:
    """Send queued frames until a `_Close` or the client goes; read (and drop) what it sends."""

    async def forward() -> None:
        try:
            async for item in receive:
                if isinstance(item, _Close):
                    await ws.aclose(code=item.code, reason="sim close")
                    return
                await ws.send_message(item)
        except ConnectionClosed:
            pass

    async def until_closed() -> None:
        try:
            while True:
                await ws.get_message()
        except ConnectionClosed:
            pass

    async with trio.open_nursery() as nursery:
        async def first_to_end(task: Callable[[], Any]) -> None:
            await task()
            nursery.cancel_scope.cancel()

        nursery.start_soon(first_to_end, forward)
        nursery.start_soon(first_to_end, until_closed)


@asynccontextmanager
async def open_aster_ws(sim: AsterSimulator) -> AsyncIterator[str]:
    """Serve `sim.serve_websocket` on 127.0.0.1 (port chosen by the OS) and yield the ws base
    URL, e.g. `ws://127.0.0.1:PORT`, to pass as `ws_url`; stops on exit."""
    async with trio.open_nursery() as nursery:
        server: WebSocketServer = await nursery.start(
            partial(trio_websocket.serve_websocket, sim.serve_websocket, "127.0.0.1", 0, None))
        yield f"ws://127.0.0.1:{server.port}"
        nursery.cancel_scope.cancel()


def _decimals(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _error(error: tuple[int, int, str],
           headers: dict[str, str] | None = None) -> httpx.Response:
    status, code, msg = error
    return httpx.Response(status, content=json.dumps({"code": code, "msg": msg}).encode(),
                          headers={"Content-Type": "application/json", **(headers or {})})
