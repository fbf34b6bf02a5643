"""Inventory cycle: two accounts on one venue swing between opposite full positions, in turns.

The idea. Legs A and B trade one symbol on one venue. In phase 1 leg A works its way to
+`max_position_usd` long and leg B to the same short; once both are there, phase 2 reverses
them, and so on. Each step is a post-only order of `maker_step` at mid ± `maker_price_offset_bps`,
one per leg every `decision_interval_s` after a random delay of up to `signal_delay_max_s`, and
the gateway cancels it if it still rests after `maker_expire_s`. The legs fill at different
moments, so the pair's net position wanders; when |net| exceeds `max_net_exposure_pct` of what
the pair may hold (2 × `max_position_usd`), the leg that lags takes liquidity (IOC, capped
`TAKER_SLIPPAGE_BPS` through the touch) to bring the net back to zero, and the leg that ran
ahead stands aside until it has.

Why. Both legs turn over their full size as makers while the pair stays near flat: what one
leg holds, the other holds the opposite of. The cap is per leg and in quote currency, at the
mid, counting a leg's resting orders as if they had filled, so no combination of fills takes
a leg past it; if the price alone carries a leg past it, the leg trims back, reduce-only.

The rule that matters most: the legs never trade with each other. They belong to one risk
hedge group, whose self-trade guard denies an order that would cross a resting order of
either account; this strategy never gives it the chance. Every price it sends is checked
against every live order of both legs, including orders whose cancel is still in flight
(risk counts those until the venue confirms): a buy stays strictly below every sell, a sell
strictly above every buy. A maker step that would not is moved one tick clear (a buy only
ever moves down and a sell up, so it stays post-only); a taker order waits until the orders
in its way are cancelled. Decisions are pure functions below the actor, testable without trio.
"""

from __future__ import annotations

import enum
import logging
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar, Final

import msgspec
import trio

from exchanges import BookTop, Instrument, Side, TimeInForce

from ..feed import MarketTopics
from ..messages import crosses as crosses  # the rule the cycle shares with risk
from ._base import ParamsError, Strategy
from ._kinds import Leg, StrategyContext

logger = logging.getLogger(__name__)

BPS: Final = Decimal(10_000)
ZERO: Final = Decimal(0)
TAKER_SLIPPAGE_BPS: Final = Decimal(10)  # a rebalance pays at most this far through the touch
BOOK_MAX_AGE_S: Final = 5.0  # no decision on an older book: the feed's own staleness bound


class InventoryCycleParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Checked whole on construction (so a bad config stops start-up, naming the field) and
    again on every live update; venue, accounts and symbol cannot change live."""

    venue: str
    account_a: str
    """Leg A: long in phase 1, short in phase 2."""
    account_b: str
    """Leg B: short in phase 1, long in phase 2. Never the same account as leg A."""
    symbol: str
    maker_step: Decimal
    """Size of each post-only step, in the base asset."""
    max_position_usd: Decimal
    """Per leg, in the quote currency at the mid: |position + resting orders| stays within it."""
    maker_price_offset_bps: Decimal = Decimal(1)
    """Steps rest this far from the mid: bids below, asks above (0: at the mid, rounded away)."""
    decision_interval_s: float = 5.0
    maker_expire_s: float = 30.0
    """The gateway cancels a step still resting this long after the venue accepted it."""
    signal_delay_max_s: float = 2.0
    """Each decision waits a further uniform random 0..this, so steps keep no fixed rhythm."""
    max_net_exposure_pct: Decimal = Decimal(20)
    """Rebalance with a taker order when |net| × mid exceeds this percentage of
    2 × max_position_usd. Of capacity, not of the current gross: early in a phase the gross is
    small, and measured against it the first maker fill of every phase would trigger a taker."""
    seed: int | None = None
    """Seeds the random delay (None: a fresh seed per start). Read at start only."""

    def __post_init__(self) -> None:
        check_params(self)

    def legs(self) -> list[Leg]:
        return [Leg(venue=self.venue, account=self.account_a, symbol=self.symbol),
                Leg(venue=self.venue, account=self.account_b, symbol=self.symbol)]

    def reference_venues(self) -> list[str]:
        return []


def check_params(params: InventoryCycleParams) -> None:
    """Rules the schema cannot state; raises ParamsError naming the field."""
    positive = {"maker_step": params.maker_step, "max_position_usd": params.max_position_usd}
    for name, value in positive.items():
        # Decimal("NaN") <= 0 raises InvalidOperation rather than answering: ask first.
        if not value.is_finite() or value <= 0:
            raise ParamsError(f"{name} must be a finite number > 0 (at `$.{name}`)")
    offset = params.maker_price_offset_bps
    if not offset.is_finite() or offset < 0:
        raise ParamsError("maker_price_offset_bps must be a finite number >= 0 "
                          "(at `$.maker_price_offset_bps`)")
    pct = params.max_net_exposure_pct
    if not pct.is_finite() or not 0 < pct <= 100:
        raise ParamsError("max_net_exposure_pct must be within (0, 100] "
                          "(at `$.max_net_exposure_pct`)")
    for name, seconds in (("decision_interval_s", params.decision_interval_s),
                          ("maker_expire_s", params.maker_expire_s)):
        if not (math.isfinite(seconds) and seconds > 0):
            raise ParamsError(f"{name} must be a finite number > 0 (at `$.{name}`)")
    if not (math.isfinite(params.signal_delay_max_s) and params.signal_delay_max_s >= 0):
        raise ParamsError("signal_delay_max_s must be a finite number >= 0 "
                          "(at `$.signal_delay_max_s`)")
    if params.account_a == params.account_b:
        raise ParamsError("account_b must differ from account_a: the legs are two accounts "
                          "(at `$.account_b`)")


# ---- the decision, pure ------------------------------------------------------------------------


class Phase(enum.Enum):
    A_LONG = 1
    """Phase 1: leg A works toward +max, leg B toward −max."""
    B_LONG = 2
    """Phase 2: the reverse."""

    @property
    def flipped(self) -> Phase:
        return Phase.B_LONG if self is Phase.A_LONG else Phase.A_LONG


@dataclass(frozen=True, slots=True)
class LiveOrder:
    """One of our orders, on either leg, that the venue may still fill."""

    client_id: str
    account: str
    side: Side
    price: Decimal | None
    remaining: Decimal
    cancelling: bool = False
    """Its cancel is on the way: no longer wanted, but it rests until the venue says so."""
    taker: bool = False


@dataclass(frozen=True, slots=True)
class Order:
    """An order the decision wants sent: post-only with expiry, or an IOC taker."""

    account: str
    side: Side
    qty: Decimal
    price: Decimal
    taker: bool = False
    reduce_only: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    phase: Phase
    cancels: tuple[str, ...]
    """Client ids to cancel, before the new orders go out."""
    orders: tuple[Order, ...]


def initial_phase(position_a: Decimal, position_b: Decimal) -> Phase:
    """A restarted strategy carries on the phase its positions show: A longer than B is phase 1."""
    return Phase.A_LONG if position_a >= position_b else Phase.B_LONG


def leg_sides(phase: Phase) -> tuple[Side, Side]:
    """The side on which leg A and leg B add in this phase."""
    return (Side.BUY, Side.SELL) if phase is Phase.A_LONG else (Side.SELL, Side.BUY)


def targets(phase: Phase, mid: Decimal, params: InventoryCycleParams) -> tuple[Decimal, Decimal]:
    """Where legs A and B are heading, in the base asset at `mid`."""
    side_a, side_b = leg_sides(phase)
    cap = params.max_position_usd / mid
    return cap * side_a.sign, cap * side_b.sign


def room(
    position: Decimal, side: Side, resting: Decimal, mid: Decimal,
    params: InventoryCycleParams, instrument: Instrument,
) -> Decimal:
    """How much more a leg may trade on `side`, counting its `resting` orders on that side as
    filled, before |position| × mid would pass max_position_usd; rounded down to the step."""
    held = position * side.sign + resting
    qty = instrument.round_qty(max(ZERO, params.max_position_usd / mid - held))
    # The division rounds to 28 digits, possibly up: the notional test itself is exact.
    while qty > 0 and (held + qty) * mid > params.max_position_usd:
        qty -= instrument.step_size
    return qty


def tradable(qty: Decimal, price: Decimal, instrument: Instrument) -> bool:
    return qty > 0 and qty >= instrument.min_qty and qty * price >= instrument.min_notional


def reached(
    position: Decimal, side: Side, mid: Decimal, params: InventoryCycleParams,
    instrument: Instrument,
) -> bool:
    """The leg is at its target: not even the smallest order toward it fits under the max."""
    return not tradable(room(position, side, ZERO, mid, params, instrument), mid, instrument)


def should_flip(
    phase: Phase, position_a: Decimal, position_b: Decimal, mid: Decimal,
    params: InventoryCycleParams, instrument: Instrument,
) -> bool:
    """Both legs are at their targets (one alone is not enough: the other still works)."""
    side_a, side_b = leg_sides(phase)
    return (reached(position_a, side_a, mid, params, instrument)
            and reached(position_b, side_b, mid, params, instrument))


def net_limit_usd(params: InventoryCycleParams) -> Decimal:
    return params.max_net_exposure_pct / 100 * 2 * params.max_position_usd


def needs_rebalance(
    position_a: Decimal, position_b: Decimal, mid: Decimal, params: InventoryCycleParams,
    instrument: Instrument,
) -> bool:
    """|net| strictly beyond the limit (at the limit exactly, makers still have the job), and
    big enough for an order: a net no order can reduce must not keep the pair waiting."""
    net = abs(position_a + position_b)
    return net * mid > net_limit_usd(params) and tradable(instrument.round_qty(net), mid,
                                                          instrument)


def lagging_leg(
    phase: Phase, position_a: Decimal, position_b: Decimal, params: InventoryCycleParams
) -> tuple[str, Decimal, Side]:
    """The leg whose phase direction reduces the net, with its position and that side."""
    side = Side.SELL if position_a + position_b > 0 else Side.BUY
    side_a, _ = leg_sides(phase)
    if side_a is side:
        return params.account_a, position_a, side
    return params.account_b, position_b, side


def rebalance(
    phase: Phase, position_a: Decimal, position_b: Decimal, live: Sequence[LiveOrder],
    book: BookTop, params: InventoryCycleParams, instrument: Instrument,
) -> Order | None:
    """The taker order that brings the net back to zero, when it is beyond the limit: on the
    lagging leg, never past that leg's max (its resting steps count as filled)."""
    mid = book.mid
    if not needs_rebalance(position_a, position_b, mid, params, instrument):
        return None
    account, position, side = lagging_leg(phase, position_a, position_b, params)
    net = abs(position_a + position_b)
    qty = min(instrument.round_qty(net),
              room(position, side, _resting(live, account, side), mid, params, instrument))
    touch = book.bid if side is Side.SELL else book.ask
    price = instrument.round_price(touch * (1 + side.sign * TAKER_SLIPPAGE_BPS / BPS), side)
    if price <= 0 or not tradable(qty, price, instrument):
        return None
    return Order(account, side, qty, price, taker=True)


