"""The spread arbitrage decision: pure functions and plain data, no trio, no I/O.

`decide` is a function of both books (`SeenBook`), the clock, the open positions (`ArbState`)
and the parameters: tested at its boundaries, benchmarked alone. `hedge`, `repairs` and
`is_flat` say where one arbitrage's legs should be and what moves them there; the actor owns
the state and sends the orders.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from typing import Final

from exchanges import Side

from ._params import ZERO, SpreadArbParams

BPS: Final = Decimal(10_000)
RETRY_INITIAL_S: Final = 1.0  # an unwind or close that fell short is tried again after this,
RETRY_MAX_S: Final = 30.0  # doubling up to this: while halted, every try is denied and journaled


class Direction(enum.Enum):
    BUY_A_SELL_B = "buy_a_sell_b"
    BUY_B_SELL_A = "buy_b_sell_a"

    @property
    def buy_leg(self) -> int:
        """0 for leg a, 1 for leg b: the cheap venue, where the position is long."""
        return 0 if self is Direction.BUY_A_SELL_B else 1


class Hold(enum.Enum):
    """Why a decision opened nothing."""

    NO_PRICE = "no_price"
    STALE_PRICE = "stale_price"
    BELOW_THRESHOLD = "below_threshold"
    MAX_POSITIONS = "max_positions"
    MIN_TRADE_INTERVAL = "min_trade_interval"
    OPPOSITE_POSITION = "opposite_position"
    JUST_STARTED = "just_started"


class CloseReason(enum.Enum):
    SPREAD = "spread"
    MAX_HOLD = "max_hold"


class Phase(enum.Enum):
    OPENING = "opening"
    """Entry legs in flight."""
    OPEN = "open"
    """Hedged (an excess may still be unwinding)."""
    CLOSING = "closing"
    """Going flat: both legs' targets are zero."""


@dataclass(frozen=True, slots=True)
class SeenBook:
    bid: Decimal
    ask: Decimal
    seen_s: float
    """Trio time of receipt: ages are measured on the clock the decision runs on."""


@dataclass(slots=True)
class ArbLeg:
    qty: Decimal = ZERO
    """Signed, from this arbitrage's own fills."""
    target: Decimal = ZERO
    """Signed quantity the leg should hold; repairs move `qty` to it, reduce-only."""
    pending: set[str] = field(default_factory=set)
    """Client ids of this leg's orders whose outcome and fills are not all in yet."""


@dataclass(slots=True)
class ArbPosition:
    """One arbitrage: long on the cheap venue, short on the rich one. Legs: (a, b)."""

    arb_id: int
    direction: Direction
    opened_s: float
    phase: Phase = Phase.OPENING
    legs: tuple[ArbLeg, ArbLeg] = field(default_factory=lambda: (ArbLeg(), ArbLeg()))
    retry_at_s: float = -math.inf
    retry_delay_s: float = RETRY_INITIAL_S

    @property
    def settled(self) -> bool:
        return not self.legs[0].pending and not self.legs[1].pending


@dataclass(slots=True)
class ArbState:
    """What decisions read besides the books; the actor owns and changes it."""

    positions: dict[int, ArbPosition] = field(default_factory=dict)
    last_open_s: float = -math.inf
    opens_from_s: float = -math.inf
    """No open before this: a predecessor's orders may still be in flight when we start."""


@dataclass(frozen=True, slots=True)
class Close:
    arb_id: int
    reason: CloseReason


@dataclass(frozen=True, slots=True)
class Decision:
    open: Direction | None = None
    closes: tuple[Close, ...] = ()
    hold: Hold | None = None
    """Why nothing opened; None when `open` is set."""


@dataclass(frozen=True, slots=True)
class Repair:
    """A reduce-only order that moves a leg to its target."""

    leg: int
    side: Side
    qty: Decimal


# The usual answers, made once: the hot path allocates nothing when it does nothing.
_HELD: Final = {hold: Decision(hold=hold) for hold in Hold}
_OPENS: Final = {direction: Decision(open=direction) for direction in Direction}


def decide(
    a: SeenBook | None, b: SeenBook | None, now_s: float, state: ArbState,
    params: SpreadArbParams,
) -> Decision:
    """What to do now: which open positions to close, and whether to open one. Pure."""
    if a is None or b is None:
        return _HELD[Hold.NO_PRICE]
    max_age_s = params.max_price_age_s
    if now_s - a.seen_s > max_age_s or now_s - b.seen_s > max_age_s:
        return _HELD[Hold.STALE_PRICE]
    fees_bps = params.taker_fee_bps_a + params.taker_fee_bps_b
    closes: list[Close] = []
    positions = state.positions
    if positions:
        close_bps = params.close_threshold_bps - fees_bps
        for arb in positions.values():
            if arb.phase is not Phase.OPEN:
                continue
            if now_s - arb.opened_s >= params.max_hold_s:
                closes.append(Close(arb.arb_id, CloseReason.MAX_HOLD))
            elif _close_due(arb.direction, a, b, close_bps):
                closes.append(Close(arb.arb_id, CloseReason.SPREAD))
    direction = _open_direction(a, b, params.open_threshold_bps + fees_bps)
    hold: Hold | None = None
    if direction is None:
        hold = Hold.BELOW_THRESHOLD
    elif len(positions) >= params.max_positions:
        hold = Hold.MAX_POSITIONS
    elif now_s - state.last_open_s < params.min_trade_interval_s:
        hold = Hold.MIN_TRADE_INTERVAL
    elif now_s < state.opens_from_s:
        hold = Hold.JUST_STARTED
    elif any(arb.direction is not direction for arb in positions.values()):
        hold = Hold.OPPOSITE_POSITION
    if not closes:
        if hold is not None:
            return _HELD[hold]
        assert direction is not None
        return _OPENS[direction]
    return Decision(open=None if hold is not None else direction, closes=tuple(closes),
                    hold=hold)


