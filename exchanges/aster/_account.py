"""`AccountClient` for Aster futures over REST (venues.md §1.6; `exchanges/_venue.py`).

Quantities and prices go out as exact decimal strings (`format(d, "f")`, never float) and come
back as Decimal. Venue ms timestamps become ns. Our client ids are sent as `newClientOrderId`
through `venue_client_id`; every `VenueOrder` and `Fill` carries our id where this object
knows it (it placed, cancelled or looked up the order), elsewhere the venue's id, which is ours
unless ours had to be hashed (see `_client_ids.py`).

`stream_user` is the user-data stream (listen key + WebSocket, §1.8), built in
`_user_stream.py`; its order updates and fills go through the same mapping as REST answers.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import ClassVar, Final, Generic, TypeVar

import msgspec

from .._exceptions import OrderOutcomeUnknownError, VenueError, VenueTransportError
from .._models import (
    Balance,
    Fill,
    FundingPayment,
    Liquidity,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
    UserEvent,
    VenueOrder,
)
from ._auth import VENUE
from ._client_ids import venue_client_id
from ._errors import error_from_response
from ._market import FUTURES_WS_URL
from ._rest import AsterRest
from ._user_stream import LISTEN_KEY_KEEPALIVE_S, LISTEN_KEY_RETRY_S, OrderUpdate, open_user_stream

MAX_BATCH: Final = 5
"""Orders per `POST /fapi/v1/batchOrders` (§1.6, §4.13)."""
MAX_PAGE: Final = 1000
"""`limit` maximum of `userTrades` and `income` (§1.6)."""
MAX_TRACKED_CLIENT_IDS: Final = 65536
"""Orders whose client id an account remembers (`_client_ids`, `_ours`); the least recently
used are forgotten first, and are then looked up (fills) or taken as the venue's id."""

_STATUSES: Final = {
    "NEW": OrderStatus.OPEN,
    "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELLED,
    "EXPIRED": OrderStatus.EXPIRED,
    "REJECTED": OrderStatus.REJECTED,
    # User-stream statuses (§1.8): liquidation / ADL orders the venue placed for us.
    "NEW_INSURANCE": OrderStatus.OPEN,
    "NEW_ADL": OrderStatus.OPEN,
}
_TIFS_OUT: Final = {TimeInForce.GTC: "GTC", TimeInForce.IOC: "IOC", TimeInForce.POST_ONLY: "GTX"}
# FOK is as immediate as IOC and HIDDEN rests like GTC: the nearest of our three.
_TIFS_IN: Final = {"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "GTX": TimeInForce.POST_ONLY,
                   "FOK": TimeInForce.IOC, "HIDDEN": TimeInForce.GTC}
_MS_TO_NS: Final = 1_000_000
_T = TypeVar("_T")
_K = TypeVar("_K")
_V = TypeVar("_V")


