"""`BackpackAccount`: one Backpack account as an `AccountClient` (venues.md §2.1-2.4, §4).

Orders, positions, balances and history over signed REST; `stream_user` over the signed
WebSocket stream `account.orderUpdate` plus a funding poll (`_user_stream.py` has the wire and
the stream's rules; this module maps both REST and stream records, so they agree: a stream
fill's `fill_id` equals the one `fills()` gives for the same trade, and the journal dedupes).
Backpack speaks `Bid`/`Ask`, `Limit`/`Market`,
`GTC`/`IOC`/`FOK` plus a separate `postOnly` flag, and a uint32 `clientId`; our string client ids
go through a `ClientIdMap` owned by this object, so ids are mapped back only for orders this
process (or, without collisions, any process using the same hash) placed.

Traps:
- Prices and quantities are sent as `format(d, "f")` strings, never floats: the signed text must
  equal the sent text (§4 pitfall 2).
- `GET /api/v1/order` and `GET /api/v1/orders` list only resting orders (§2.4): a filled or
  cancelled order is not found by `get_order` (UNKNOWN_ORDER). Order history is not used yet.
- Cancel-all may answer 202, "accepted but not yet executed" (§2.4, §4 pitfall 9): then the
  open orders are listed until none is left, and the venue does not say which it cancelled.
- Backpack has no dead man's switch (§2.4): `arm_cancel_all_after` returns False.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from decimal import Decimal
from typing import Any, Final

import trio

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
from ._client_ids import ClientIdMap
from ._errors import VENUE, error_from_response
from ._market import WS_URL
from ._rest import BackpackRest
from ._user_stream import FUNDING_POLL_S, OrderUpdate, open_user_frames

HISTORY_PAGE_LIMIT: Final = 1000
"""§2.4: fills take `limit` ≤ 1000."""
MAX_HISTORY_PAGES: Final = 100
"""A bound on paging, so a venue that ignores `offset` cannot loop us forever."""
CANCEL_ALL_CONFIRM_ATTEMPTS: Final = 20
CANCEL_ALL_CONFIRM_DELAY_S: Final = 0.05
"""After a 202 the open orders are polled, the delay doubling up to 1 s."""

_SIDES: Final = {Side.BUY: "Bid", Side.SELL: "Ask"}
_SIDES_BACK: Final = {"Bid": Side.BUY, "Ask": Side.SELL}
_NS_PER_US: Final = 1_000
_STATUSES: Final = {
    "New": OrderStatus.OPEN,
    "PartiallyFilled": OrderStatus.PARTIALLY_FILLED,
    "Filled": OrderStatus.FILLED,
    "Cancelled": OrderStatus.CANCELLED,
    "Expired": OrderStatus.EXPIRED,
    # We place no trigger orders; a pending trigger is live, a failed one never became an order.
    "TriggerPending": OrderStatus.OPEN,
    "TriggerFailed": OrderStatus.REJECTED,
}
"""§2.1's statuses."""