def uncrossed(
    side: Side, price: Decimal, others: Iterable[LiveOrder], tick: Decimal
) -> Decimal | None:
    """`price`, or the nearest price one tick clear of every opposite order of either leg: a
    buy strictly below every sell, a sell strictly above every buy. Moving only ever makes the
    order more passive. None if no positive price is clear, or an opposite order has no price."""
    opposite = [o.price for o in others if o.side is side.opposite]
    if not opposite:
        return price if price > 0 else None
    if any(p is None for p in opposite):
        return None
    prices = [p for p in opposite if p is not None]
    if side is Side.BUY:
        price = min(price, min(prices) - tick)
    else:
        price = max(price, max(prices) + tick)
    return price if price > 0 else None


def step(
    account: str, position: Decimal, side: Side, others: Sequence[LiveOrder], book: BookTop,
    params: InventoryCycleParams, instrument: Instrument,
) -> Order | None:
    """The next post-only step of one leg heading to its target on `side`, or None.

    `others` are the live and just-planned orders of both legs. Adds up to the max, counting
    the leg's resting orders on that side as filled; past the max (the price carried it
    there) it trims back reduce-only instead. The price obeys the no-cross rule."""
    mid = book.mid
    mine = [o for o in others if o.account == account]
    held = position * side.sign
    if held * mid > params.max_position_usd:
        trade_side, reduce_only = side.opposite, True
        left = held - _resting(mine, account, trade_side)  # once the trims resting have filled
        qty = instrument.round_qty(min(params.maker_step,
                                       max(ZERO, left - params.max_position_usd / mid)))
        while qty > 0 and (left - qty) * mid < params.max_position_usd:  # exact, as in room()
            qty -= instrument.step_size
    else:
        trade_side, reduce_only = side, False
        qty = min(instrument.round_qty(params.maker_step),
                  room(position, side, _resting(mine, account, side), mid, params, instrument))
    offset = mid * params.maker_price_offset_bps / BPS
    wanted = mid - offset if trade_side is Side.BUY else mid + offset
    price = uncrossed(trade_side, instrument.round_price(wanted, trade_side), others,
                      instrument.tick_size)
    if price is None or not tradable(qty, price, instrument):
        return None
    return Order(account, trade_side, qty, price, reduce_only=reduce_only)