class LruMap(Generic[_K, _V]):
    """A dict bounded to `capacity` entries: storing or reading an entry makes it the newest;
    past `capacity` the oldest is dropped."""

    def __init__(self, capacity: int = MAX_TRACKED_CLIENT_IDS) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._items: OrderedDict[_K, _V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __setitem__(self, key: _K, value: _V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def get(self, key: _K) -> _V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value


# ---------------------------------------------------------------------------------------------
# Wire types (only the fields we read)


class _Order(msgspec.Struct):
    orderId: int
    symbol: str
    status: str
    clientOrderId: str
    side: str
    type: str
    origQty: Decimal
    executedQty: Decimal
    price: Decimal = Decimal(0)
    timeInForce: str = "GTC"
    reduceOnly: bool = False
    updateTime: int = 0
    time: int = 0


class _Position(msgspec.Struct):
    symbol: str
    positionAmt: Decimal
    entryPrice: Decimal


class _Balance(msgspec.Struct):
    asset: str
    balance: Decimal
    availableBalance: Decimal


class _Trade(msgspec.Struct):
    id: int
    orderId: int
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    commission: Decimal
    commissionAsset: str
    maker: bool
    time: int


class _Income(msgspec.Struct):
    symbol: str
    incomeType: str
    income: Decimal
    time: int
    tranId: int = 0


def _decoded(kind: type[_T], body: bytes, what: str) -> _T:
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        raise VenueTransportError(VENUE, f"{what}: unexpected answer: {exc}") from None
    except msgspec.DecodeError as exc:
        raise VenueTransportError(VENUE, f"{what}: undecodable answer: {exc}") from None


def _dec(value: Decimal) -> str:
    """Exact decimal text, never exponent notation (`1E+1` → `10`)."""
    return format(value, "f")


class AsterOrderAccount:
    """What Aster's futures and spot accounts share: Binance's order, trade and client-id
    shapes under a different path prefix, `api`. Subclasses add the endpoints that differ
    (positions, balances, cancel-all, the user stream).
    """

    api: ClassVar[str]
    """The signed endpoints' prefix: `/fapi/v1` (futures) or `/api/v1` (spot)."""

    keepalive_interval_s: float = LISTEN_KEY_KEEPALIVE_S
    """How often `stream_user` extends its listen key; tests shorten it per instance."""
    keepalive_retry_s: float = LISTEN_KEY_RETRY_S
    """How soon a failed keepalive is retried."""

    def __init__(self, rest: AsterRest, *, account: str, symbols: Sequence[str],
                 ws_url: str) -> None:
        self._rest = rest
        self._account = account
        self.symbols = list(symbols)
        self._ws_url = ws_url
        self._client_ids: LruMap[int, str] = LruMap()
        """Venue order id → our client id, for fills (userTrades names orders by id only)."""
        self._ours: LruMap[str, str] = LruMap()
        """Venue client id → ours, for ids we had to hash, filled before the order is sent: its
        first stream update can arrive before the answer that tells us its order id."""

    @property
    def venue(self) -> str:
        return VENUE

    @property
    def account(self) -> str:
        return self._account

    async def _trades(self, symbol: str, since_ms: int) -> list[_Trade]:
        params = [("symbol", symbol), ("startTime", str(since_ms)), ("limit", str(MAX_PAGE))]
        trades: list[_Trade] = []
        while True:
            body = await self._rest.signed("GET", f"{self.api}/userTrades", params)
            page = _decoded(list[_Trade], body, "userTrades")
            trades += page
            if len(page) < MAX_PAGE:
                return trades
            # fromId and startTime cannot be combined (Binance rule, spot doc): page on by id.
            params = [("symbol", symbol), ("fromId", str(page[-1].id + 1)),
                      ("limit", str(MAX_PAGE))]

    async def _fill(self, trade: _Trade) -> Fill:
        client_id = self._client_ids.get(trade.orderId)
        if client_id is None:
            body = await self._rest.signed("GET", f"{self.api}/order", [
                ("symbol", trade.symbol), ("orderId", str(trade.orderId))])
            client_id = self._order(_decoded(_Order, body, "query order"), None).client_id
        return Fill(venue=VENUE, account=self._account,
                    fill_id=_fill_id(trade.symbol, trade.id, trade.orderId), client_id=client_id,
                    venue_order_id=str(trade.orderId), symbol=trade.symbol,
                    side=_side(trade.side), qty=trade.qty, price=trade.price,
                    fee=trade.commission, fee_asset=trade.commissionAsset,
                    liquidity=Liquidity.MAKER if trade.maker else Liquidity.TAKER,
                    ts_venue_ns=trade.time * _MS_TO_NS)

    def _order(self, order: _Order, client_id: str | None) -> VenueOrder:
        status = _STATUSES.get(order.status)
        if status is None:
            raise VenueTransportError(VENUE, f"order {order.orderId}: unknown status "
                                             f"{order.status!r}")
        ours = client_id if client_id is not None else self._client_id(order.orderId,
                                                                       order.clientOrderId)
        self._client_ids[order.orderId] = ours
        # STOP_MARKET, TAKE_PROFIT_MARKET, TRAILING_STOP_MARKET execute as market orders.
        # Spot orders carry no reduceOnly: it decodes as False.
        order_type = OrderType.MARKET if order.type.endswith("MARKET") else OrderType.LIMIT
        return VenueOrder(
            venue=VENUE, account=self._account, client_id=ours,
            venue_order_id=str(order.orderId), symbol=order.symbol, side=_side(order.side),
            order_type=order_type, tif=_TIFS_IN.get(order.timeInForce, TimeInForce.GTC),
            qty=order.origQty,
            price=order.price if order_type is OrderType.LIMIT and order.price != 0 else None,
            filled_qty=order.executedQty, status=status, reduce_only=order.reduceOnly,
            ts_venue_ns=(order.updateTime or order.time) * _MS_TO_NS)


    def _client_id(self, order_id: int, venue_id: str) -> str:
        """Ours for a venue order: known by order id, else by the (hashed) id we sent, else
        the venue's, which is ours unless we hashed it in another process (or forgot it)."""
        known = self._client_ids.get(order_id)
        if known is not None:
            return known
        ours = self._ours.get(venue_id)
        return ours if ours is not None else venue_id


class AsterAccount(AsterOrderAccount):
    """One Aster futures account (one-way position mode) as an `AccountClient`.

    `symbols` are the symbols `fills()` scans: Aster's `userTrades` takes one symbol per call
    and there is no account-wide trade list. `ws_url` is the WebSocket base of the user stream.
    Error handling is `AsterRest`'s: rejections are `VenueRejectedError`, lost answers on
    placement `OrderOutcomeUnknownError`.
    """

    api: ClassVar[str] = "/fapi/v1"

    def __init__(self, rest: AsterRest, *, account: str, symbols: Sequence[str] = (),
                 ws_url: str = FUTURES_WS_URL) -> None:
        super().__init__(rest, account=account, symbols=symbols, ws_url=ws_url)

    # -----------------------------------------------------------------------------------------
    # Orders

    async def place_order(self, request: OrderRequest) -> VenueOrder:
        """`POST /fapi/v1/order` with `newOrderRespType=RESULT`, so the answer shows any
        immediate fill. LIMIT needs a price; MARKET ignores `tif` and `price`.

        Retrying with the same client id is safe only while the first attempt could still be
        open: Aster keeps `newClientOrderId` unique among *open* orders (§1.6), so after a lost
        answer reconcile with `get_order` first.
        """
        params = self._order_params(request)
        body = await self._rest.signed("POST", "/fapi/v1/order", params,
                                       client_id=request.client_id, is_order_placement=True)
        try:
            return self._order(_decoded(_Order, body, "new order"), request.client_id)
        except VenueTransportError as exc:  # accepted, but we cannot read what it became
            raise OrderOutcomeUnknownError(VENUE, request.client_id, str(exc)) from None

    async def place_orders(self, requests: Sequence[OrderRequest]) -> list[VenueOrder | VenueError]:
        """Several orders through `POST /fapi/v1/batchOrders` (§1.6, §4.13): one result per
        request, in request order, each the placed order or the error it got.

        Not part of `AccountClient` (the paper venue has no batch): an Aster capability.
        Each order's parameters are `place_order`'s (`_order_params`), sent as a compact JSON
        list (no spaces, §4.13) of string values in `batchOrders`, at most `MAX_BATCH` per call:
        longer sequences go out in chunks of `MAX_BATCH`, in order, one after the other.
        Raises ValueError, before anything is sent, for a request `place_order` would refuse.

        Results:
        - an order, or its own `{code, msg}` item as the typed error `place_order` would raise
          for that code (`error_from_response`); an item we cannot read is an unknown outcome;
        - a chunk whose answer is lost (no response, HTTP 503, an unreadable body) gives every
          order of it an `OrderOutcomeUnknownError`: reconcile with `get_order`;
        - a chunk refused as a whole (rate limit, auth, a bad batch) gives every order of it
          that one error.
        After a chunk failed as a whole the later chunks are not sent: their orders get a
        `VenueTransportError` ("not sent"), which is safe to retry with the same client ids.
        """
        chunks = [[(r, self._order_params(r)) for r in requests[i:i + MAX_BATCH]]
                  for i in range(0, len(requests), MAX_BATCH)]
        results: list[VenueOrder | VenueError] = []
        failed: VenueError | None = None
        for chunk in chunks:
            if failed is not None:
                results += [VenueTransportError(VENUE, f"{r.client_id} not sent: an earlier "
                                                       f"batch chunk failed ({failed})")
                            for r, _ in chunk]
                continue
            outcome = await self._place_chunk(chunk)
            if isinstance(outcome, VenueError):
                failed = outcome
                results += [_for_order(outcome, r.client_id) for r, _ in chunk]
            else:
                results += outcome
        return results

    async def cancel_order(self, symbol: str, client_id: str) -> VenueOrder:
        body = await self._rest.signed(
            "DELETE", "/fapi/v1/order",
            [("symbol", symbol), ("origClientOrderId", venue_client_id(client_id))],
            client_id=client_id)
        return self._order(_decoded(_Order, body, "cancel order"), client_id)

    async def cancel_all(self, symbol: str | None = None) -> list[VenueOrder]:
        """`DELETE /fapi/v1/allOpenOrders` per symbol (all symbols with open orders if None).

        The venue answers only "done", so the result is the orders that were open just before,
        marked CANCELLED; one that filled in between is reported cancelled here and filled by
        the user stream and `fills()`.
        """
        before = await self.open_orders(symbol)
        symbols = [symbol] if symbol is not None else sorted({o.symbol for o in before})
        for each in symbols:
            await self._rest.signed("DELETE", "/fapi/v1/allOpenOrders", [("symbol", each)])
        return [msgspec.structs.replace(o, status=OrderStatus.CANCELLED) for o in before]

    async def get_order(self, symbol: str, client_id: str) -> VenueOrder:
        """`GET /fapi/v1/order`; canceled or expired orders without fills vanish after 7 days."""
        body = await self._rest.signed(
            "GET", "/fapi/v1/order",
            [("symbol", symbol), ("origClientOrderId", venue_client_id(client_id))],
            client_id=client_id)
        return self._order(_decoded(_Order, body, "query order"), client_id)

    async def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        params = [] if symbol is None else [("symbol", symbol)]
        body = await self._rest.signed("GET", "/fapi/v1/openOrders", params)
        return [self._order(o, None) for o in _decoded(list[_Order], body, "open orders")]

    async def arm_cancel_all_after(self, symbol: str, countdown_ms: int) -> bool:
        """`POST /fapi/v1/countdownCancelAll`, per symbol (§4.14); 0 disarms."""
        await self._rest.signed("POST", "/fapi/v1/countdownCancelAll",
                                [("symbol", symbol), ("countdownTime", str(countdown_ms))])
        return True

    # -----------------------------------------------------------------------------------------
    # Account state

    async def positions(self) -> list[Position]:
        """Non-zero positions from `GET /fapi/v2/positionRisk`; `positionAmt` is signed."""
        body = await self._rest.signed("GET", "/fapi/v2/positionRisk")
        return [Position(venue=VENUE, account=self._account, symbol=p.symbol,
                         qty=p.positionAmt, entry_price=p.entryPrice)
                for p in _decoded(list[_Position], body, "positionRisk") if p.positionAmt != 0]

    async def balances(self) -> list[Balance]:
        """`GET /fapi/v2/balance`: wallet balance as total, `availableBalance` as available."""
        body = await self._rest.signed("GET", "/fapi/v2/balance")
        return [Balance(asset=b.asset, total=b.balance, available=b.availableBalance)
                for b in _decoded(list[_Balance], body, "balance")]

    async def fills(self, since_ns: int) -> list[Fill]:
        """`GET /fapi/v1/userTrades` for each of `symbols`, paged by `fromId`.

        Aster numbers trades per symbol and both sides of a trade share its id, so `fill_id`
        is `<symbol>:<id>:<orderId>` (two of our accounts can be the two sides). `commission`
        is taken as paid (positive). The client id comes from orders seen by this object, else
        from one `GET /fapi/v1/order` by `orderId`.
        """
        fills = []
        for symbol in self.symbols:
            for trade in await self._trades(symbol, since_ns // _MS_TO_NS):
                if trade.time * _MS_TO_NS >= since_ns:
                    fills.append(await self._fill(trade))
        fills.sort(key=lambda f: f.ts_venue_ns)
        return fills

    async def funding(self, since_ns: int) -> list[FundingPayment]:
        """`GET /fapi/v1/income?incomeType=FUNDING_FEE`.

        The income record carries only the amount: `rate`, `position_qty` and `mark_price` are
        not in it and are reported as 0.
        """
        params = [("incomeType", "FUNDING_FEE"), ("startTime", str(since_ns // _MS_TO_NS)),
                  ("limit", str(MAX_PAGE))]
        body = await self._rest.signed("GET", "/fapi/v1/income", params)
        payments = [FundingPayment(venue=VENUE, account=self._account, symbol=i.symbol,
                                   amount=i.income, rate=Decimal(0), position_qty=Decimal(0),
                                   mark_price=Decimal(0), ts_venue_ns=i.time * _MS_TO_NS)
                    for i in _decoded(list[_Income], body, "income")
                    if i.incomeType == "FUNDING_FEE" and i.time * _MS_TO_NS >= since_ns]
        payments.sort(key=lambda p: p.ts_venue_ns)
        return payments

    @asynccontextmanager
    async def stream_user(self) -> AsyncIterator[AsyncIterator[UserEvent]]:
        """Order updates, fills and funding payments from the user-data stream (§1.8).

        Gets the account's listen key, connects to `<ws_url>/ws/<key>` and extends the key
        every `keepalive_interval_s` until the context ends. Fills come before the order
        update of the same event, stale order updates are dropped, funding payments are read
        over REST when the stream announces one (details in `_user_stream.py`).

        The iterator ends on a normal close (1000/1001, e.g. the planned 24 h disconnect) and
        raises `VenueTransportError` on an abnormal close or an expired key; a failed connect
        or key request raises on entry. The caller reconnects and reconciles over REST.

        The listen key is deliberately not deleted on exit: the venue keeps one key per
        account and a POST returns the active one, so a DELETE would also end every other
        stream of this account (§4 pitfall 5). An unused key expires by itself after 60 min.
        """
        async with open_user_stream(self._rest, self._ws_url, order_of=self._stream_order,
                                    fill_of=self._stream_fill, funding=self.funding,
                                    keepalive_s=self.keepalive_interval_s,
                                    retry_s=self.keepalive_retry_s) as frames:
            yield frames

    # -----------------------------------------------------------------------------------------
    # Private

    def _order_params(self, request: OrderRequest) -> list[tuple[str, str]]:
        """`place_order`'s parameters for `request`, exact decimal strings, in the order sent;
        the mapping of a hashed client id is recorded here, before anything is sent.
        ValueError for a LIMIT order without a price."""
        params = [("symbol", request.symbol), ("side", request.side.name),
                  ("type", request.order_type.name)]
        if request.order_type is OrderType.LIMIT:
            if request.price is None:
                raise ValueError(f"LIMIT order {request.client_id} needs a price")
            params += [("timeInForce", _TIFS_OUT[request.tif]), ("quantity", _dec(request.qty)),
                       ("price", _dec(request.price))]
        else:
            params.append(("quantity", _dec(request.qty)))
        if request.reduce_only:
            params.append(("reduceOnly", "true"))
        sent_id = venue_client_id(request.client_id)
        if sent_id != request.client_id:
            self._ours[sent_id] = request.client_id
        params += [("newClientOrderId", sent_id), ("newOrderRespType", "RESULT")]
        return params

    async def _place_chunk(self, chunk: Sequence[tuple[OrderRequest, list[tuple[str, str]]]],
                           ) -> list[VenueOrder | VenueError] | VenueError:
        """One `batchOrders` call: a result per order, or the error of the whole call."""
        batch = msgspec.json.encode([dict(params) for _, params in chunk]).decode()
        ids = ",".join(r.client_id for r, _ in chunk)
        try:
            body = await self._rest.signed("POST", "/fapi/v1/batchOrders",
                                           [("batchOrders", batch)], client_id=ids,
                                           is_order_placement=True)
        except VenueError as exc:
            return exc
        try:
            items = msgspec.json.decode(body, type=list[msgspec.Raw])
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            return OrderOutcomeUnknownError(VENUE, ids, f"batch: unexpected answer: {exc}")
        if len(items) != len(chunk):
            return OrderOutcomeUnknownError(VENUE, ids, f"batch: {len(items)} results for "
                                                        f"{len(chunk)} orders")
        return [self._batch_item(item, request.client_id)
                for item, (request, _) in zip(items, chunk, strict=True)]

    def _batch_item(self, item: msgspec.Raw, client_id: str) -> VenueOrder | VenueError:
        """One item of a `batchOrders` answer: an order, or a `{code, msg}` translated as the
        venue's answer to a single order (HTTP 400 with that body) would be; an item that is
        neither leaves that order's outcome unknown."""
        try:
            fields = msgspec.json.decode(item, type=dict[str, object])
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            return OrderOutcomeUnknownError(VENUE, client_id, f"batch item unreadable: {exc}")
        if "code" in fields and "orderId" not in fields:
            error = error_from_response(400, bytes(item), {}, client_id=client_id,
                                        is_order_placement=True)
            if error is not None:
                return error
        try:
            return self._order(_decoded(_Order, bytes(item), "batch order"), client_id)
        except VenueTransportError as exc:  # placed, but we cannot read what it became
            return OrderOutcomeUnknownError(VENUE, client_id, str(exc))

    def _stream_order(self, update: OrderUpdate, event_ms: int) -> VenueOrder:
        """An `ORDER_TRADE_UPDATE` as the REST order it describes, through `_order`."""
        return self._order(_Order(
            orderId=update.i, symbol=update.s, status=update.X, clientOrderId=update.c,
            side=update.S, type=update.o, origQty=update.q, executedQty=update.z,
            price=update.p, timeInForce=update.f, reduceOnly=update.R,
            updateTime=update.T or event_ms), None)

    def _stream_fill(self, update: OrderUpdate) -> Fill:
        """The TRADE execution of an `ORDER_TRADE_UPDATE`, with the id `fills()` gives it.
        `n` is taken as paid (positive), like `commission`."""
        return Fill(venue=VENUE, account=self._account,
                    fill_id=_fill_id(update.s, update.t, update.i),
                    client_id=self._client_id(update.i, update.c),
                    venue_order_id=str(update.i), symbol=update.s, side=_side(update.S),
                    qty=update.l, price=update.L, fee=update.n, fee_asset=update.N,
                    liquidity=Liquidity.MAKER if update.m else Liquidity.TAKER,
                    ts_venue_ns=update.T * _MS_TO_NS)


def _for_order(error: VenueError, client_id: str) -> VenueError:
    """A whole chunk's error as one order's result: an unknown outcome names that order."""
    if isinstance(error, OrderOutcomeUnknownError):
        return OrderOutcomeUnknownError(VENUE, client_id, f"its batch call: {error}")
    return error


def _fill_id(symbol: str, trade_id: int, order_id: int) -> str:
    """`<symbol>:<tradeId>:<orderId>`, the same from REST and the stream, futures and spot.

    Aster numbers trades per symbol, and the buyer and the seller of one trade get the same
    trade id: the order id keeps them apart when both are our accounts (the journal keys
    fills by (venue, fill_id))."""
    return f"{symbol}:{trade_id}:{order_id}"


def _side(text: str) -> Side:
    if text == "BUY":
        return Side.BUY
    if text == "SELL":
        return Side.SELL
    raise VenueTransportError(VENUE, f"unknown side {text!r}")
