"""Hedge: a maker leg on venue X, each of its fills hedged at market on venue Y.

A cycle has two legs. Leg 1 rests a post-only limit `offset_percent` from X's mid, on
`first_side`, until the strategy holds `quantity` there; leg 2, after `between_legs_sleep_s`,
closes it the same way from the other side. A maker order unfilled after `first_wait_s` is
cancelled and requoted at the current mid. Every maker fill, partial or whole, is hedged at
once by a market order for the same quantity on Y, so the position is always the pair
(+q on X, -q on Y) or flat. After a cycle the strategy sleeps `cycle_sleep_s`, and it starts no
cycle within `stop_before_funding_minutes` of either venue's next funding time as the venue
reports it (MarkPrice.next_funding_ns, compared with the venue's clock, not ours).

```
              cycle may start                    leg 1 filled
   IDLE ───────────────────────▶ QUOTING ──────────────────────▶ BETWEEN_LEGS
    ▲                           │  ▲   │ unfilled after                │ sleep over
    │ leg 2 filled              │  │   ▼ first_wait_s                 ▼
    └───────────────────────────┘  └─ REQUOTING                  QUOTING (leg 2)
   any state ── a fill leaves exposure ──▶ HEDGING ── hedged ──▶ back where it was
```

Hedge until flat. Unhedged exposure is the maker-venue position plus the hedge-venue position
of this strategy (hedged means they cancel), computed from positions, not from our record of
orders: so a fill that lands while its order is being cancelled, a fill after the order
ended, and a position found at start (a restart after a crash between fill and hedge) are all
hedged the same way. While the exposure is not zero, or a taker order or an order's fills are
still outstanding, nothing else happens: no maker order is placed, requoted or advanced.
A hedge that fails or fills partly is retried as a taker for what is left, after
`hedge_retry_s` if nothing filled. After `hedge_max_attempts` attempts that filled nothing,
the exposure is unwound on X instead (the hedge venue refuses: risk denies it, or the venue
rejects it), and after as many failed unwinds it goes back to Y: whichever venue works ends
it. An unwind ends the cycle: the strategy waits `cycle_sleep_s` before trying again, twice
that after a second unwound cycle in a row, and so on up to 64 times (a venue that keeps
refusing would otherwise cost a spread and a taker fee every cycle); a hedge that fills resets it.

`max_unhedged_qty` bounds the exposure a fill can open: no maker order is larger (a leg
bigger than it is worked in several orders, each hedged before the next). Exposure found
beyond it is not a position any cycle meant to hold, so it is unwound on X first rather than
doubled on Y.

Receives BookTop and MarkPrice (topics), the gateway's and risk's order events, UpdateParams;
sends SubmitOrder and CancelOrder (to risk, through the Strategy base). Give it dedicated
accounts on both venues: reduce-only closes and risk's position checks are per account.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar, Final

import msgspec
import trio

from exchanges import BookTop, Instrument, MarkPrice, OrderStatus, OrderType, Side, TimeInForce

from ..feed import MarketTopics
from ..messages import OrderFilled
from ._base import OwnOrder, ParamsError, Strategy
from ._kinds import Leg, StrategyContext

logger = logging.getLogger(__name__)

TICK_S: Final = 0.25  # timers (first wait, sleeps, retries) are checked this often
START_SETTLE_S: Final = 1.0  # after a (re)start, let the last instance's in-flight fills land
FILL_GRACE_S: Final = 5.0  # an order ended with fills not yet heard of: wait this long for them
MAKER_RETRY_S: Final = 1.0  # after a maker order was refused (post-only crossed, risk said no)
MAKER_EXPIRY_GRACE_S: Final = 10.0  # the gateway pulls a maker order we somehow forgot
BOOK_MAX_AGE_S: Final = 5.0  # the feed's staleness bound: no quote on an older book
UNWIND_BACKOFF_MAX_DOUBLINGS: Final = 6  # cycle_sleep_s x 64 at most after unwound cycles
_NS_PER_MINUTE: Final = 60 * 10**9
_PERCENT: Final = Decimal(100)


class HedgeParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    maker_venue: str
    maker_account: str
    hedge_venue: str
    hedge_account: str
    symbol: str
    """Quoted on the maker venue; also hedged, unless `hedge_symbol` says otherwise."""
    quantity: Decimal
    """Base asset held on each venue at the end of leg 1."""
    max_unhedged_qty: Decimal
    """Base asset: the largest maker order, so the most one fill leaves unhedged."""
    hedge_symbol: str | None = None
    """The hedge venue's symbol for the same base asset, if it is named differently."""
    first_side: Side = Side.BUY
    """Leg 1's side on the maker venue; leg 2 takes the other."""
    offset_percent: Decimal = Decimal("0.02")
    """Maker price distance from the maker venue's mid, in percent of it."""
    first_wait_s: float = 30.0
    """A maker order unfilled this long is cancelled and requoted."""
    between_legs_sleep_s: float = 10.0
    cycle_sleep_s: float = 60.0
    stop_before_funding_minutes: float = 10.0
    """No cycle starts this close to either venue's next funding time."""
    hedge_retry_s: float = 1.0
    """Wait after a hedge that filled nothing (a partial one is retried at once)."""
    hedge_max_attempts: int = 3
    """Hedges filling nothing before the exposure is unwound on the maker venue instead."""

    def __post_init__(self) -> None:
        # Here rather than in validate_params, so the config file is held to it too.
        for name in self.__struct_fields__:
            value = getattr(self, name)
            # "NaN" and "Infinity" parse as Decimal; NaN would raise below, not compare.
            if (isinstance(value, Decimal) and not value.is_finite()) or (
                isinstance(value, float) and not math.isfinite(value)
            ):
                raise ValueError(f"{name} must be a finite number - at `$.{name}`")
        for name in ("quantity", "max_unhedged_qty"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0 - at `$.{name}`")
        if not 0 <= self.offset_percent < 10:
            raise ValueError("offset_percent must be within [0, 10) - at `$.offset_percent`")
        if not self.first_wait_s > 0:
            raise ValueError("first_wait_s must be > 0 - at `$.first_wait_s`")
        for name in ("between_legs_sleep_s", "cycle_sleep_s", "stop_before_funding_minutes",
                     "hedge_retry_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0 - at `$.{name}`")
        if self.hedge_max_attempts < 1:
            raise ValueError("hedge_max_attempts must be >= 1 - at `$.hedge_max_attempts`")
        if self.hedge_venue == self.maker_venue:
            raise ValueError("hedge_venue must differ from maker_venue - at `$.hedge_venue`")

    @property
    def hedged_symbol(self) -> str:
        return self.symbol if self.hedge_symbol is None else self.hedge_symbol

    def legs(self) -> list[Leg]:
        return [Leg(venue=self.maker_venue, account=self.maker_account, symbol=self.symbol),
                Leg(venue=self.hedge_venue, account=self.hedge_account,
                    symbol=self.hedged_symbol)]

    def reference_venues(self) -> list[str]:
        return []


# ---- the cycle as a state machine: pure, no trio ---------------------------------------------


class Phase(enum.Enum):
    IDLE = "idle"
    """Flat and hedged between cycles: waits out cycle_sleep_s and the funding window."""
    QUOTING = "quoting"
    """A maker order rests on the maker venue (or is about to be placed)."""
    REQUOTING = "requoting"
    """The maker order is being cancelled; a fill may still land on it."""
    HEDGING = "hedging"
    """Exposure is not zero, or a taker order or fills are outstanding: only that matters."""
    BETWEEN_LEGS = "between_legs"
    """Leg 1 is filled and hedged; leg 2 starts after between_legs_sleep_s."""


class CycleLeg(enum.Enum):
    NONE = "none"
    OPEN = "open"
    """Leg 1: to `quantity` on `first_side`."""
    CLOSE = "close"
    """Leg 2: back to flat."""


class Role(enum.Enum):
    """Where a taker order that corrects exposure trades."""

    HEDGE = "hedge"
    """On the hedge venue: the normal case."""
    UNWIND = "unwind"
    """On the maker venue, undoing the maker fill: when the hedge venue refuses."""


@dataclass(frozen=True, slots=True)
class Cycle:
    """What the strategy remembers between decisions; each decision replaces it whole."""

    phase: Phase = Phase.IDLE
    leg: CycleLeg = CycleLeg.NONE
    wait_until_s: float = -math.inf
    """Trio time: the end of cycle_sleep_s or between_legs_sleep_s."""
    unwound: bool = False
    """Exposure in this cycle went to the maker venue: the cycle ends once flat."""


@dataclass(frozen=True, slots=True)
class MakerOrder:
    placed_at_s: float
    cancelling: bool


@dataclass(frozen=True, slots=True)
class Observation:
    """What the strategy knows now, as decisions read it."""

    now_s: float
    exposure: Decimal
    """Unhedged, signed, base asset, already 0 when below what the hedge venue can trade."""
    maker_position: Decimal
    pending: bool
    """A taker order is in flight, or an ended order's fills have not all arrived."""
    failures: int
    """Consecutive corrections that filled nothing."""
    retry_at_s: float
    maker_order: MakerOrder | None
    cycle_allowed: bool
    """Funding times known on both venues and neither window open."""
    quote_ready: bool
    """Fresh books on both venues, and no back-off after a refused maker order."""
    unwound_cycles: int = 0
    """Cycles in a row that ended in an unwind (the hedge venue refusing)."""


@dataclass(frozen=True, slots=True)
class Correct:
    """A taker (market) order for `qty`, on the venue `role` names."""

    role: Role
    side: Side
    qty: Decimal


@dataclass(frozen=True, slots=True)
class CancelMaker:
    pass


@dataclass(frozen=True, slots=True)
class Quote:
    side: Side
    qty: Decimal
    reduce_only: bool


Action = Correct | CancelMaker | Quote


@dataclass(frozen=True, slots=True)
class Decision:
    cycle: Cycle
    action: Action | None = None


def decide(cycle: Cycle, seen: Observation, params: HedgeParams, maker: Instrument) -> Decision:
    """The next state and at most one action. Rules in priority order: hedge until flat,
    end a cycle that needed an unwind, mind the resting maker order, then move the cycle."""
    now = seen.now_s
    if seen.pending:
        return Decision(dataclasses.replace(cycle, phase=Phase.HEDGING))
    if seen.exposure != 0:
        hedging = dataclasses.replace(cycle, phase=Phase.HEDGING)
        if now < seen.retry_at_s:
            return Decision(hedging)
        role = correction_role(seen.exposure, seen.failures, params)
        side = Side.SELL if seen.exposure > 0 else Side.BUY
        hedging = dataclasses.replace(hedging, unwound=cycle.unwound or role is Role.UNWIND)
        return Decision(hedging, Correct(role, side, abs(seen.exposure)))
    order = seen.maker_order
    if cycle.unwound:
        # The hedge venue refused: no more maker fills in this cycle.
        if order is not None:
            requoting = dataclasses.replace(cycle, phase=Phase.REQUOTING)
            return Decision(requoting, None if order.cancelling else CancelMaker())
        backoff = 2 ** min(seen.unwound_cycles, UNWIND_BACKOFF_MAX_DOUBLINGS)
        return Decision(Cycle(Phase.IDLE, CycleLeg.NONE, now + params.cycle_sleep_s * backoff))
    if order is not None:
        if order.cancelling:
            return Decision(dataclasses.replace(cycle, phase=Phase.REQUOTING))
        if now - order.placed_at_s >= params.first_wait_s:
            return Decision(dataclasses.replace(cycle, phase=Phase.REQUOTING), CancelMaker())
        return Decision(dataclasses.replace(cycle, phase=Phase.QUOTING))

    if cycle.leg is CycleLeg.NONE:
        if now < cycle.wait_until_s:
            return Decision(dataclasses.replace(cycle, phase=Phase.IDLE))
        if leg_remaining(CycleLeg.CLOSE, seen.maker_position, params, maker) != 0:
            cycle = Cycle(Phase.BETWEEN_LEGS, CycleLeg.CLOSE, now)  # found open: close it
        elif not (seen.cycle_allowed and seen.quote_ready):
            return Decision(dataclasses.replace(cycle, phase=Phase.IDLE))
        else:
            cycle = Cycle(Phase.QUOTING, CycleLeg.OPEN, now)  # a new cycle
    remaining = leg_remaining(cycle.leg, seen.maker_position, params, maker)
    if remaining == 0:
        if cycle.leg is CycleLeg.OPEN:
            return Decision(Cycle(Phase.BETWEEN_LEGS, CycleLeg.CLOSE,
                                  now + params.between_legs_sleep_s))
        return Decision(Cycle(Phase.IDLE, CycleLeg.NONE, now + params.cycle_sleep_s))
    if cycle.leg is CycleLeg.OPEN and not seen.cycle_allowed:
        # The funding window opened with leg 1 unfinished: add nothing, close what filled.
        if leg_remaining(CycleLeg.CLOSE, seen.maker_position, params, maker) == 0:
            return Decision(Cycle(Phase.IDLE, CycleLeg.NONE, now))
        return Decision(Cycle(Phase.BETWEEN_LEGS, CycleLeg.CLOSE, now))
    if now < cycle.wait_until_s or not seen.quote_ready:
        return Decision(cycle)
    side = Side.BUY if remaining > 0 else Side.SELL
    qty = maker.round_qty(min(abs(remaining), params.max_unhedged_qty))
    return Decision(dataclasses.replace(cycle, phase=Phase.QUOTING),
                    Quote(side, qty, reduce_only=cycle.leg is CycleLeg.CLOSE))


def leg_remaining(
    leg: CycleLeg, maker_position: Decimal, params: HedgeParams, maker: Instrument
) -> Decimal:
    """Signed base qty the maker venue still has to trade in this leg; 0 when it is done
    (or what is left is below the venue's minimum)."""
    if leg is CycleLeg.NONE:
        return Decimal(0)
    if leg is CycleLeg.OPEN:
        target = params.quantity * params.first_side.sign
        remaining = target - maker_position
        if remaining * params.first_side.sign <= 0:
            return Decimal(0)  # there, or beyond: leg 1 never trades back
    else:
        remaining = -maker_position
    qty = maker.round_qty(abs(remaining))
    if qty < maker.min_qty:
        return Decimal(0)
    return qty if remaining > 0 else -qty


def correction_role(exposure: Decimal, failures: int, params: HedgeParams) -> Role:
    """Hedge first (unwind first beyond max_unhedged_qty); switch venue after every
    hedge_max_attempts attempts that filled nothing."""
    first = Role.UNWIND if abs(exposure) > params.max_unhedged_qty else Role.HEDGE
    if (failures // params.hedge_max_attempts) % 2 == 0:
        return first
    return Role.HEDGE if first is Role.UNWIND else Role.UNWIND


def tradable(qty: Decimal, instrument: Instrument) -> Decimal:
    """`qty` down to the step, or 0 below the venue's minimum: what an order could carry."""
    rounded = instrument.round_qty(abs(qty))
    return Decimal(0) if rounded < instrument.min_qty else rounded


def maker_price(book: BookTop, side: Side, offset_percent: Decimal,
                instrument: Instrument) -> Decimal:
    """`offset_percent` from mid, rounded away from the market, never crossing the book (a
    post-only order that would cross is refused)."""
    distance = book.mid * offset_percent / _PERCENT
    if side is Side.BUY:
        price = instrument.round_price(book.mid - distance, side)
        return min(price, book.ask - instrument.tick_size)
    price = instrument.round_price(book.mid + distance, side)
    return max(price, book.bid + instrument.tick_size)


def may_start_cycle(next_funding_ns: int | None, venue_now_ns: int,
                    stop_before_funding_minutes: float) -> bool:
    """False from `stop_before_funding_minutes` before funding on (and while the next funding
    time is unknown, or passed and not yet replaced by the venue's next one)."""
    if next_funding_ns is None:
        return False
    window_ns = round(stop_before_funding_minutes * _NS_PER_MINUTE)
    return venue_now_ns < next_funding_ns - window_ns


@dataclass(frozen=True, slots=True)
class FundingClock:
    """A venue's latest MarkPrice, read against the venue's clock."""

    next_funding_ns: int
    venue_ns: int
    """The venue's clock when it stamped the mark."""
    seen_s: float
    """Our trio time when it arrived."""

    def venue_now_ns(self, now_s: float) -> int:
        return self.venue_ns + round((now_s - self.seen_s) * 1e9)


# ---- the actor ---------------------------------------------------------------------------------


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