def decide(
    phase: Phase, position_a: Decimal, position_b: Decimal, live: Sequence[LiveOrder],
    book: BookTop, params: InventoryCycleParams, instrument: Instrument,
) -> Decision:
    """One decision for the pair: flip the phase if both legs arrived, rebalance if the net
    is beyond its limit, then the next step of each leg. Pure: no trio, no state."""
    mid = book.mid
    cancels: list[str] = []
    if should_flip(phase, position_a, position_b, mid, params, instrument):
        phase = phase.flipped
        # Steps toward the old targets are not wanted any more.
        cancels.extend(o.client_id for o in live if not o.cancelling and not o.taker)
    legs = list(zip((params.account_a, params.account_b), (position_a, position_b),
                    leg_sides(phase), strict=True))
    for account, position, side in legs:
        # Resting steps placed at a lower mid may no longer fit under the max: withdraw them.
        adds = [o for o in live if o.account == account and o.side is side
                and not o.cancelling and not o.taker]
        held = position * side.sign + sum((o.remaining for o in adds), ZERO)
        if held * mid > params.max_position_usd:
            cancels.extend(o.client_id for o in adds)
    planned: list[Order] = []
    rebalancing = needs_rebalance(position_a, position_b, mid, params, instrument)
    if rebalancing:
        lagging, _, side = lagging_leg(phase, position_a, position_b, params)
        # The pair goes quiet, then takes. Steps of the leg ahead would widen the net; the
        # lagging leg's would double up with the taker (risk counts them as filled too); and
        # any order on the far side of the taker's price would be crossed by it. Only the
        # leg ahead's trims (on the taker's side, shrinking the net) may stay.
        quiet = [o for o in live if not o.taker and (o.account == lagging or o.side is not side)]
        cancels.extend(o.client_id for o in quiet if not o.cancelling)
        taker = rebalance(phase, position_a, position_b, live, book, params, instrument)
        # One taker at a time: the positions do not show an IOC in flight yet. Once the
        # pair is quiet nothing can be in its way; checked all the same, as risk will.
        if taker is not None and not quiet and not any(
            o.taker or (o.side is taker.side.opposite and crosses(taker.side, taker.price,
                                                                 o.price))
            for o in live
        ):
            planned.append(taker)
    for account, position, side in legs:
        others = [*live, *(_as_live(o) for o in planned)]
        order = step(account, position, side, others, book, params, instrument)
        if order is not None and (order.reduce_only or not rebalancing):
            planned.append(order)
    return Decision(phase, tuple(dict.fromkeys(cancels)), tuple(planned))


def _resting(orders: Iterable[LiveOrder], account: str, side: Side) -> Decimal:
    return sum((o.remaining for o in orders if o.account == account and o.side is side), ZERO)


def _as_live(order: Order) -> LiveOrder:
    return LiveOrder(client_id="", account=order.account, side=order.side, price=order.price,
                     remaining=order.qty, taker=order.taker)


# ---- the actor ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DecisionTick:
    """Time for the next decision; sent by the instance's own timer."""


