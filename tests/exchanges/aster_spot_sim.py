"""An in-memory Aster spot venue (V1 HMAC, `/api/v1/...`) for adapter tests.

Built on the futures `AsterSimulator` (`aster_sim.py`): request recording, fault injection,
the `X-MBX-APIKEY` / HMAC / timestamp / recvWindow checks and the error helpers are its own,
reused as they are; the routes, the balances and the matching are spot's.

Spot rules simulated (Binance spot, which Aster spot clones):

- balances per asset with `free` and `locked`; a resting BUY locks quote (qty × price), a
  resting SELL locks base (qty); a cancel unlocks what is left;
- an order the account cannot pay for is refused with Binance's `-2010` "Account has
  insufficient balance for requested action.";
- a marketable LIMIT (GTC/IOC) or MARKET order fills completely at the touch as taker; a
  non-marketable IOC expires; a LIMIT GTC/GTX rests; a GTX (post-only, the spot doc's TIF)
  that would cross is refused with Binance's LIMIT_MAKER words, `-2010` "Order would
  immediately match and take." (no Aster doc says what spot answers);
- `set_book` fills resting orders it crosses, completely, at their own price, as maker;
- fees are charged in the asset received (Binance's default): `taker_fee_rate` or
  `maker_fee_rate` × the received amount;
- filters: tick (-4014), step (-1111 / -4023), min notional (-4164), the futures codes the spot
  doc's error list also carries.

`execution_reports` collects one Binance-spot `executionReport` event per order change, for
user-stream tests to push through `ws_sim`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import httpx
import trio

from exchanges import Instrument

from .aster_sim import (
    BAD_PRECISION,
    CANCEL_UNKNOWN,
    MIN_NOTIONAL,
    NO_BOOK,
    NOT_FOUND,
    PRICE_TICK,
    QTY_STEP,
    UNKNOWN_ORDER,
    AsterSimulator,
    SimOrder,
    _decimals,
    _Reject,
)

INSUFFICIENT_BALANCE = (400, -2010, "Account has insufficient balance for requested action.")
"""Binance spot's words for -2010 NEW_ORDER_REJECTED when funds are short."""
WOULD_TAKE = (400, -2010, "Order would immediately match and take.")
"""Binance spot's words for a LIMIT_MAKER that would cross; used here for a crossing GTX."""
DUPLICATE_ORDER = (400, -2010, "Duplicate order sent.")
INVALID_LISTEN_KEY = (400, -1125, "This listenKey does not exist.")

SPOT_PUBLIC_PATHS = frozenset({"/api/v1/time", "/api/v1/exchangeInfo"})
LISTEN_KEY = "spot-sim-listen-key"
_OPEN = ("NEW", "PARTIALLY_FILLED")