class BackpackAccount:
    """`AccountClient` for one Backpack account over a signed `BackpackRest`.

    `account` is our name for it (journals, logs). `client_ids` maps our client ids to the
    venue's uint32 `clientId`; by default one is created and owned here. `ws_url` is where
    `stream_user` connects (§2.1); the subscription is signed with `rest`'s auth.
    """

    def __init__(self, rest: BackpackRest, account: str, *,
                 client_ids: ClientIdMap | None = None, ws_url: str = WS_URL) -> None:
        self._rest = rest
        self._account = account
        self.client_ids = client_ids if client_ids is not None else ClientIdMap()
        self._ws_url = ws_url

    @property
    def venue(self) -> str:
        return VENUE

    @property
    def account(self) -> str:
        return self._account

    # -----------------------------------------------------------------------------------------
    # Orders

    async def place_order(self, request: OrderRequest) -> VenueOrder:
        """`POST /api/v1/order`. Raises ValueError for a request Backpack cannot express
        (a limit without price, a post-only market order), before anything is sent."""
        body = self._order_body(request)
        wire = await self._rest.signed("POST", "/api/v1/order", body=body,
                                       client_id=request.client_id, is_order_placement=True)
        if not isinstance(wire, Mapping):
            raise OrderOutcomeUnknownError(VENUE, request.client_id, "answer is not an order")
        return self._order(wire, request.client_id)

    async def place_orders(self, requests: Sequence[OrderRequest],
                           ) -> list[VenueOrder | VenueError]:
        """Several orders in one `POST /api/v1/orders` (a JSON array, §2.4), signed by the
        batch rule (§2.2, §4 pitfall 8: `BackpackAuth` signs a JSON array that way): one result
        per request, in request order, each the placed order or the error it got.

        Not part of `AccountClient` (the paper venue has no batch): a Backpack capability.
        Each order's body is `place_order`'s (`_order_body`); ValueError, before anything is
        sent, for a request `place_order` would refuse. No batch size limit is documented,
        so all orders go in one call.

        Results:
        - an order, or an error item (`{"operation": "Err", "code", "message"}`, or a bare
          `{code, message}`) as the typed error `place_order` would raise for that code and
          words (`error_from_response`); an item we cannot read is an unknown outcome;
        - a lost answer (no response, HTTP 503, an unreadable body or one that is not a result
          per order) gives every order an `OrderOutcomeUnknownError`: reconcile by client id;
        - a call refused as a whole (rate limit, auth, a bad request) gives every order that
          one error.
        """
        if not requests:
            return []
        bodies = [self._order_body(request) for request in requests]
        ids = ",".join(request.client_id for request in requests)
        try:
            wire = await self._rest.signed("POST", "/api/v1/orders", body=bodies, client_id=ids,
                                           is_order_placement=True)
        except OrderOutcomeUnknownError as exc:
            return [OrderOutcomeUnknownError(VENUE, r.client_id, f"its batch call: {exc}")
                    for r in requests]
        except VenueError as exc:
            return [exc for _ in requests]
        if not isinstance(wire, list) or len(wire) != len(requests):
            return [OrderOutcomeUnknownError(VENUE, r.client_id,
                                             "batch answer is not one result per order")
                    for r in requests]
        return [self._batch_item(item, request.client_id)
                for item, request in zip(wire, requests, strict=True)]

    async def cancel_order(self, symbol: str, client_id: str) -> VenueOrder:
        """`DELETE /api/v1/order` by `clientId` (sending both ids is rejected, §2.4)."""
        body: dict[str, str | int | bool] = {
            "symbol": symbol, "clientId": self.client_ids.to_uint32(client_id)}
        wire = await self._rest.signed("DELETE", "/api/v1/order", body=body, client_id=client_id)
        return self._order(_mapping(wire, "cancel"), client_id)

    async def cancel_all(self, symbol: str | None = None) -> list[VenueOrder]:
        """`DELETE /api/v1/orders` per symbol (the venue needs one; with None, every symbol
        that has open orders). On 200 returns the cancelled orders; on 202 lists open orders
        until none is left and returns only what 200 answers listed (the venue names none).
        Raises VenueTransportError if orders stay open after the confirmation attempts.
        """
        if symbol is not None:
            symbols = [symbol]
        else:
            symbols = sorted({order.symbol for order in await self.open_orders()})
        cancelled: list[VenueOrder] = []
        for each in symbols:
            status, wire = await self._rest.signed_response(
                "DELETE", "/api/v1/orders", body={"symbol": each})
            if status == 202:
                await self._confirm_none_open(each)
            elif isinstance(wire, list):
                cancelled.extend(self._order(item) for item in wire if isinstance(item, Mapping))
        return cancelled

    async def get_order(self, symbol: str, client_id: str) -> VenueOrder:
        """`GET /api/v1/order`: resting orders only (§2.4); others raise UNKNOWN_ORDER."""
        wire = await self._rest.signed(
            "GET", "/api/v1/order",
            params={"clientId": self.client_ids.to_uint32(client_id), "symbol": symbol},
            client_id=client_id)
        return self._order(_mapping(wire, "order"), client_id)

    async def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        """`GET /api/v1/orders[?symbol=]`."""
        params = {"symbol": symbol} if symbol is not None else None
        wire = await self._rest.signed("GET", "/api/v1/orders", params=params)
        return [self._order(item) for item in _list(wire, "orders")]

    # -----------------------------------------------------------------------------------------
    # Account state

    async def positions(self) -> list[Position]:
        """`GET /api/v1/position`: `netQuantity` is signed (+long/−short)."""
        wire = await self._rest.signed("GET", "/api/v1/position")
        return [
            Position(venue=VENUE, account=self._account, symbol=str(item["symbol"]),
                     qty=_dec(item["netQuantity"]), entry_price=_dec(item.get("entryPrice", 0)))
            for item in _list(wire, "positions")
        ]

    async def balances(self) -> list[Balance]:
        """`GET /api/v1/capital`: asset → {available, locked, staked}; total is their sum."""
        wire = _mapping(await self._rest.signed("GET", "/api/v1/capital"), "capital")
        balances = []
        for asset, amounts in sorted(wire.items()):
            if not isinstance(amounts, Mapping):
                continue
            available = _dec(amounts.get("available", 0))
            total = available + _dec(amounts.get("locked", 0)) + _dec(amounts.get("staked", 0))
            balances.append(Balance(asset=str(asset), total=total, available=available))
        return balances

    async def fills(self, since_ns: int) -> list[Fill]:
        """`GET /wapi/v1/history/fills?from=<ms>`, paged; oldest first. `fill_id` is
        `<symbol>:<tradeId>:<orderId>` (trade ids are per market; the order id keeps both
        sides of a self-trade apart)."""
        items = await self._history("/wapi/v1/history/fills", {"from": since_ns // 1_000_000},
                                    since_ns=since_ns, ts_field="timestamp")
        fills = [self._fill(item) for item in items]
        return sorted((f for f in fills if f.ts_venue_ns >= since_ns),
                      key=lambda f: (f.ts_venue_ns, f.fill_id))

    async def funding(self, since_ns: int) -> list[FundingPayment]:
        """`GET /wapi/v1/history/funding`, paged; oldest first. The record has no position
        size or mark price, so `position_qty` and `mark_price` are 0."""
        items = await self._history("/wapi/v1/history/funding", {}, since_ns=since_ns,
                                    ts_field="intervalEndTimestamp")
        payments = [
            FundingPayment(
                venue=VENUE, account=self._account, symbol=str(item["symbol"]),
                amount=_dec(item["quantity"]), rate=_dec(item.get("fundingRate", 0)),
                position_qty=Decimal(0), mark_price=Decimal(0),
                ts_venue_ns=_ts_ns(item.get("intervalEndTimestamp")))
            for item in items
        ]
        return sorted((p for p in payments if p.ts_venue_ns >= since_ns),
                      key=lambda p: (p.ts_venue_ns, p.symbol))

    def stream_user(self, *, funding_poll_s: float = FUNDING_POLL_S,
                    ) -> AbstractAsyncContextManager[AsyncIterator[UserEvent]]:
        """This account's order updates, fills and funding payments until the context ends.

        Connects to `ws_url` and subscribes to `account.orderUpdate`, signed with the REST
        client's auth (`instruction=subscribe`, §2.5). Each `orderFill` yields the `Fill`
        first, then the order's new state; `orderAccepted`/`orderCancelled`/`orderExpired`/
        `orderModified` yield the `VenueOrder`; trigger events are skipped. An order's state
        never goes back (an update older than the newest yielded for that order is dropped),
        while fills are always yielded.

        Funding: the order stream carries none and Backpack has no funding stream, so the
        funding history is polled every `funding_poll_s` (while the consumer waits) and
        payments at or after the subscription's timestamp are yielded once each.

        Raises RuntimeError at once if `rest` has no auth. On entry a failed connect raises
        `VenueTransportError`; from the iterator a refused subscription raises
        `VenueAuthError` (bad key or signature) or `VenueTransportError` (anything else, such
        as an expired timestamp), as does any close other than 1000/1001, which end it.
        Unreadable frames are logged and skipped. The caller reconnects and reconciles by
        REST (`open_orders`, `fills`, `funding`) after every reconnect.
        """
        auth = self._rest.auth
        if auth is None:
            raise RuntimeError("stream_user needs credentials: BackpackRest has no auth")
        return open_user_frames(self._ws_url, auth.subscribe_signature(), self._stream_events,
                                self.funding, poll_s=funding_poll_s)

    async def arm_cancel_all_after(self, symbol: str, countdown_ms: int) -> bool:
        """Backpack has no dead man's switch (§2.4, §4 pitfall 14): always False."""
        return False

    # -----------------------------------------------------------------------------------------
    # Private helpers

    def _order_body(self, request: OrderRequest) -> dict[str, str | int | bool]:
        body: dict[str, str | int | bool] = {
            "symbol": request.symbol,
            "side": _SIDES[request.side],
            "quantity": format(request.qty, "f"),
            "clientId": self.client_ids.to_uint32(request.client_id),
        }
        if request.order_type is OrderType.LIMIT:
            if request.price is None:
                raise ValueError(f"limit order {request.client_id} has no price")
            body["orderType"] = "Limit"
            body["price"] = format(request.price, "f")
            if request.tif is TimeInForce.POST_ONLY:
                body["postOnly"] = True
            else:
                body["timeInForce"] = "IOC" if request.tif is TimeInForce.IOC else "GTC"
        else:
            if request.tif is TimeInForce.POST_ONLY:
                raise ValueError(f"market order {request.client_id} cannot be post-only")
            body["orderType"] = "Market"
        if request.reduce_only:
            body["reduceOnly"] = True  # futures only (§2.4); not sent at all otherwise
        return body

    def _batch_item(self, item: object, client_id: str) -> VenueOrder | VenueError:
        """One result of a batch: an order (tagged `"operation": "Ok"` or not), or an error
        item translated as the venue's HTTP 400 answer to that single order would be."""
        if not isinstance(item, Mapping):
            return OrderOutcomeUnknownError(VENUE, client_id, "batch result is not an object")
        if item.get("operation") == "Err" or ("code" in item and "id" not in item):
            error_body = {key: item[key] for key in ("code", "message") if key in item}
            error = error_from_response(400, json.dumps(error_body, default=str).encode(), {},
                                        client_id=client_id, is_order_placement=True)
            if error is not None:
                return error
        try:
            return self._order(item, client_id)
        except (VenueTransportError, KeyError, ValueError, ArithmeticError) as exc:
            return OrderOutcomeUnknownError(VENUE, client_id, f"batch result unreadable: "
                                                              f"{type(exc).__name__}: {exc}")

    def _our_id(self, wire: Mapping[str, Any], known: str | None) -> str:
        if known is not None:
            return known
        return self._client_id_of(wire.get("clientId"))

    def _client_id_of(self, number: object) -> str:
        """Our id for the venue's uint32, `backpack:<n>` for one we did not map, "" for none."""
        if number is None:
            return ""
        ours = self.client_ids.to_client_id(int(str(number)))
        return ours if ours is not None else f"backpack:{int(str(number))}"

    def _stream_events(self, update: OrderUpdate) -> tuple[Fill | None, VenueOrder | None]:
        """An `account.orderUpdate` event as (its fill, the order's state); KeyError for a
        side or status we do not know."""
        if not update.i:
            raise ValueError("order event without an order id")
        client_id = self._client_id_of(update.c)
        side = _SIDES_BACK[update.S]
        ts_ns = (update.T if update.T is not None else update.E) * _NS_PER_US
        fill = None
        if update.e == "orderFill":
            if update.t is None or update.l is None or update.L is None:
                raise ValueError("orderFill without trade id, quantity or price")
            fill = Fill(
                venue=VENUE, account=self._account,
                fill_id=_fill_id(update.s, update.t, update.i), client_id=client_id,
                venue_order_id=update.i, symbol=update.s, side=side, qty=update.l,
                price=update.L, fee=update.n if update.n is not None else Decimal(0),
                fee_asset=update.N, liquidity=Liquidity.MAKER if update.m else Liquidity.TAKER,
                ts_venue_ns=ts_ns)
        if update.e == "orderAccepted":
            status = OrderStatus.OPEN
        elif update.e == "orderCancelled":
            status = OrderStatus.CANCELLED
        elif update.e == "orderExpired":
            status = OrderStatus.EXPIRED
        elif update.e == "orderFill" and update.X not in ("PartiallyFilled", "Filled"):
            filled = update.q is not None and update.z >= update.q
            status = OrderStatus.FILLED if filled else OrderStatus.PARTIALLY_FILLED
        else:
            status = _STATUSES[update.X]
        order = VenueOrder(
            venue=VENUE, account=self._account, client_id=client_id, venue_order_id=update.i,
            symbol=update.s, side=side,
            order_type=OrderType.MARKET if update.o.upper() == "MARKET" else OrderType.LIMIT,
            tif=_tif(update.y, update.f), qty=update.q if update.q is not None else Decimal(0),
            price=update.p, filled_qty=update.z, status=status, reduce_only=update.r,
            ts_venue_ns=ts_ns, reason=update.R)
        return fill, order

    def _order(self, wire: Mapping[str, Any], client_id: str | None = None) -> VenueOrder:
        tif = _tif(wire.get("postOnly") is True, wire.get("timeInForce"))
        price = wire.get("price")
        status = _STATUSES.get(str(wire.get("status")))
        if status is None:
            raise VenueTransportError(VENUE, f"unknown order status {wire.get('status')!r}")
        return VenueOrder(
            venue=VENUE, account=self._account, client_id=self._our_id(wire, client_id),
            venue_order_id=str(wire.get("id", "")), symbol=str(wire["symbol"]),
            side=_SIDES_BACK[str(wire["side"])],
            order_type=OrderType.MARKET if wire.get("orderType") == "Market" else OrderType.LIMIT,
            tif=tif, qty=_dec(wire.get("quantity") or 0),
            price=None if price is None else _dec(price),
            filled_qty=_dec(wire.get("executedQuantity") or 0), status=status,
            reduce_only=wire.get("reduceOnly") is True,
            ts_venue_ns=_ts_ns(wire.get("createdAt")),
            reason=str(wire.get("expiryReason") or ""),
        )

    def _fill(self, item: Mapping[str, Any]) -> Fill:
        symbol = str(item["symbol"])
        return Fill(
            venue=VENUE, account=self._account,
            fill_id=_fill_id(symbol, item.get("tradeId"), item.get("orderId")),
            client_id=self._our_id(item, None), venue_order_id=str(item.get("orderId", "")),
            symbol=symbol, side=_SIDES_BACK[str(item["side"])], qty=_dec(item["quantity"]),
            price=_dec(item["price"]), fee=_dec(item.get("fee") or 0),
            fee_asset=str(item.get("feeSymbol", "")),
            liquidity=Liquidity.MAKER if item.get("isMaker") is True else Liquidity.TAKER,
            ts_venue_ns=_ts_ns(item.get("timestamp")),
        )

    async def _history(self, path: str, params: Mapping[str, int], *, since_ns: int,
                       ts_field: str) -> list[Mapping[str, Any]]:
        """Every page of a history endpoint, or fewer: once a page lists newest first and
        its last (oldest) record is before `since_ns`, later pages are older still and are not
        asked for. The funding history takes no `from` (§2.4 lists none), and the user stream
        polls it every minute: without this each poll would read the account's whole past."""
        items: list[Mapping[str, Any]] = []
        for page in range(MAX_HISTORY_PAGES):
            query = {**params, "limit": HISTORY_PAGE_LIMIT, "offset": page * HISTORY_PAGE_LIMIT}
            batch = _list(await self._rest.signed("GET", path, params=query), path)
            items.extend(batch)
            if len(batch) < HISTORY_PAGE_LIMIT:
                break
            first_ns, last_ns = _ts_ns(batch[0].get(ts_field)), _ts_ns(batch[-1].get(ts_field))
            if first_ns >= last_ns and last_ns < since_ns:
                break
        return items

    async def _confirm_none_open(self, symbol: str) -> None:
        delay = CANCEL_ALL_CONFIRM_DELAY_S
        for _ in range(CANCEL_ALL_CONFIRM_ATTEMPTS):
            if not await self.open_orders(symbol):
                return
            await trio.sleep(delay)
            delay = min(delay * 2, 1.0)
        raise VenueTransportError(VENUE, f"cancel-all {symbol} accepted, orders still open")


def _fill_id(symbol: str, trade_id: object, order_id: object) -> str:
    """`<symbol>:<tradeId>:<orderId>`, the same for a REST and a stream record of one fill."""
    return f"{symbol}:{trade_id}:{order_id}"


def _tif(post_only: bool, time_in_force: object) -> TimeInForce:
    if post_only:
        return TimeInForce.POST_ONLY
    if time_in_force in ("IOC", "FOK"):
        return TimeInForce.IOC  # FOK is not ours; both are immediate-or-nothing
    return TimeInForce.GTC


def _mapping(wire: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(wire, Mapping):
        raise VenueTransportError(VENUE, f"{what}: expected a JSON object")
    return wire


def _list(wire: Any, what: str) -> list[Mapping[str, Any]]:
    if wire is None:
        return []
    if not isinstance(wire, Sequence) or isinstance(wire, str):
        raise VenueTransportError(VENUE, f"{what}: expected a JSON array")
    return [item for item in wire if isinstance(item, Mapping)]


def _dec(value: object) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _ts_ns(value: object) -> int:
    """REST timestamps are ms (§2.1), as a number or digits; history records carry ISO 8601
    date-times (UTC when no zone is given). Missing → 0."""
    if value is None or value == "":
        return 0
    if isinstance(value, int | Decimal) or (isinstance(value, str) and value.isdigit()):
        return int(value) * 1_000_000
    parsed = datetime.datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    delta = parsed - datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