class InventoryCycle(Strategy[InventoryCycleParams]):
    params_type: ClassVar[type[msgspec.Struct]] = InventoryCycleParams

    def __init__(
        self, params: InventoryCycleParams, topics: MarketTopics, instrument: Instrument
    ) -> None:
        super().__init__(params, topics)
        self.instrument = instrument
        self.rng = random.Random(params.seed)  # per instance: no module-level random state
        self.phase = Phase.A_LONG  # settled from the positions in on_start
        self.flips = 0
        self.book: BookTop | None = None
        self.book_seen_s = float("-inf")

    async def on_start(self) -> None:
        await super().on_start()  # cancels a previous instance's orders, reads positions
        self.phase = initial_phase(*self._positions())
        problem = self._step_problem(self.params)
        if problem is not None:
            logger.error("%s: %s: it will place no steps", self.name, problem)
        self.topics.books.subscribe(self.ref)
        self.spawn(self._tick_forever)

    def validate_params(self, params: InventoryCycleParams) -> None:
        # The ranges were checked when the struct was built; here what the venue and the
        # running instance add.
        if (params.venue, params.account_a, params.account_b, params.symbol) != (
            self.params.venue, self.params.account_a, self.params.account_b, self.params.symbol
        ):
            raise ParamsError("venue, accounts and symbol cannot change live (at `$.venue`)")
        problem = self._step_problem(params)
        if problem is not None:
            raise ParamsError(f"{problem} (at `$.maker_step`)")

    # ---- handlers ------------------------------------------------------------------------

    async def on_book_top(self, message: BookTop) -> None:
        if message.venue == self.params.venue and message.symbol == self.params.symbol:
            self.book = message
            self.book_seen_s = trio.current_time()

    async def on_decision_tick(self, message: DecisionTick) -> None:
        params, book = self.params, self.book
        if book is None or trio.current_time() - self.book_seen_s > BOOK_MAX_AGE_S:
            logger.info("%s: no fresh book of %s on %s; no decision", self.name, params.symbol,
                        params.venue)
            return
        position_a, position_b = self._positions()
        decision = decide(self.phase, position_a, position_b, self._live(), book, params,
                          self.instrument)
        if decision.phase is not self.phase:
            self.flips += 1
            logger.info("%s: phase %d: legs at %s / %s", self.name, decision.phase.value,
                        position_a, position_b)
            self.phase = decision.phase
        for client_id in decision.cancels:
            await self.cancel(client_id)
        for order in decision.orders:
            await self.submit(
                params.venue, order.account, params.symbol, order.side, order.qty, order.price,
                tif=TimeInForce.IOC if order.taker else TimeInForce.POST_ONLY,
                reduce_only=order.reduce_only,
                expire_after_s=None if order.taker else params.maker_expire_s,
            )

    # ---- private -------------------------------------------------------------------------

    async def _tick_forever(self) -> None:
        # On a regular grid, each tick late by a fresh random delay: the rate stays
        # 1 / decision_interval_s on average while the moments are unpredictable.
        next_s = trio.current_time()
        while True:
            params = self.params
            next_s += params.decision_interval_s
            await trio.sleep_until(next_s + self.rng.uniform(0, params.signal_delay_max_s))
            await self.ref.tell(DecisionTick())

    def _step_problem(self, params: InventoryCycleParams) -> str | None:
        instrument = self.instrument
        if instrument.round_qty(params.maker_step) < instrument.min_qty:
            return (f"maker_step {params.maker_step} is under the minimum order of "
                    f"{instrument.min_qty} {params.symbol} on {params.venue}")
        return None

    def _positions(self) -> tuple[Decimal, Decimal]:
        params = self.params
        return (self.position(params.venue, params.account_a, params.symbol),
                self.position(params.venue, params.account_b, params.symbol))

    def _live(self) -> list[LiveOrder]:
        # Every live order, cancels in flight included: risk counts them until they end.
        params = self.params
        return [
            LiveOrder(client_id=client_id, account=own.intent.account, side=own.intent.side,
                      price=own.intent.price, remaining=own.intent.qty - own.filled_qty,
                      cancelling=own.cancel_sent, taker=own.intent.tif is TimeInForce.IOC)
            for client_id, own in self.orders.items()
            if own.live and own.intent.venue == params.venue
            and own.intent.symbol == params.symbol
        ]


def build_inventory_cycle(params: msgspec.Struct, context: StrategyContext) -> InventoryCycle:
    assert isinstance(params, InventoryCycleParams)
    return InventoryCycle(params, context.topics,
                          context.instruments[(params.venue, params.symbol)])