def _open_direction(a: SeenBook, b: SeenBook, need_bps: Decimal) -> Direction | None:
    # (bid - ask) / ask * BPS >= need, multiplied out: exact in Decimal, and no division.
    if (b.bid - a.ask) * BPS >= a.ask * need_bps:
        return Direction.BUY_A_SELL_B
    if (a.bid - b.ask) * BPS >= b.ask * need_bps:
        return Direction.BUY_B_SELL_A
    return None


def _close_due(direction: Direction, a: SeenBook, b: SeenBook, need_bps: Decimal) -> bool:
    # A close sells the long (cheap) leg at its bid and buys the short (rich) leg at its ask.
    long_, short = (a, b) if direction is Direction.BUY_A_SELL_B else (b, a)
    return (short.ask - long_.bid) * BPS <= long_.bid * need_bps


def open_spread_bps(
    direction: Direction, a: SeenBook, b: SeenBook, params: SpreadArbParams
) -> Decimal:
    """What opening in `direction` earns now, net of both taker fees (for logs and tests)."""
    cheap, rich = (a, b) if direction is Direction.BUY_A_SELL_B else (b, a)
    fees = params.taker_fee_bps_a + params.taker_fee_bps_b
    return (rich.bid - cheap.ask) / cheap.ask * BPS - fees


def close_spread_bps(
    direction: Direction, a: SeenBook, b: SeenBook, params: SpreadArbParams
) -> Decimal:
    """What closing a `direction` position gives back now, plus both taker fees."""
    cheap, rich = (a, b) if direction is Direction.BUY_A_SELL_B else (b, a)
    fees = params.taker_fee_bps_a + params.taker_fee_bps_b
    return (rich.ask - cheap.bid) / cheap.bid * BPS + fees


def _round_down(qty: Decimal, step: Decimal) -> Decimal:
    return (qty / step).to_integral_value(rounding=ROUND_FLOOR) * step


def hedge(
    arb: ArbPosition, min_qty: tuple[Decimal, Decimal],
    steps: tuple[Decimal, Decimal] | None = None,
) -> Phase:
    """Set both legs' targets from what they hold, and return the phase that follows.

    What is long on one leg against short on the other is kept (OPEN) and any excess unwound;
    after partial fills that is the smaller fill. Nothing is hedged when a leg holds nothing
    (it failed) or both lean the same way: then both legs go to zero (CLOSING). So does an
    arbitrage whose excess is under the venue's minimum order: that could not be unwound alone.
    """
    qty_a, qty_b = arb.legs[0].qty, arb.legs[1].qty
    hedged = min(abs(qty_a), abs(qty_b))
    if steps is not None:
        # Both legs must be able to trade down to it: a multiple of the coarser step.
        hedged = _round_down(hedged, max(steps))
    opposite = (qty_a > 0 > qty_b) or (qty_a < 0 < qty_b)
    excess_ok = all(
        abs(leg.qty) == hedged or abs(leg.qty) - hedged >= minimum
        for leg, minimum in zip(arb.legs, min_qty, strict=True)
    )
    if opposite and hedged >= max(min_qty) and excess_ok:
        arb.phase = Phase.OPEN
        for leg in arb.legs:
            leg.target = hedged if leg.qty > 0 else -hedged
    else:
        arb.phase = Phase.CLOSING
        for leg in arb.legs:
            leg.target = ZERO
    return arb.phase


def repairs(
    arb: ArbPosition, min_qty: tuple[Decimal, Decimal],
    steps: tuple[Decimal, Decimal] | None = None,
) -> list[Repair]:
    """Orders that move each idle leg to its target. Targets lie between zero and the leg's
    quantity, so every repair reduces; a gap under the venue's minimum (or under its step,
    once rounded down to it) is dust and left."""
    wanted = []
    for index, leg in enumerate(arb.legs):
        if leg.pending:
            continue  # its order's outcome decides what is left to do
        gap = abs(leg.qty - leg.target)
        if steps is not None:
            gap = _round_down(gap, steps[index])
        if gap == 0 or gap < min_qty[index]:
            continue
        wanted.append(Repair(index, Side.SELL if leg.qty > leg.target else Side.BUY, gap))
    return wanted


def is_flat(arb: ArbPosition, min_qty: tuple[Decimal, Decimal]) -> bool:
    return arb.phase is Phase.CLOSING and arb.settled and all(
        leg.qty == 0 or abs(leg.qty) < minimum
        for leg, minimum in zip(arb.legs, min_qty, strict=True)
    )
