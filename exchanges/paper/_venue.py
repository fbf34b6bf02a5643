"""The paper venue on trio: engine, ledger and state file behind the venue interface.

`PaperVenue` is one simulated exchange (market data for every symbol, any number of
accounts). `PaperWorld` drives one synthetic market into several venues in lockstep on the
trio clock, so tests run hours of market in seconds under MockClock.

Streams behave like a venue's WebSocket: each subscriber has a bounded buffer, and a
subscriber that falls that far behind is disconnected (its iterator ends) rather than slowing
the venue; the feed reconnects.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Final

import trio

from .._exceptions import RejectReason, VenueRejectedError
from .._models import (
    Balance,
    BookTop,
    Fill,
    FundingPayment,
    Instrument,
    MarketEvent,
    MarkPrice,
    OrderRequest,
    Position,
    Trade,
    UserEvent,
    VenueOrder,
)
from ._engine import FeeSchedule, MatchingEngine
from ._ledger import Effect, Ledger
from ._market import SymbolSpec, SyntheticMarket
from ._store import EffectLog

logger = logging.getLogger(__name__)

STREAM_BUFFER: Final = 10_000  # a consumer this far behind is disconnected, as venues do
MARK_INTERVAL_S: Final = 1.0  # venues push mark price about once a second


@dataclass(frozen=True, slots=True)
class PaperVenueConfig:
    name: str
    symbols: Sequence[SymbolSpec]
    accounts: dict[str, Decimal | dict[str, Decimal]]
    """Account name → starting balance in the quote asset, or asset → amount (spot needs the
    base asset too). Deposited once, then persisted."""
    quote_asset: str = "USDT"
    fees: FeeSchedule = field(default_factory=FeeSchedule)
    max_leverage: Decimal = Decimal(10)
    funding_interval_s: float = 3600.0
    funding_rate_cap: Decimal = Decimal("0.0075")
    order_latency_s: float = 0.0
    """Simulated one-way latency of order calls."""


class PaperVenue:
    def __init__(self, config: PaperVenueConfig, state_dir: Path | None = None) -> None:
        self.config = config
        self.name = config.name
        self.instrument_list = [
            Instrument(
                venue=config.name, symbol=s.symbol, base=s.base, quote=s.quote,
                tick_size=s.tick_size, step_size=s.step_size, min_qty=s.min_qty,
                min_notional=s.min_notional, kind=s.kind,
            )
            for s in config.symbols
        ]
        spot = {i.symbol: (i.base, i.quote) for i in self.instrument_list if i.is_spot}
        self.ledger = Ledger(config.name, config.quote_asset, spot)
        self._log = None if state_dir is None else EffectLog(state_dir / f"{config.name}.jsonl")
        if self._log is not None:
            for effect in self._log.load():
                self.ledger.apply(effect)
        self.engine = MatchingEngine(
            config.name, self.instrument_list, self.ledger, fees=config.fees,
            max_leverage=config.max_leverage, on_effect=self._publish_effect,
        )
        self._market_subscribers: list[
            tuple[frozenset[str], trio.MemorySendChannel[MarketEvent]]
        ] = []
        self._user_subscribers: dict[str, list[trio.MemorySendChannel[UserEvent]]] = {}
        self._cancel_deadlines: dict[tuple[str, str], float] = {}
        self._epoch_ns: int | None = None
        self._next_funding_s: float | None = None
        self._funding_rates: dict[str, Decimal] = {}

    # ---- lifecycle -----------------------------------------------------------------------

    def open(self, epoch_ns: int | None = None) -> None:
        """Start the venue clock (inside trio) and credit accounts that are new."""
        wall_ns = time.time_ns() if epoch_ns is None else epoch_ns
        trio_ns = int(trio.current_time() * 1e9)
        # The venue clock never runs backwards across restarts of the daemon.
        self._epoch_ns = max(wall_ns, self.ledger.last_ts_venue_ns + 1) - trio_ns
        if self._log is not None:
            self._log.open()
        now = self.now_ns()
        for account, holdings in self.config.accounts.items():
            if account in self.ledger.accounts:
                continue
            if isinstance(holdings, Decimal):
                holdings = {self.config.quote_asset: holdings}
            for asset, amount in holdings.items():
                self.engine.deposit(account, asset, amount, now)
        self._next_funding_s = trio.current_time() + self.config.funding_interval_s

    def close(self) -> None:
        for _, market_channel in self._market_subscribers:
            market_channel.close()
        for user_channels in self._user_subscribers.values():
            for user_channel in user_channels:
                user_channel.close()
        self._market_subscribers.clear()
        self._user_subscribers.clear()
        if self._log is not None:
            self._log.close()

    def now_ns(self) -> int:
        assert self._epoch_ns is not None, "PaperVenue.open() first"
        return self._epoch_ns + int(trio.current_time() * 1e9)

    def account(self, name: str) -> PaperAccount:
        if name not in self.config.accounts and name not in self.ledger.accounts:
            raise KeyError(f"paper venue {self.name} has no account {name!r}")
        return PaperAccount(self, name)

    # ---- MarketDataClient ----------------------------------------------------------------

    @property
    def venue(self) -> str:
        return self.name

    async def instruments(self) -> list[Instrument]:
        await trio.lowlevel.checkpoint()
        return list(self.instrument_list)

    async def server_time_ns(self) -> int:
        await trio.lowlevel.checkpoint()
        return self.now_ns()

    @asynccontextmanager
    async def stream_market(
        self, symbols: Sequence[str]
    ) -> AsyncIterator[AsyncIterator[MarketEvent]]:
        send, receive = trio.open_memory_channel[MarketEvent](STREAM_BUFFER)
        entry = (frozenset(symbols), send)
        self._market_subscribers.append(entry)
        try:
            async with receive:
                yield receive
        finally:
            if entry in self._market_subscribers:
                self._market_subscribers.remove(entry)
            send.close()

    # ---- the market ticking --------------------------------------------------------------

    def on_market_step(self, market: SyntheticMarket, dt_s: float) -> None:
        """Apply one step of the synthetic market: book, trades, marks, funding, timers."""
        now = self.now_ns()
        publish_mark = self._mark_due(dt_s)
        for spec in self.config.symbols:
            bids, asks = market.book(self.name, spec.symbol)
            self.engine.on_book(spec.symbol, bids, asks, now)
            for trade in market.trades(spec.symbol, dt_s, bids, asks):
                self.engine.on_trade(spec.symbol, trade.price, trade.qty, trade.aggressor, now)
                self._publish_market(Trade(
                    venue=self.name, symbol=spec.symbol, price=trade.price, qty=trade.qty,
                    aggressor=trade.aggressor, ts_venue_ns=now,
                    ts_local_ns=time.perf_counter_ns(),
                ))
            book = self.engine.books[spec.symbol]
            # ts_local_ns is when a subscriber could first see it: stamped at publication.
            self._publish_market(BookTop(
                venue=self.name, symbol=spec.symbol, bid=bids[0].price, bid_qty=bids[0].qty,
                ask=asks[0].price, ask_qty=asks[0].qty, ts_venue_ns=now,
                ts_local_ns=time.perf_counter_ns(),
            ))
            if publish_mark:
                self._publish_mark(spec, market, book.mid or bids[0].price, now,
                                   time.perf_counter_ns())
        self._pay_funding_if_due(now)
        self._fire_cancel_timers(now)

    def _mark_due(self, dt_s: float) -> bool:
        # Marks go out on the step that crosses a whole MARK_INTERVAL_S.
        t = trio.current_time()
        return math.floor(t / MARK_INTERVAL_S) != math.floor((t - dt_s) / MARK_INTERVAL_S)

    def _publish_mark(
        self, spec: SymbolSpec, market: SyntheticMarket, mark: Decimal, now: int, local: int
    ) -> None:
        # Premium over fair value, capped as venues cap it, is the funding rate.
        fair = Decimal(market.fair[spec.symbol])
        cap = self.config.funding_rate_cap
        rate = max(-cap, min(cap, ((mark - fair) / fair).quantize(Decimal("0.000001"))))
        self._funding_rates[spec.symbol] = rate
        assert self._next_funding_s is not None
        next_ns = now + int((self._next_funding_s - trio.current_time()) * 1e9)
        self._publish_market(MarkPrice(
            venue=self.name, symbol=spec.symbol, mark_price=mark, funding_rate=rate,
            next_funding_ns=next_ns, ts_venue_ns=now, ts_local_ns=local,
        ))

    def _pay_funding_if_due(self, now: int) -> None:
        assert self._next_funding_s is not None
        if trio.current_time() < self._next_funding_s:
            return
        self._next_funding_s += self.config.funding_interval_s
        for symbol, book in self.engine.books.items():
            mid = book.mid
            if mid is not None:
                rate = self._funding_rates.get(symbol, Decimal(0))
                self.engine.pay_funding(symbol, mid, rate, now)

    def _fire_cancel_timers(self, now: int) -> None:
        t = trio.current_time()
        for key, deadline in list(self._cancel_deadlines.items()):
            if t >= deadline:
                account, symbol = key
                del self._cancel_deadlines[key]
                cancelled = self.engine.cancel_all(account, symbol, now)
                logger.warning("%s: dead man's switch fired for %s %s: %d orders cancelled",
                               self.name, account, symbol, len(cancelled))

    def next_funding_s(self) -> float | None:
        return self._next_funding_s

    # ---- publishing ----------------------------------------------------------------------

    def _publish_market(self, event: MarketEvent) -> None:
        for entry in list(self._market_subscribers):
            symbols, channel = entry
            if event.symbol not in symbols:
                continue
            try:
                channel.send_nowait(event)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                logger.warning("%s: market stream subscriber too slow or gone; disconnected",
                               self.name)
                self._market_subscribers.remove(entry)
                channel.close()

    def _publish_effect(self, effect: Effect) -> None:
        if self._log is not None:
            self._log.append(effect)  # written before anyone hears of it
        if not isinstance(effect, (VenueOrder, Fill, FundingPayment)):
            return
        channels = self._user_subscribers.get(effect.account, [])
        for channel in list(channels):
            try:
                channel.send_nowait(effect)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                logger.warning("%s: user stream of %s too slow or gone; disconnected",
                               self.name, effect.account)
                channels.remove(channel)
                channel.close()


class PaperAccount:
    """One account of a PaperVenue, behind the AccountClient interface."""

    def __init__(self, venue: PaperVenue, account: str) -> None:
        self._venue = venue
        self._account = account

    @property
    def venue(self) -> str:
        return self._venue.name

    @property
    def account(self) -> str:
        return self._account

    async def _latency(self) -> None:
        delay = self._venue.config.order_latency_s
        if delay > 0:
            await trio.sleep(delay)
        else:
            await trio.lowlevel.checkpoint()

    async def place_order(self, request: OrderRequest) -> VenueOrder:
        await self._latency()
        return self._venue.engine.place(self._account, request, self._venue.now_ns())

    async def cancel_order(self, symbol: str, client_id: str) -> VenueOrder:
        await self._latency()
        order = self._venue.ledger.account(self._account).open_orders.get(client_id)
        if order is None or order.symbol != symbol:
            raise VenueRejectedError(self.venue, RejectReason.UNKNOWN_ORDER,
                                     f"no open order {client_id} in {symbol}")
        return self._venue.engine.cancel(self._account, client_id, self._venue.now_ns())

    async def cancel_all(self, symbol: str | None = None) -> list[VenueOrder]:
        await self._latency()
        return self._venue.engine.cancel_all(self._account, symbol, self._venue.now_ns())

    async def get_order(self, symbol: str, client_id: str) -> VenueOrder:
        await self._latency()
        order = self._venue.ledger.account(self._account).open_orders.get(client_id)
        if order is not None:
            return order
        # Closed orders are known through their fills only; a venue with full history
        # would answer here, and live adapters do.
        raise VenueRejectedError(self.venue, RejectReason.UNKNOWN_ORDER,
                                 f"no open order {client_id} in {symbol}")

    async def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        await self._latency()
        return self._venue.ledger.open_orders(self._account, symbol)

    async def positions(self) -> list[Position]:
        await self._latency()
        return self._venue.ledger.positions(self._account)

    async def balances(self) -> list[Balance]:
        await self._latency()
        return self._venue.ledger.balances(self._account)

    async def fills(self, since_ns: int) -> list[Fill]:
        await self._latency()
        return [
            fill for fill in self._venue.ledger.fills
            if fill.account == self._account and fill.ts_venue_ns >= since_ns
        ]

    async def funding(self, since_ns: int) -> list[FundingPayment]:
        await self._latency()
        return [
            payment for payment in self._venue.ledger.funding
            if payment.account == self._account and payment.ts_venue_ns >= since_ns
        ]

    @asynccontextmanager
    async def stream_user(self) -> AsyncIterator[AsyncIterator[UserEvent]]:
        send, receive = trio.open_memory_channel[UserEvent](STREAM_BUFFER)
        channels = self._venue._user_subscribers.setdefault(self._account, [])
        channels.append(send)
        try:
            async with receive:
                yield receive
        finally:
            if send in channels:
                channels.remove(send)
            send.close()

    async def arm_cancel_all_after(self, symbol: str, countdown_ms: int) -> bool:
        await self._latency()
        key = (self._account, symbol)
        if countdown_ms <= 0:
            self._venue._cancel_deadlines.pop(key, None)
        else:
            self._venue._cancel_deadlines[key] = trio.current_time() + countdown_ms / 1000
        return True


class PaperWorld:
    """One synthetic market driving several paper venues, a step every `step_s`."""

    def __init__(self, market: SyntheticMarket, venues: Sequence[PaperVenue],
                 step_s: float = 0.1) -> None:
        self.market = market
        self.venues = list(venues)
        self.step_s = step_s

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        for venue in self.venues:
            venue.open()
        try:
            self._step(self.step_s)  # the books exist before anyone trades
            task_status.started()
            next_at = trio.current_time()
            while True:
                next_at += self.step_s
                await trio.sleep_until(next_at)
                self._step(self.step_s)
        finally:
            for venue in self.venues:
                venue.close()

    def _step(self, dt_s: float) -> None:
        self.market.step(dt_s)
        for venue in self.venues:
            venue.on_market_step(self.market, dt_s)

