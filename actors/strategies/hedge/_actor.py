"""The hedge actor: observes positions, books and funding times, decides by `_cycle.decide`
and acts on what it decides.

Receives BookTop and MarkPrice (topics), the gateway's and risk's order events, UpdateParams;
sends SubmitOrder and CancelOrder (to risk, through the Strategy base).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar, Final

import msgspec
import trio

from exchanges import BookTop, Instrument, MarkPrice, OrderStatus, OrderType, TimeInForce

from ...feed import MarketTopics
from ...messages import OrderFilled
from .._base import OwnOrder, ParamsError, Strategy
from .._kinds import StrategyContext
from ._cycle import (
    Action,
    CancelMaker,
    Correct,
    Cycle,
    CycleLeg,
    FundingClock,
    MakerOrder,
    Observation,
    Phase,
    Role,
    decide,
    maker_price,
    may_start_cycle,
    tradable,
)
from ._params import HedgeParams

logger = logging.getLogger(__name__)

TICK_S: Final = 0.25  # timers (first wait, sleeps, retries) are checked this often
START_SETTLE_S: Final = 1.0  # after a (re)start, let the last instance's in-flight fills land
FILL_GRACE_S: Final = 5.0  # an order ended with fills not yet heard of: wait this long for them
MAKER_RETRY_S: Final = 1.0  # after a maker order was refused (post-only crossed, risk said no)
MAKER_EXPIRY_GRACE_S: Final = 10.0  # the gateway pulls a maker order we somehow forgot
BOOK_MAX_AGE_S: Final = 5.0  # the feed's staleness bound: no quote on an older book


@dataclass(frozen=True, slots=True)
class HedgeTick:
    """Time passed: check timers."""


@dataclass
class _Correction:
    client_id: str
    role: Role


@dataclass(frozen=True, slots=True)
class HedgeStatistics:
    phase: Phase
    leg: CycleLeg
    exposure: Decimal
    cycles_started: int
    corrections_sent: int
    unwinds_sent: int
    failures: int


class Hedge(Strategy[HedgeParams]):
    params_type: ClassVar[type[msgspec.Struct]] = HedgeParams

    def __init__(self, params: HedgeParams, topics: MarketTopics, maker_instrument: Instrument,
                 hedge_instrument: Instrument) -> None:
        super().__init__(params, topics)
        self.maker_instrument = maker_instrument
        self.hedge_instrument = hedge_instrument
        self.cycle = Cycle()
        self.books: dict[str, tuple[BookTop, float]] = {}
        """Venue → (latest book of our symbol there, trio time seen)."""
        self.funding: dict[str, FundingClock] = {}
        self.maker_id: str | None = None
        self.maker_placed_s = 0.0
        self.maker_retry_at_s = -math.inf
        self.correction: _Correction | None = None
        self.failures = 0
        self.retry_at_s = -math.inf
        self.unwound_cycles = 0
        self.fills_heard: dict[str, Decimal] = {}
        """Our orders of this instance → fill qty received so far."""
        self.fills_owed: dict[str, tuple[Decimal, float]] = {}
        """Ended orders whose venue-reported fills have not all arrived → (qty, ended at)."""
        self.acting_after_s = math.inf
        self.cycles_started = 0
        self.corrections_sent = 0
        self.unwinds_sent = 0

    async def on_start(self) -> None:
        await super().on_start()  # cancels the last instance's orders, re-reads positions
        self.topics.books.subscribe(self.ref)
        self.topics.marks.subscribe(self.ref)
        self.acting_after_s = trio.current_time() + START_SETTLE_S
        exposure = self._exposure()
        if exposure != 0:
            logger.warning("%s: started with %s unhedged: hedging it before anything else",
                           self.name, exposure)
        self.spawn(self._tick_forever)

    def validate_params(self, params: HedgeParams) -> None:
        for name in ("maker_venue", "maker_account", "hedge_venue", "hedge_account", "symbol",
                     "hedge_symbol"):
            if getattr(params, name) != getattr(self.params, name):
                raise ParamsError(f"{name} cannot change live - at `$.{name}`")
        least = max(self.maker_instrument.min_qty, self.hedge_instrument.min_qty)
        if params.max_unhedged_qty < least:
            raise ParamsError(f"max_unhedged_qty must be >= {least}, the venues' minimum "
                              "order - at `$.max_unhedged_qty`")

    def after_params_changed(self) -> None:
        if self.maker_id is not None:
            self.maker_placed_s = -math.inf  # requote now, with the new parameters

    def statistics(self) -> HedgeStatistics:
        return HedgeStatistics(
            phase=self.cycle.phase, leg=self.cycle.leg, exposure=self._exposure(),
            cycles_started=self.cycles_started, corrections_sent=self.corrections_sent,
            unwinds_sent=self.unwinds_sent, failures=self.failures,
        )

    # ---- market data: kept, acted on at the next tick --------------------------------------

    async def on_book_top(self, message: BookTop) -> None:
        if self._ours(message.venue, message.symbol):
            self.books[message.venue] = (message, trio.current_time())

    async def on_mark_price(self, message: MarkPrice) -> None:
        if self._ours(message.venue, message.symbol):
            self.funding[message.venue] = FundingClock(
                message.next_funding_ns, message.ts_venue_ns, trio.current_time()
            )

    async def on_hedge_tick(self, message: HedgeTick) -> None:
        await self._advance()

    # ---- our orders ------------------------------------------------------------------------

    async def after_fill(self, message: OrderFilled) -> None:
        fill = message.fill
        heard = self.fills_heard.get(fill.client_id)
        if heard is not None:
            heard = self.fills_heard[fill.client_id] = heard + fill.qty
            owed = self.fills_owed.get(fill.client_id)
            if owed is not None and heard >= owed[0]:
                del self.fills_owed[fill.client_id], self.fills_heard[fill.client_id]
        logger.info("%s: %s filled %s %s @ %s on %s; exposure now %s", self.name,
                    fill.client_id, fill.side.value, fill.qty, fill.price, fill.venue,
                    self._exposure())
        await self._advance()

    async def after_order_ended(self, own: OwnOrder, reason: str) -> None:
        client_id, now = own.intent.client_id, trio.current_time()
        if own.filled_qty > self.fills_heard.get(client_id, Decimal(0)):
            self.fills_owed[client_id] = (own.filled_qty, now)
        else:
            self.fills_heard.pop(client_id, None)
        if client_id == self.maker_id:
            self.maker_id = None
            if own.status is OrderStatus.REJECTED:
                logger.warning("%s: maker order refused: %s", self.name, reason)
                self.maker_retry_at_s = now + MAKER_RETRY_S
        elif self.correction is not None and client_id == self.correction.client_id:
            if own.filled_qty == 0:
                self.failures += 1
                self.retry_at_s = now + self.params.hedge_retry_s
                logger.warning("%s: %s %s filled nothing (%s); attempt %d failed", self.name,
                               self.correction.role.value, client_id, reason, self.failures)
            else:
                self.failures, self.retry_at_s = 0, now  # progress: what is left goes at once
                if self.correction.role is Role.HEDGE:
                    self.unwound_cycles = 0  # the hedge venue works again
            self.correction = None
        await self._advance()

    # ---- deciding --------------------------------------------------------------------------

    async def _tick_forever(self) -> None:
        while True:
            await trio.sleep(TICK_S)
            await self.ref.tell(HedgeTick())

    async def _advance(self) -> None:
        now = trio.current_time()
        if now < self.acting_after_s:
            return
        for _ in range(3):  # a move without an action (leg done, sleep of 0) may allow another
            decision = decide(self.cycle, self._observe(now), self.params, self.maker_instrument)
            before, self.cycle = self.cycle, decision.cycle
            if before.phase is not decision.cycle.phase or before.leg is not decision.cycle.leg:
                logger.info("%s: %s/%s -> %s/%s", self.name, before.phase.value, before.leg.value,
                            decision.cycle.phase.value, decision.cycle.leg.value)
            if before.leg is CycleLeg.NONE and decision.cycle.leg is CycleLeg.OPEN:
                self.cycles_started += 1
            if before.unwound and not decision.cycle.unwound:
                self.unwound_cycles += 1
            if decision.action is not None:
                await self._act(decision.action, now)
                return
            if decision.cycle == before:
                return

    def _observe(self, now: float) -> Observation:
        for client_id, (_, ended_s) in list(self.fills_owed.items()):
            if now - ended_s > FILL_GRACE_S:
                logger.warning("%s: fills of %s never arrived; going by positions", self.name,
                               client_id)
                del self.fills_owed[client_id]
                self.fills_heard.pop(client_id, None)
        maker_order = None
        own = None if self.maker_id is None else self.orders.get(self.maker_id)
        if own is not None:
            maker_order = MakerOrder(self.maker_placed_s, own.cancel_sent)
        params = self.params
        return Observation(
            now_s=now, exposure=self._exposure(),
            maker_position=self.position(params.maker_venue, params.maker_account, params.symbol),
            pending=self.correction is not None or bool(self.fills_owed),
            failures=self.failures, retry_at_s=self.retry_at_s, maker_order=maker_order,
            cycle_allowed=all(
                venue in self.funding and may_start_cycle(
                    self.funding[venue].next_funding_ns,
                    self.funding[venue].venue_now_ns(now), params.stop_before_funding_minutes)
                for venue in (params.maker_venue, params.hedge_venue)
            ),
            quote_ready=now >= self.maker_retry_at_s and all(
                venue in self.books and now - self.books[venue][1] <= BOOK_MAX_AGE_S
                for venue in (params.maker_venue, params.hedge_venue)
            ),
            unwound_cycles=self.unwound_cycles,
        )

    def _exposure(self) -> Decimal:
        """Signed base qty unhedged: 0 when the rest is below what the hedge venue trades."""
        params = self.params
        net = (self.position(params.maker_venue, params.maker_account, params.symbol)
               + self.position(params.hedge_venue, params.hedge_account, params.hedged_symbol))
        qty = tradable(net, self.hedge_instrument)
        return qty if net > 0 else -qty

    async def _act(self, action: Action, now: float) -> None:
        params = self.params
        if isinstance(action, Correct):
            await self._correct(action)
        elif isinstance(action, CancelMaker):
            if self.maker_id is not None:
                await self.cancel(self.maker_id)
        else:
            book, _ = self.books[params.maker_venue]
            price = maker_price(book, action.side, params.offset_percent, self.maker_instrument)
            self.maker_id = await self.submit(
                params.maker_venue, params.maker_account, params.symbol, action.side,
                action.qty, price, tif=TimeInForce.POST_ONLY, reduce_only=action.reduce_only,
                expire_after_s=params.first_wait_s + MAKER_EXPIRY_GRACE_S,
            )
            self.maker_placed_s = now
            self.fills_heard[self.maker_id] = Decimal(0)

    async def _correct(self, action: Correct) -> None:
        params = self.params
        if action.role is Role.HEDGE:
            venue, account, symbol = params.hedge_venue, params.hedge_account, params.hedged_symbol
            instrument = self.hedge_instrument
        else:
            venue, account, symbol = params.maker_venue, params.maker_account, params.symbol
            instrument = self.maker_instrument
        qty = tradable(action.qty, instrument)
        if qty == 0:  # the maker venue's step is coarser than the hedge venue's
            self.failures += 1
            self.retry_at_s = trio.current_time() + params.hedge_retry_s
            return
        # Reduce-only when it closes our position there, so REDUCE_ONLY trading still lets
        # a hedge or an unwind through.
        held = self.position(venue, account, symbol)
        reduces = held * action.side.sign < 0 and qty <= abs(held)
        logger.info("%s: %s %s %s at market on %s", self.name, action.role.value,
                    action.side.value, qty, venue)
        client_id = await self.submit(venue, account, symbol, action.side, qty,
                                      order_type=OrderType.MARKET, tif=TimeInForce.IOC,
                                      reduce_only=reduces)
        self.correction = _Correction(client_id, action.role)
        self.fills_heard[client_id] = Decimal(0)
        self.corrections_sent += 1
        if action.role is Role.UNWIND:
            self.unwinds_sent += 1

    def _ours(self, venue: str, symbol: str) -> bool:
        params = self.params
        return ((venue, symbol) == (params.maker_venue, params.symbol)
                or (venue, symbol) == (params.hedge_venue, params.hedged_symbol))


def build_hedge(params: msgspec.Struct, context: StrategyContext) -> Hedge:
    assert isinstance(params, HedgeParams)
    return Hedge(params, context.topics, context.instruments[(params.maker_venue, params.symbol)],
                 context.instruments[(params.hedge_venue, params.hedged_symbol)])
