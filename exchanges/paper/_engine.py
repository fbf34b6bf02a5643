"""The paper venue's matching engine: our orders against a synthetic book. Pure: no trio, no I/O.

Rules, as on the live venues:
- Filters first: unknown symbol, price off the tick, qty off the step or under the minimum,
  notional under the minimum (reduce-only is exempt), a client id used before (open or not),
  reduce-only that would increase, margin beyond `max_leverage`. Each refusal raises
  VenueRejectedError with its reason and changes nothing.
- Post-only that would cross the book is rejected. IOC and market orders walk the book and
  expire the rest. A GTC limit takes what crosses and rests the remainder.
- A resting order fills as maker, at its own price, when the market trades through it (a trade
  strictly beyond its price) or when the book moves across it.
- Reduce-only orders never flip a position: fills are capped at the open position, and what
  cannot fill any more expires.

Every change is an effect applied through the ledger and handed to `on_effect` (the venue
persists it, then tells the user streams), in the order the venue would report it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

import msgspec

from .._accounting import ZERO
from .._exceptions import RejectReason, VenueRejectedError
from .._models import (
    Fill,
    FundingPayment,
    Instrument,
    Liquidity,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    VenueOrder,
)
from ._ledger import Deposit, Effect, Ledger

E = TypeVar("E", Deposit, VenueOrder, Fill, FundingPayment)


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    maker_rate: Decimal = Decimal("0.0001")  # 0.01 %
    taker_rate: Decimal = Decimal("0.00035")  # 0.035 %


@dataclass(slots=True)
class Level:
    price: Decimal
    qty: Decimal


@dataclass(slots=True)
class Book:
    """Best first on both sides. Our taking consumes it until the next market update."""

    bids: list[Level]
    asks: list[Level]

    @property
    def best_bid(self) -> Decimal | None:
        return self.bids[0].price if self.bids else None

    @property
    def best_ask(self) -> Decimal | None:
        return self.asks[0].price if self.asks else None

    @property
    def mid(self) -> Decimal | None:
        if not self.bids or not self.asks:
            return None
        return (self.bids[0].price + self.asks[0].price) / 2


class MatchingEngine:
    def __init__(
        self,
        venue: str,
        instruments: Sequence[Instrument],
        ledger: Ledger,
        *,
        fees: FeeSchedule = FeeSchedule(),
        max_leverage: Decimal = Decimal(10),
        on_effect: Callable[[Effect], None] = lambda effect: None,
    ) -> None:
        self.venue = venue
        self.instruments = {i.symbol: i for i in instruments}
        self.ledger = ledger
        self.fees = fees
        self.max_leverage = max_leverage
        self.on_effect = on_effect
        self.books: dict[str, Book] = {symbol: Book([], []) for symbol in self.instruments}
        self._order_seq = 0
        self._fill_seq = len(ledger.fills)
        self.orders_received = 0

    # ---- accounts ------------------------------------------------------------------------

    def deposit(self, account: str, asset: str, amount: Decimal, now_ns: int) -> None:
        self._emit(Deposit(account=account, asset=asset, amount=amount, ts_venue_ns=now_ns))

    def pay_funding(self, symbol: str, mark: Decimal, rate: Decimal, now_ns: int) -> None:
        """Longs pay shorts when the rate is positive: amount = -qty × mark × rate."""
        instrument = self.instruments.get(symbol)
        if instrument is None or instrument.is_spot:
            return  # spot pays no funding
        for name, account in self.ledger.accounts.items():
            position = account.positions.get(symbol)
            if position is None or position.qty == 0:
                continue
            self._emit(FundingPayment(
                venue=self.venue, account=name, symbol=symbol,
                amount=-position.qty * mark * rate, rate=rate, position_qty=position.qty,
                mark_price=mark, ts_venue_ns=now_ns,
            ))

    # ---- order entry ---------------------------------------------------------------------

    def place(self, account: str, request: OrderRequest, now_ns: int) -> VenueOrder:
        self.orders_received += 1
        instrument = self.instruments.get(request.symbol)
        if instrument is None:
            raise self._reject(RejectReason.UNKNOWN_SYMBOL, f"no symbol {request.symbol}")
        book = self.books[request.symbol]
        self._check(account, request, instrument, book)

        self._order_seq += 1
        order = self._emit(VenueOrder(
            venue=self.venue, account=account, client_id=request.client_id,
            venue_order_id=f"{now_ns}-{self._order_seq}", symbol=request.symbol,
            side=request.side, order_type=request.order_type, tif=request.tif, qty=request.qty,
            price=request.price, filled_qty=ZERO, status=OrderStatus.OPEN,
            reduce_only=request.reduce_only, ts_venue_ns=now_ns,
        ))
        filled = self._take(order, book, now_ns)
        remaining = order.qty - filled
        if remaining == 0:
            status = OrderStatus.FILLED
        elif order.order_type is OrderType.LIMIT and order.tif is not TimeInForce.IOC:
            status = OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.OPEN
        else:
            status = OrderStatus.EXPIRED
        if status is OrderStatus.OPEN:
            return order
        return self._emit(msgspec.structs.replace(
            order, filled_qty=filled, status=status, ts_venue_ns=now_ns,
            reason="immediate or cancel" if status is OrderStatus.EXPIRED else "",
        ))

    def cancel(self, account: str, client_id: str, now_ns: int) -> VenueOrder:
        order = self.ledger.account(account).open_orders.get(client_id)
        if order is None:
            raise self._reject(RejectReason.UNKNOWN_ORDER, f"no open order {client_id}")
        return self._emit(msgspec.structs.replace(
            order, status=OrderStatus.CANCELLED, ts_venue_ns=now_ns, reason="cancelled"
        ))

    def cancel_all(self, account: str, symbol: str | None, now_ns: int) -> list[VenueOrder]:
        return [
            self.cancel(account, order.client_id, now_ns)
            for order in self.ledger.open_orders(account, symbol)
        ]

    def _check(
        self, account: str, request: OrderRequest, instrument: Instrument, book: Book
    ) -> None:
        if request.qty <= 0 or request.qty % instrument.step_size != 0:
            raise self._reject(RejectReason.QTY_STEP,
                               f"qty {request.qty} is not a multiple of {instrument.step_size}")
        if request.qty < instrument.min_qty:
            raise self._reject(RejectReason.MIN_QTY,
                               f"qty {request.qty} under minimum {instrument.min_qty}")
        if request.order_type is OrderType.LIMIT:
            if request.price is None or request.price <= 0:
                raise self._reject(RejectReason.INVALID, "a limit order needs a positive price")
            if request.price % instrument.tick_size != 0:
                raise self._reject(RejectReason.PRICE_TICK, f"price {request.price} is not a "
                                   f"multiple of {instrument.tick_size}")
        reference = request.price if request.order_type is OrderType.LIMIT else book.mid
        if reference is None:
            raise self._reject(RejectReason.INVALID, f"no market in {request.symbol}")
        if not request.reduce_only and reference * request.qty < instrument.min_notional:
            raise self._reject(RejectReason.MIN_NOTIONAL, f"notional under "
                               f"{instrument.min_notional}")
        if self.ledger.used(account, request.client_id):
            raise self._reject(RejectReason.DUPLICATE_CLIENT_ID,
                               f"client id {request.client_id} was used already")
        if instrument.is_spot:
            if request.reduce_only:
                raise self._reject(RejectReason.INVALID, "reduce-only is for futures, not spot")
            self._check_spot_funds(account, request, instrument, reference)
        elif request.reduce_only:
            if self._reducible(account, request.symbol, request.side) == 0:
                raise self._reject(RejectReason.REDUCE_ONLY_WOULD_INCREASE,
                                   "reduce-only order would open or increase a position")
        else:
            self._check_margin(account, reference * request.qty)
        if request.tif is TimeInForce.POST_ONLY and self._crosses(request, book):
            raise self._reject(RejectReason.POST_ONLY_WOULD_TAKE,
                               "post-only order would take liquidity")

    def _check_spot_funds(
        self, account_name: str, request: OrderRequest, instrument: Instrument,
        reference: Decimal,
    ) -> None:
        """Spot buys spend the quote asset, sells the base; what open orders lock is spent."""
        account = self.ledger.account(account_name)
        if request.side is Side.BUY:
            asset = instrument.quote
            needed = reference * request.qty * (1 + self.fees.taker_rate)
            locked = sum(
                ((o.qty - o.filled_qty) * (o.price or reference)
                 for o in account.open_orders.values()
                 if o.side is Side.BUY and self._quote_of(o.symbol) == asset),
                ZERO,
            )
        else:
            asset = instrument.base
            needed = request.qty
            locked = sum(
                (o.qty - o.filled_qty for o in account.open_orders.values()
                 if o.side is Side.SELL and o.symbol == instrument.symbol),
                ZERO,
            )
        free = account.balances.get(asset, ZERO) - locked
        if needed > free:
            raise self._reject(RejectReason.INSUFFICIENT_MARGIN,
                               f"needs {needed:.8f} {asset}, {free:.8f} free")

    def _quote_of(self, symbol: str) -> str | None:
        instrument = self.instruments.get(symbol)
        return None if instrument is None else instrument.quote

    def _check_margin(self, account_name: str, new_notional: Decimal) -> None:
        account = self.ledger.account(account_name)
        equity = account.balances.get(self.ledger.quote_asset, ZERO)
        exposure = new_notional
        for symbol, position in account.positions.items():
            if symbol in self.ledger.spot_assets:
                continue  # spot inventory is paid for, not margined
            mid = self.books[symbol].mid if symbol in self.books else None
            if position.qty and mid is not None:
                equity += position.qty * (mid - position.entry_price)
                exposure += abs(position.qty) * mid
        for order in account.open_orders.values():
            if order.price is not None and order.symbol not in self.ledger.spot_assets:
                exposure += (order.qty - order.filled_qty) * order.price
        if exposure > equity * self.max_leverage:
            raise self._reject(RejectReason.INSUFFICIENT_MARGIN,
                               f"exposure {exposure:.2f} beyond {self.max_leverage}x equity")

    @staticmethod
    def _crosses(request: OrderRequest, book: Book) -> bool:
        price = request.price
        if price is None:
            return True
        if request.side is Side.BUY:
            return book.best_ask is not None and price >= book.best_ask
        return book.best_bid is not None and price <= book.best_bid

    # ---- taking liquidity ----------------------------------------------------------------

    def _take(self, order: VenueOrder, book: Book, now_ns: int) -> Decimal:
        levels = book.asks if order.side is Side.BUY else book.bids
        limit = order.price if order.order_type is OrderType.LIMIT else None
        remaining = order.qty
        if order.reduce_only:
            remaining = min(remaining, self._reducible(order.account, order.symbol, order.side))
        filled = ZERO
        while remaining > 0 and levels:
            level = levels[0]
            if limit is not None and (
                level.price > limit if order.side is Side.BUY else level.price < limit
            ):
                break
            qty = min(remaining, level.qty)
            self._fill(order, qty, level.price, Liquidity.TAKER, now_ns)
            filled += qty
            remaining -= qty
            level.qty -= qty
            if level.qty == 0:
                levels.pop(0)
        return filled

    # ---- the market moving through resting orders -----------------------------------------

    def on_book(self, symbol: str, bids: list[Level], asks: list[Level], now_ns: int) -> None:
        """A new synthetic book: resting orders it crosses fill as makers at their price."""
        book = self.books[symbol]
        book.bids, book.asks = bids, asks
        best_bid, best_ask = book.best_bid, book.best_ask
        for order, price in self._resting(symbol):
            crossed = (
                (order.side is Side.BUY and best_ask is not None and price >= best_ask)
                or (order.side is Side.SELL and best_bid is not None and price <= best_bid)
            )
            if crossed:
                self._fill_resting(order, order.qty - order.filled_qty, now_ns)

    def on_trade(
        self, symbol: str, price: Decimal, qty: Decimal, aggressor: Side, now_ns: int
    ) -> None:
        """A market trade: resting orders it traded through fill, best price first."""
        resting_side = aggressor.opposite
        candidates = [
            (order, limit) for order, limit in self._resting(symbol)
            if order.side is resting_side
            and (limit > price if resting_side is Side.BUY else limit < price)
        ]
        # Price priority, then time.
        candidates.sort(key=lambda pair: (-pair[1] if resting_side is Side.BUY else pair[1],
                                          pair[0].ts_venue_ns))
        left = qty
        for order, _ in candidates:
            if left <= 0:
                break
            left -= self._fill_resting(order, min(left, order.qty - order.filled_qty), now_ns)

    def _resting(self, symbol: str) -> Iterable[tuple[VenueOrder, Decimal]]:
        # A snapshot: fills change the dicts while we walk.
        return [
            (order, order.price)
            for account in self.ledger.accounts.values()
            for order in list(account.open_orders.values())
            if order.symbol == symbol and order.price is not None
        ]

    def _fill_resting(self, order: VenueOrder, qty: Decimal, now_ns: int) -> Decimal:
        assert order.price is not None
        if order.reduce_only:
            qty = min(qty, self._reducible(order.account, order.symbol, order.side))
            if qty == 0:
                self._emit(msgspec.structs.replace(
                    order, status=OrderStatus.EXPIRED, ts_venue_ns=now_ns,
                    reason="reduce-only: no position left to reduce",
                ))
                return ZERO
        self._fill(order, qty, order.price, Liquidity.MAKER, now_ns)
        filled = order.filled_qty + qty
        status = OrderStatus.FILLED if filled == order.qty else OrderStatus.PARTIALLY_FILLED
        self._emit(msgspec.structs.replace(
            order, filled_qty=filled, status=status, ts_venue_ns=now_ns,
        ))
        return qty

    # ---- shared --------------------------------------------------------------------------

    def _reducible(self, account: str, symbol: str, side: Side) -> Decimal:
        """How much `side` can trade without opening or increasing a position."""
        position = self.ledger.account(account).positions.get(symbol)
        qty = ZERO if position is None else position.qty
        if (side is Side.SELL and qty > 0) or (side is Side.BUY and qty < 0):
            return abs(qty)
        return ZERO

    def _fill(
        self, order: VenueOrder, qty: Decimal, price: Decimal, liquidity: Liquidity, now_ns: int
    ) -> None:
        rate = self.fees.maker_rate if liquidity is Liquidity.MAKER else self.fees.taker_rate
        self._fill_seq += 1
        self._emit(Fill(
            venue=self.venue, account=order.account, fill_id=f"{self.venue}-{self._fill_seq}",
            client_id=order.client_id, venue_order_id=order.venue_order_id,
            symbol=order.symbol, side=order.side, qty=qty, price=price,
            fee=price * qty * rate, fee_asset=self.ledger.quote_asset, liquidity=liquidity,
            ts_venue_ns=now_ns,
        ))

    def _emit(self, effect: E) -> E:
        self.ledger.apply(effect)
        self.on_effect(effect)
        return effect

    def _reject(self, reason: RejectReason, message: str) -> VenueRejectedError:
        return VenueRejectedError(self.venue, reason, message)