class AsterSpotSimulator(AsterSimulator):
    """A spot venue with one account (`api_key`, `secret`) holding `balances` (asset → free).

    `clock_ms` is the venue's clock. `received` records every request as sent;
    `fail_next(path, status)` injects faults (both inherited).
    """

    def __init__(self, *, api_key: str, secret: str, instruments: Sequence[Instrument],
                 clock_ms: Callable[[], int], balances: Mapping[str, Decimal],
                 taker_fee_rate: Decimal = Decimal("0.001"),
                 maker_fee_rate: Decimal = Decimal("0.0005")) -> None:
        super().__init__(api_key=api_key, secret=secret, instruments=instruments,
                         clock_ms=clock_ms, taker_fee_rate=taker_fee_rate)
        self.maker_fee_rate = maker_fee_rate
        self.free: dict[str, Decimal] = {a: Decimal(v) for a, v in balances.items()}
        self.locked: dict[str, Decimal] = {a: Decimal(0) for a in balances}
        self.execution_reports: list[dict[str, Any]] = []
        self.listen_key_active = False
        self.keepalives = 0
        """Successful PUTs of the listen key."""
        self._keepalive_waiters: list[tuple[int, trio.Event]] = []

    # -----------------------------------------------------------------------------------------
    # Test controls

    def set_book(self, symbol: str, bid: Decimal, ask: Decimal) -> None:
        """Move the touch; resting orders it crosses fill completely at their price, as maker."""
        # Not the futures set_book: its maker fills move positions, not balances.
        self.books[symbol] = (bid, ask)
        for order in sorted(self.open_orders_of(symbol), key=lambda o: o.order_id):
            if (order.side == "BUY" and 0 < ask <= order.price) or (
                    order.side == "SELL" and order.price <= bid):
                self._release(order)
                self._execute(order, order.price, maker=True)

    async def wait_keepalives(self, count: int) -> None:
        """Return once `count` keepalives in all have extended the listen key."""
        if self.keepalives >= count:
            return
        event = trio.Event()
        self._keepalive_waiters.append((count, event))
        await event.wait()

    def holding(self, asset: str) -> tuple[Decimal, Decimal]:
        """(free, locked) of `asset`."""
        return self.free.get(asset, Decimal(0)), self.locked.get(asset, Decimal(0))

    # -----------------------------------------------------------------------------------------
    # The venue (handle, faults and signature checks are the futures simulator's)

    def _authenticate(self, request: httpx.Request, query: str, body: str,
                      params: dict[str, str]) -> None:
        if request.url.path in SPOT_PUBLIC_PATHS:
            return
        super()._authenticate(request, query, body, params)

    def _route(self, method: str, path: str, params: dict[str, str]) -> Any:
        routes: dict[tuple[str, str], Callable[[dict[str, str]], Any]] = {
            ("GET", "/api/v1/time"): lambda _: {"serverTime": self.clock_ms()},
            ("GET", "/api/v1/exchangeInfo"): lambda _: self._spot_exchange_info(),
            ("POST", "/api/v1/order"): self._spot_new_order,
            ("DELETE", "/api/v1/order"): self._spot_cancel,
            ("GET", "/api/v1/order"): lambda p: self._as_json(self._find(p, UNKNOWN_ORDER)),
            ("GET", "/api/v1/openOrders"): lambda p: [
                self._as_json(o) for o in self.open_orders_of(p.get("symbol"))],
            ("GET", "/api/v1/account"): lambda _: self._account(),
            ("GET", "/api/v1/userTrades"): self._user_trades,
            ("POST", "/api/v1/listenKey"): lambda _: self._listen_key(),
            ("PUT", "/api/v1/listenKey"): self._keepalive,
        }
        route = routes.get((method, path))
        if route is None:
            raise _Reject(NOT_FOUND)
        return route(params)

    # -----------------------------------------------------------------------------------------
    # Endpoints

    def _spot_exchange_info(self) -> dict[str, Any]:
        return {"timezone": "UTC", "serverTime": self.clock_ms(), "symbols": [{
            "symbol": i.symbol, "status": "TRADING", "baseAsset": i.base, "quoteAsset": i.quote,
            "pricePrecision": 8, "quantityPrecision": 8,  # never tick/step: a trap for readers
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": str(i.tick_size), "maxPrice": "1000000",
                 "tickSize": str(i.tick_size)},
                {"filterType": "LOT_SIZE", "minQty": str(i.min_qty), "maxQty": "100000",
                 "stepSize": str(i.step_size)},
                {"filterType": "MIN_NOTIONAL", "minNotional": str(i.min_notional)}],
            "orderTypes": ["LIMIT", "MARKET"], "timeInForce": ["GTC", "IOC", "FOK", "GTX"]}
            for i in self.instruments.values()]}

    def _spot_new_order(self, params: dict[str, str]) -> dict[str, Any]:
        instrument = self._instrument(params)
        symbol = instrument.symbol
        side, order_type = params["side"], params["type"]
        tif = params.get("timeInForce", "GTC")
        qty = Decimal(params["quantity"])
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
            marketable = touch > 0 and (price >= ask if side == "BUY" else price <= bid)
            notional_price = price
        else:
            if touch == 0:
                raise _Reject(NO_BOOK)
            price, marketable, notional_price = Decimal(0), True, touch
        if qty * notional_price < instrument.min_notional:
            raise _Reject(MIN_NOTIONAL)
        if tif == "GTX" and marketable:
            raise _Reject(WOULD_TAKE)
        rests = not marketable and tif != "IOC"
        # Marketable orders pay at the touch; resting ones lock at their own price.
        pays, amount = ((instrument.quote, qty * (touch if marketable else price))
                        if side == "BUY" else (instrument.base, qty))
        if (marketable or rests) and self.free.get(pays, Decimal(0)) < amount:
            raise _Reject(INSUFFICIENT_BALANCE)
        now = self.clock_ms()
        order = SimOrder(self._next_order_id, symbol, client_id, side, order_type, tif, qty,
                         price, False, time_ms=now, update_ms=now)
        self._next_order_id += 1
        self.orders[order.order_id] = order
        self._report(order, "NEW")
        if marketable:
            self._execute(order, touch, maker=False)
        elif rests:
            self._move(pays, amount)
        else:
            order.status = "EXPIRED"
            self._report(order, "EXPIRED")
        return self._as_json(order)

    def _spot_cancel(self, params: dict[str, str]) -> dict[str, Any]:
        order = self._find(params, CANCEL_UNKNOWN)
        if order.status not in _OPEN:
            raise _Reject(CANCEL_UNKNOWN)
        self._release(order)
        order.status, order.update_ms = "CANCELED", self.clock_ms()
        self._report(order, "CANCELED")
        return self._as_json(order)

    def _account(self) -> dict[str, Any]:
        assets = sorted(set(self.free) | set(self.locked))
        return {"feeTier": 0, "canTrade": True, "canDeposit": True, "canWithdraw": True,
                "updateTime": self.clock_ms(),
                "balances": [{"asset": a, "free": str(self.free.get(a, Decimal(0))),
                              "locked": str(self.locked.get(a, Decimal(0)))} for a in assets]}

    def _listen_key(self) -> dict[str, Any]:
        self.listen_key_active = True
        return {"listenKey": LISTEN_KEY}

    def _keepalive(self, params: dict[str, str]) -> dict[str, Any]:
        if not self.listen_key_active or params.get("listenKey") != LISTEN_KEY:
            raise _Reject(INVALID_LISTEN_KEY)
        self.keepalives += 1
        for count, event in self._keepalive_waiters:
            if self.keepalives >= count:
                event.set()
        return {}

    # -----------------------------------------------------------------------------------------
    # Matching and balances

    def _move(self, asset: str, amount: Decimal) -> None:
        """Lock `amount` of `asset` (negative: unlock)."""
        self.free[asset] = self.free.get(asset, Decimal(0)) - amount
        self.locked[asset] = self.locked.get(asset, Decimal(0)) + amount

    def _release(self, order: SimOrder) -> None:
        """Unlock what a resting `order` still holds."""
        instrument = self.instruments[order.symbol]
        left = order.qty - order.executed
        if order.side == "BUY":
            self._move(instrument.quote, -left * order.price)
        else:
            self._move(instrument.base, -left)

    def _execute(self, order: SimOrder, price: Decimal, *, maker: bool) -> None:
        instrument = self.instruments[order.symbol]
        qty = order.qty - order.executed
        rate = self.maker_fee_rate if maker else self.taker_fee_rate
        if order.side == "BUY":
            fee, fee_asset = qty * rate, instrument.base
            self.free[instrument.quote] = self.free.get(instrument.quote, Decimal(0)) - qty * price
            self.free[instrument.base] = self.free.get(instrument.base, Decimal(0)) + qty - fee
        else:
            fee, fee_asset = qty * price * rate, instrument.quote
            self.free[instrument.base] = self.free.get(instrument.base, Decimal(0)) - qty
            self.free[instrument.quote] = (self.free.get(instrument.quote, Decimal(0))
                                           + qty * price - fee)
        self.locked.setdefault(instrument.base, Decimal(0))
        self.locked.setdefault(instrument.quote, Decimal(0))
        order.executed = order.qty
        order.status, order.update_ms = "FILLED", self.clock_ms()
        trades = self.trades[order.symbol]
        trade = {"symbol": order.symbol, "id": len(trades) + 1, "orderId": order.order_id,
                 "side": order.side, "price": str(price), "qty": str(qty),
                 "quoteQty": str(qty * price), "commission": str(fee),
                 "commissionAsset": fee_asset, "time": self.clock_ms(),
                 "counterpartyId": 19, "createUpdateId": None, "maker": maker,
                 "buyer": order.side == "BUY"}
        trades.append(trade)
        self._report(order, "TRADE", trade=trade)

    # -----------------------------------------------------------------------------------------
    # Wire shapes

    def _as_json(self, order: SimOrder) -> dict[str, Any]:
        """The spot doc's order shape (no reduceOnly, no positionSide)."""
        return {"orderId": order.order_id, "symbol": order.symbol, "status": order.status,
                "clientOrderId": order.client_id, "price": str(order.price),
                "avgPrice": "0", "origQty": str(order.qty), "executedQty": str(order.executed),
                "cumQuote": "0", "timeInForce": order.tif, "type": order.type,
                "side": order.side, "stopPrice": "0", "origType": order.type,
                "time": order.time_ms, "updateTime": order.update_ms}

    def _report(self, order: SimOrder, execution: str,
                trade: dict[str, Any] | None = None) -> None:
        now = self.clock_ms()
        self.execution_reports.append({
            "e": "executionReport", "E": now, "s": order.symbol, "c": order.client_id,
            "S": order.side, "o": order.type, "f": order.tif, "q": str(order.qty),
            "p": str(order.price), "ap": "0", "P": "0", "x": execution, "X": order.status,
            "i": order.order_id, "l": trade["qty"] if trade else "0",
            "z": str(order.executed), "L": trade["price"] if trade else "0",
            "n": trade["commission"] if trade else "0",
            "N": trade["commissionAsset"] if trade else "", "T": now,
            "t": trade["id"] if trade else -1, "m": bool(trade and trade["maker"]),
            "ot": order.type, "O": order.time_ms, "Z": "0", "Y": "0", "Q": "0"})
