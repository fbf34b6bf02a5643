"""`AccountClient` for Aster spot over REST and the spot user stream (venues.md §1.2, §1.3,
§1.6 "Spot (`POST /api/v1/order`)", §1.8 last item, §1.9; `exchanges/_venue.py`).

Aster spot is a Binance-spot clone under `/api/v1/...` on `sapi.asterdex.com`, signed with the
same V1 HMAC as futures (§3.2), so `AsterRest` serves it unchanged with
`base_url=SPOT_BASE_URL`. Its answers have the futures shapes (the spot doc's order and
userTrades examples carry the same fields), so the futures wire types and mappings of
`_account.py` are reused (private names imported; that file is not duplicated).

How spot differs from futures, and what this adapter does about it:

- No positions: a spot account holds balances (`GET /api/v1/account`, `free` + `locked`), so
  `positions()` is empty, as in the paper venue; `total = free + locked`, `available = free`.
- No reduce-only: the spot order has no `reduceOnly` (§1.6), so a reduce-only request raises
  `ValueError` before anything is sent.
- Post-only is `type=LIMIT&timeInForce=GTX`: the spot doc lists TIF GTC/IOC/FOK/GTX and order
  types LIMIT/MARKET/STOP/TAKE_PROFIT/..., with no Binance `LIMIT_MAKER`.
- No funding (`funding()` is empty) and no dead man's switch: the spot doc has no
  `countdownCancelAll`, so `arm_cancel_all_after` returns False.
- No cancel-all endpoint in the spot doc (futures `allOpenOrders` and Binance spot
  `DELETE /api/v3/openOrders` are not listed), so `cancel_all` reads `GET /api/v1/openOrders`
  and cancels each order with `DELETE /api/v1/order` by `orderId`.
- Rejections: `AsterRest` translates errors as for futures. Binance spot gives two order
  rejections only as `-2010` words, which the shared table maps to INVALID; here they are
  refined: "insufficient balance" (and `-2018` BALANCE_NOT_SUFFICIENT) → INSUFFICIENT_MARGIN,
  "immediately match and take" (Binance's LIMIT_MAKER words) → POST_ONLY_WOULD_TAKE.

User stream (Binance spot shape, as the spot doc shows it): `POST /api/v1/listenKey`, then
`<ws_url>/ws/<listenKey>`; `PUT /api/v1/listenKey?listenKey=` keeps it alive. `executionReport`
events (flat, unlike futures' `ORDER_TRADE_UPDATE.o`) become a `Fill` (when `x == "TRADE"`)
followed by the `VenueOrder`; `listenKeyExpired` ends the stream with `VenueTransportError`;
`outboundAccountPosition` (balances) and anything else is skipped: balances are read over REST.
An unreadable frame that may carry a fill or order state (not JSON, a malformed
`executionReport` or `listenKeyExpired`, an unknown side or status) ends the stream with
`VenueTransportError` after any fill already read from it, as on futures (`_user_stream.py`).
Binance spot names a cancelled order by `C` (original client id) with `c` the cancel request's
id; the Aster spot doc shows only `c`, so `C` is used when present and non-empty, else `c`.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from functools import partial
from typing import ClassVar, Final

import msgspec
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from .._exceptions import (
    OrderOutcomeUnknownError,
    RejectReason,
    VenueError,
    VenueRejectedError,
    VenueTransportError,
)
from .._market_ws import closed_error, open_stream_websocket
from .._models import (
    Balance,
    Fill,
    FundingPayment,
    Liquidity,
    OrderRequest,
    OrderType,
    Position,
    UserEvent,
    VenueOrder,
)
from ._account import (
    _TIFS_OUT,
    AsterOrderAccount,
    _dec,
    _decoded,
    _fill_id,
    _Order,
    _side,
)
from ._auth import VENUE
from ._client_ids import venue_client_id
from ._rest import AsterRest
from ._spot_market import SPOT_WS_URL, spot_server_time_ms
from ._user_stream import (
    _OrderSequencer,
    _single,
    keep_listen_key_alive,
    unreadable_update,
)

SPOT_LISTEN_KEY_PATH: Final = "/api/v1/listenKey"
"""POST creates (or returns the active), PUT extends, DELETE closes; PUT/DELETE take
`listenKey` (spot doc)."""
WHAT: Final = "spot user stream"
_MS_TO_NS: Final = 1_000_000
_INSUFFICIENT_WORDS: Final = "insufficient balance"  # Binance -2010 words
_WOULD_TAKE_WORDS: Final = "immediately match and take"  # Binance LIMIT_MAKER -2010 words
_BALANCE_NOT_SUFFICIENT: Final = "-2018"
_NEW_ORDER_REJECTED: Final = "-2010"
_FATAL_KEEPALIVE_CODE: Final = "-1125"

logger = logging.getLogger(f"exchanges.{VENUE}")


# ---------------------------------------------------------------------------------------------
# Wire types (only the fields we read)


class _SpotBalance(msgspec.Struct):
    asset: str
    free: Decimal
    locked: Decimal


class _Account(msgspec.Struct):
    balances: list[_SpotBalance]


class _ListenKey(msgspec.Struct):
    listenKey: str


class _ExecutionReport(msgspec.Struct, tag_field="e", tag="executionReport"):
    E: int
    s: str
    c: str
    S: str
    o: str
    X: str
    x: str
    i: int
    q: Decimal
    z: Decimal
    T: int = 0
    p: Decimal = Decimal(0)
    f: str = "GTC"
    l: Decimal = Decimal(0)  # noqa: E741 (the venue's name)
    L: Decimal = Decimal(0)
    N: str = ""
    n: Decimal = Decimal(0)
    t: int = 0
    m: bool = False
    C: str = ""

    @property
    def client_order_id(self) -> str:
        return self.C or self.c

    def is_finite(self) -> bool:
        return all(d.is_finite() for d in (self.q, self.z, self.p, self.l, self.L, self.n))


class _ListenKeyExpired(msgspec.Struct, tag_field="e", tag="listenKeyExpired"):
    E: int = 0


class _Head(msgspec.Struct):
    e: str


_EVENT: Final = msgspec.json.Decoder(_ExecutionReport | _ListenKeyExpired)
_HEAD: Final = msgspec.json.Decoder(_Head)
_KNOWN: Final = frozenset({"executionReport", "listenKeyExpired"})


class _Malformed(Exception):
    """A frame we cannot read; the message is msgspec's reason (paths, never values). Every
    event we read may carry a fill or order state, so it ends the stream."""


def _decode(raw: str | bytes) -> _ExecutionReport | _ListenKeyExpired | None:
    try:
        event: _ExecutionReport | _ListenKeyExpired = _EVENT.decode(raw)
    except msgspec.DecodeError as exc:
        try:
            kind = _HEAD.decode(raw).e
        except msgspec.DecodeError:
            raise _Malformed(str(exc)) from None
        if kind not in _KNOWN:
            return None
        raise _Malformed(f"{kind}: {exc}") from None
    if isinstance(event, _ExecutionReport) and not event.is_finite():
        raise _Malformed("executionReport: non-finite number")
    return event


def _refined(exc: VenueRejectedError) -> VenueRejectedError:
    """Spot's `-2010` rejections, told apart by Binance's words (module docstring)."""
    text = str(exc)
    lowered = text.lower()
    if exc.code == _BALANCE_NOT_SUFFICIENT or (
            exc.code == _NEW_ORDER_REJECTED and _INSUFFICIENT_WORDS in lowered):
        reason = RejectReason.INSUFFICIENT_MARGIN
    elif exc.code == _NEW_ORDER_REJECTED and _WOULD_TAKE_WORDS in lowered:
        reason = RejectReason.POST_ONLY_WOULD_TAKE
    else:
        return exc
    words = text.removeprefix(f"{VENUE}: {exc.reason.value}: ").removesuffix(
        f" (code {exc.code})")
    return VenueRejectedError(VENUE, reason, words, exc.code)


# ---------------------------------------------------------------------------------------------
# The user-stream iterator


class SpotUserFrames:
    """The iterator `stream_user` yields: `UserEvent`s in arrival order, stale order updates
    dropped (the futures rule, `_user_stream._OrderSequencer`). A fill comes before the order
    update of the same event."""

    def __init__(self, ws: WebSocketConnection, account: AsterSpotAccount) -> None:
        self._ws = ws
        self._account = account
        self._sequencer = _OrderSequencer()
        self._ready: deque[UserEvent] = deque()
        self._failure: VenueError | None = None

    def __aiter__(self) -> SpotUserFrames:
        return self

    async def __anext__(self) -> UserEvent:
        while not self._ready:
            if self._failure is not None:
                raise self._failure
            try:
                raw = await self._ws.get_message()
            except ConnectionClosed as exc:
                if self._failure is not None:
                    raise self._failure from None
                error = closed_error(VENUE, exc, what=WHAT, ws=self._ws)
                if error is None:
                    raise StopAsyncIteration from None
                raise error from None
            try:
                event = _decode(raw)
            except _Malformed as exc:
                logger.error("%s %s: unreadable frame, reconnecting: %s", VENUE, WHAT, exc)
                raise VenueTransportError(VENUE, f"{WHAT}: unreadable frame: {exc}") from None
            if event is None:
                logger.debug("%s %s: skipped an event type we do not handle", VENUE, WHAT)
            elif isinstance(event, _ListenKeyExpired):
                raise VenueTransportError(VENUE, f"{WHAT}: listen key expired")
            else:
                self._execution(event)
        return self._ready.popleft()

    async def fail(self, error: VenueError) -> None:
        """End the stream with `error` (from the keepalive task): the consumer gets it next."""
        self._failure = error
        await self._ws.aclose()

    def _execution(self, event: _ExecutionReport) -> None:
        """Queue the fill and the order state; one we cannot map ends the stream after
        whatever was read (`_user_stream.unreadable_update`)."""
        try:
            fill = self._account._stream_fill(event) if event.x == "TRADE" else None
        except VenueTransportError as exc:
            raise unreadable_update(WHAT, "fill", exc) from None
        if fill is not None:
            self._ready.append(fill)
        try:
            order = self._account._stream_order(event)
        except VenueTransportError as exc:
            self._failure = unreadable_update(WHAT, "order update", exc)
            return
        if self._sequencer.admit(order, event.E):
            self._ready.append(order)


# ---------------------------------------------------------------------------------------------
# The client


class AsterSpotAccount(AsterOrderAccount):
    """One Aster spot account as an `AccountClient` (see the module docstring for how spot
    differs from futures).

    `rest` must point at `SPOT_BASE_URL` and carry credentials. `symbols` are the symbols
    `fills()` scans (one `userTrades` call per symbol, as on futures). `ws_url` is the spot
    WebSocket base. Call `sync_clock()` once before signed calls if the local clock may be
    off: `AsterRest.sync_clock()` asks the futures host.
    """

    api: ClassVar[str] = "/api/v1"

    def __init__(self, rest: AsterRest, *, account: str, symbols: Sequence[str] = (),
                 ws_url: str = SPOT_WS_URL) -> None:
        super().__init__(rest, account=account, symbols=symbols, ws_url=ws_url)

    async def sync_clock(self) -> int:
        """Measure spot server time − local time (`GET /api/v1/time`), store it as the auth's
        `offset_ms` and return it; exact to half the round trip, as `AsterRest.sync_clock`."""
        auth = self._rest.auth
        previous = auth.offset_ms if auth is not None else 0
        sent = self._rest.now_ms() - previous
        server = await spot_server_time_ms(self._rest)
        received = self._rest.now_ms() - previous
        offset = server - (sent + received) // 2
        if auth is not None:
            auth.offset_ms = offset
        return offset

    # -----------------------------------------------------------------------------------------
    # Orders

    async def place_order(self, request: OrderRequest) -> VenueOrder:
        """`POST /api/v1/order` with `newOrderRespType=RESULT`, so the answer shows any
        immediate fill. LIMIT needs a price (post-only goes as `timeInForce=GTX`); MARKET
        sends `quantity` (base asset, both sides) and ignores `tif` and `price`.

        Raises ValueError, before sending, for reduce-only (spot has none) or a LIMIT without
        a price. Same retry rule as futures: reconcile with `get_order` after a lost answer.
        """
        if request.reduce_only:
            raise ValueError(f"order {request.client_id}: reduce-only does not exist on spot")
        params = [("symbol", request.symbol), ("side", request.side.name),
                  ("type", request.order_type.name)]
        if request.order_type is OrderType.LIMIT:
            if request.price is None:
                raise ValueError(f"LIMIT order {request.client_id} needs a price")
            params += [("timeInForce", _TIFS_OUT[request.tif]), ("quantity", _dec(request.qty)),
                       ("price", _dec(request.price))]
        else:
            params.append(("quantity", _dec(request.qty)))
        sent_id = venue_client_id(request.client_id)
        if sent_id != request.client_id:
            self._ours[sent_id] = request.client_id
        params += [("newClientOrderId", sent_id), ("newOrderRespType", "RESULT")]
        try:
            body = await self._rest.signed("POST", "/api/v1/order", params,
                                           client_id=request.client_id, is_order_placement=True)
        except VenueRejectedError as exc:
            raise _refined(exc) from None
        try:
            return self._order(_decoded(_Order, body, "new order"), request.client_id)
        except VenueTransportError as exc:  # accepted, but we cannot read what it became
            raise OrderOutcomeUnknownError(VENUE, request.client_id, str(exc)) from None

    async def cancel_order(self, symbol: str, client_id: str) -> VenueOrder:
        body = await self._rest.signed(
            "DELETE", "/api/v1/order",
            [("symbol", symbol), ("origClientOrderId", venue_client_id(client_id))],
            client_id=client_id)
        return self._order(_decoded(_Order, body, "cancel order"), client_id)

    async def cancel_all(self, symbol: str | None = None) -> list[VenueOrder]:
        """Every open order (of `symbol`, or all) cancelled one by one by `orderId`: the spot
        doc has no cancel-all endpoint. An order that filled or was cancelled in between
        (`-2011`/`-2013` unknown order) is skipped; it is no longer open either way."""
        cancelled = []
        for order in await self.open_orders(symbol):
            try:
                body = await self._rest.signed(
                    "DELETE", "/api/v1/order",
                    [("symbol", order.symbol), ("orderId", order.venue_order_id)],
                    client_id=order.client_id)
            except VenueRejectedError as exc:
                if exc.reason is RejectReason.UNKNOWN_ORDER:
                    continue
                raise
            cancelled.append(self._order(_decoded(_Order, body, "cancel order"), None))
        return cancelled

    async def get_order(self, symbol: str, client_id: str) -> VenueOrder:
        """`GET /api/v1/order`; canceled or expired orders without fills vanish after 7 days."""
        body = await self._rest.signed(
            "GET", "/api/v1/order",
            [("symbol", symbol), ("origClientOrderId", venue_client_id(client_id))],
            client_id=client_id)
        return self._order(_decoded(_Order, body, "query order"), client_id)

    async def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        """`GET /api/v1/openOrders` (weight 1 with a symbol, 40 without)."""
        params = [] if symbol is None else [("symbol", symbol)]
        body = await self._rest.signed("GET", "/api/v1/openOrders", params)
        return [self._order(o, None) for o in _decoded(list[_Order], body, "open orders")]

    async def arm_cancel_all_after(self, symbol: str, countdown_ms: int) -> bool:
        """Always False: the spot API documents no `countdownCancelAll` (only futures has it)."""
        return False

    # -----------------------------------------------------------------------------------------
    # Account state

    async def positions(self) -> list[Position]:
        """Always empty: spot holds balances, not positions (as the paper venue's spot)."""
        return []

    async def balances(self) -> list[Balance]:
        """`GET /api/v1/account`: every asset, `total = free + locked`, `available = free`.
        A resting buy locks quote and a resting sell locks base, so both sides show here."""
        body = await self._rest.signed("GET", "/api/v1/account")
        return [Balance(asset=b.asset, total=b.free + b.locked, available=b.free)
                for b in _decoded(_Account, body, "account").balances]

    async def fills(self, since_ns: int) -> list[Fill]:
        """`GET /api/v1/userTrades` for each of `symbols`, paged by `fromId`.

        `fill_id` is `<symbol>:<id>:<orderId>` (`_account._fill_id`). `commission` is taken
        as paid (positive), in `commissionAsset` (on spot usually the asset received).
        """
        fills = []
        for symbol in self.symbols:
            for trade in await self._trades(symbol, since_ns // _MS_TO_NS):
                if trade.time * _MS_TO_NS >= since_ns:
                    fills.append(await self._fill(trade))
        fills.sort(key=lambda f: f.ts_venue_ns)
        return fills

    async def funding(self, since_ns: int) -> list[FundingPayment]:
        """Always empty: spot pays no funding."""
        return []

    @asynccontextmanager
    async def stream_user(self) -> AsyncIterator[AsyncIterator[UserEvent]]:
        """Order updates and fills from the spot user-data stream (module docstring).

        Gets the account's listen key, connects to `<ws_url>/ws/<key>` and extends the key
        every `keepalive_interval_s` until the context ends. The iterator ends on a normal
        close (1000/1001) and raises `VenueTransportError` on an abnormal close or an expired
        or refused key; a failed connect or key request raises on entry. The caller
        reconnects and reconciles over REST. The key is not deleted on exit: it is shared by
        every stream of the account (§4 pitfall 5) and expires by itself after 60 min.
        """
        key = await self._new_listen_key()
        url = f"{self._ws_url.rstrip('/')}/ws/{key}"
        async with open_stream_websocket(VENUE, url, what=WHAT) as ws:
            frames = SpotUserFrames(ws, self)
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(partial(
                        keep_listen_key_alive, partial(self._extend_listen_key, key),
                        frames.fail, interval_s=self.keepalive_interval_s,
                        retry_s=self.keepalive_retry_s, what=WHAT))
                    try:
                        yield frames
                    finally:
                        nursery.cancel_scope.cancel()
            except BaseExceptionGroup as group:
                # The consumer's own exception comes back wrapped by the nursery.
                single = _single(group)
                if single is None:
                    raise
                raise single from None

    # -----------------------------------------------------------------------------------------
    # Private

    async def _new_listen_key(self) -> str:
        # USER_STREAM needs only the API key; signed() is sent anyway (see AsterRest).
        body = await self._rest.signed("POST", SPOT_LISTEN_KEY_PATH)
        return _decoded(_ListenKey, body, SPOT_LISTEN_KEY_PATH).listenKey

    async def _extend_listen_key(self, key: str) -> None:
        await self._rest.signed("PUT", SPOT_LISTEN_KEY_PATH, [("listenKey", key)])

    def _stream_order(self, event: _ExecutionReport) -> VenueOrder:
        return self._order(_Order(
            orderId=event.i, symbol=event.s, status=event.X,
            clientOrderId=event.client_order_id, side=event.S, type=event.o,
            origQty=event.q, executedQty=event.z, price=event.p, timeInForce=event.f,
            updateTime=event.T or event.E), None)

    def _stream_fill(self, event: _ExecutionReport) -> Fill:
        """The TRADE execution of an `executionReport`, with the id `fills()` gives it."""
        return Fill(venue=VENUE, account=self._account, fill_id=_fill_id(event.s, event.t, event.i),
                    client_id=self._client_id(event.i, event.client_order_id),
                    venue_order_id=str(event.i), symbol=event.s, side=_side(event.S),
                    qty=event.l, price=event.L, fee=event.n, fee_asset=event.N,
                    liquidity=Liquidity.MAKER if event.m else Liquidity.TAKER,
                    ts_venue_ns=(event.T or event.E) * _MS_TO_NS)

