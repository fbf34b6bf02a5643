"""The hedge cycle as a state machine: pure functions of what the strategy knows, no trio.

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
"""

from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from exchanges import BookTop, Instrument, Side

from ._params import HedgeParams

UNWIND_BACKOFF_MAX_DOUBLINGS: Final = 6  # cycle_sleep_s x 64 at most after unwound cycles
_NS_PER_MINUTE: Final = 60 * 10**9
_PERCENT: Final = Decimal(100)


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
        maker_order = seen.maker_order
        if role is Role.UNWIND and maker_order is not None:
            # An unwind trades on the maker account: our own resting maker order would be
            # crossed (risk refuses that), and could keep filling. It comes down first.
            return Decision(hedging, None if maker_order.cancelling else CancelMaker())
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
