"""Spread arbitrage: buy where it is cheap, sell where it is rich, get out when they meet.

Two venues quote the same asset, and their prices drift apart and back (funding, flows, one
venue's lag). When the executable spread (the rich venue's bid against the cheap venue's ask,
minus both legs' taker fees) reaches `open_threshold_bps`, the strategy buys `trade_amount` on
the cheap venue and sells it on the rich one. The pair is market neutral and earns what the gap
gives back. It is closed, both legs reversed, when the gap measured the way a close trades it
(the rich venue's ask against the cheap venue's bid, plus both closing fees) is down to
`close_threshold_bps`, or after `max_hold_s` whatever the gap. A round trip so earns at least
`open_threshold_bps - close_threshold_bps` net of all four fees, before slippage: that is why
the close threshold must sit below the open threshold.

Why each guard:
- Prices older than `max_price_age_s` are not acted on (no open, no close): a feed that stalls
  on one venue shows a spread that is not there, exactly like an opportunity. Unwinds are not
  decisions on prices and do not wait for fresh ones.
- Entry legs are IOC limits at the touch plus at most `max_slippage_bps`, so a leg whose market
  moved fails instead of filling anywhere. Exits (closes and unwinds) are reduce-only market
  orders: getting out matters more than the price, and reduce-only can never open exposure.
- Both entry legs go to risk back to back, neither waiting for the other's outcome: waiting
  would leave the first leg naked for a round trip. The price is that one leg can fail alone.
  Whatever one leg filled beyond the other is unwound at once, so a failed leg ends flat and a
  partial fill ends hedged on the smaller size. Unwinds and closes that fall short (risk denied
  them, the venue refused) are retried with backoff until the legs are where they should be.
- At most `max_positions` arbitrages at once, opens at least `min_trade_interval_s` apart, and
  never both directions at once: the venue nets them, and one side's reduce-only closes would
  then be refused.

The decision (`decide`) is a pure function of both books, the clock, the open positions and the
parameters: tested at its boundaries, benchmarked alone. The actor is plumbing: books in,
orders to risk, order ends and fills back into the positions. A restarted instance adopts the
position it finds, and the fills of orders its predecessor had in flight (hedged part kept, the
rest unwound), and opens nothing for `START_QUIET_S` so those fills are in first.

Receives BookTop, ArbTick, UpdateParams and the order events; sends SubmitOrder to risk.
"""

from __future__ import annotations

import enum
import logging
import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import ClassVar, Final

import msgspec
import trio

from exchanges import BookTop, Instrument, OrderType, Side, TimeInForce

from ..feed import MarketTopics
from ..messages import OrderFilled
from ._base import OwnOrder, ParamsError, Strategy
from ._kinds import Leg, StrategyContext

logger = logging.getLogger(__name__)

BPS: Final = Decimal(10_000)
ZERO: Final = Decimal(0)
TICK_S: Final = 0.25  # max_hold and retries are checked this often; finer buys nothing
RETRY_INITIAL_S: Final = 1.0  # an unwind or close that fell short is tried again after this,
RETRY_MAX_S: Final = 30.0  # doubling up to this: while halted, every try is denied and journaled
FILL_GRACE_S: Final = 5.0  # an ended order's fills follow in milliseconds; past this, stop waiting
START_QUIET_S: Final = 3.0  # a predecessor's orders may be in flight: see their fills, then open
_LIVE_FIELDS: Final = ("venue_a", "account_a", "symbol_a", "venue_b", "account_b", "symbol_b")


class SpreadArbParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Checked whole on every conversion (config file and live updates): an error names the
    field in msgspec's words (`... - at `$.trade_amount``)."""

    venue_a: str
    account_a: str
    symbol_a: str
    venue_b: str
    account_b: str
    symbol_b: str
    """Venues may name one market differently (BTCUSDT, BTC_USDC_PERP): a symbol per venue."""
    trade_amount: Decimal
    """Per leg, in the base asset; rounded down to both venues' step."""
    open_threshold_bps: Decimal
    """Open when (rich bid - cheap ask) / cheap ask, less both taker fees, is at least this."""
    close_threshold_bps: Decimal
    """Close when (rich ask - cheap bid) / cheap bid, plus both taker fees, is at most this."""
    taker_fee_bps_a: Decimal = Decimal("3.5")
    taker_fee_bps_b: Decimal = Decimal("3.5")
    max_slippage_bps: Decimal | None = Decimal(5)
    """Entry legs are IOC limits this far past the touch; None sends market orders."""
    max_hold_s: float = 600.0
    max_price_age_s: float = 2.0
    """Seconds since a book was received; older books are not acted on."""
    min_trade_interval_s: float = 5.0
    """Between two opens. Closes and unwinds never wait for it."""
    max_positions: int = 1
    """Arbitrages open at once, counting those still opening or closing."""

    def __post_init__(self) -> None:
        problem = params_problem(self)
        if problem is not None:
            raise ValueError(problem)

    def legs(self) -> list[Leg]:
        return [Leg(venue=self.venue_a, account=self.account_a, symbol=self.symbol_a),
                Leg(venue=self.venue_b, account=self.account_b, symbol=self.symbol_b)]

    def reference_venues(self) -> list[str]:
        return []


def params_problem(params: SpreadArbParams) -> str | None:
    """What is wrong with a parameter set, naming the field; None if nothing."""
    slippage = ZERO if params.max_slippage_bps is None else params.max_slippage_bps
    decimals = {
        "trade_amount": params.trade_amount, "open_threshold_bps": params.open_threshold_bps,
        "close_threshold_bps": params.close_threshold_bps,
        "taker_fee_bps_a": params.taker_fee_bps_a, "taker_fee_bps_b": params.taker_fee_bps_b,
        "max_slippage_bps": slippage,
    }
    floats = {"max_hold_s": params.max_hold_s, "max_price_age_s": params.max_price_age_s,
              "min_trade_interval_s": params.min_trade_interval_s}
    # Checked first: comparing a Decimal NaN raises instead of answering.
    for name, number in decimals.items():
        if not number.is_finite():
            return f"{name} must be a finite number - at `$.{name}`"
    for name, seconds in floats.items():
        if not math.isfinite(seconds):
            return f"{name} must be a finite number - at `$.{name}`"
    checks = [
        ("trade_amount", params.trade_amount > 0, "must be > 0"),
        ("open_threshold_bps", params.open_threshold_bps > 0,
         "must be > 0: below it an open pays more in fees than the spread gives"),
        ("close_threshold_bps", params.close_threshold_bps < params.open_threshold_bps,
         "must be below open_threshold_bps, or a round trip can lose by design"),
        ("taker_fee_bps_a", params.taker_fee_bps_a >= 0, "must be >= 0"),
        ("taker_fee_bps_b", params.taker_fee_bps_b >= 0, "must be >= 0"),
        ("max_slippage_bps", slippage >= 0, "must be >= 0"),
        ("max_hold_s", params.max_hold_s > 0, "must be > 0"),
        ("max_price_age_s", params.max_price_age_s > 0, "must be > 0"),
        ("min_trade_interval_s", params.min_trade_interval_s >= 0, "must be >= 0"),
        ("max_positions", params.max_positions >= 1, "must be >= 1"),
        ("symbol_b", (params.venue_a, params.symbol_a) != (params.venue_b, params.symbol_b),
         "leg b must be another venue or symbol than leg a"),
    ]
    for name, ok, reason in checks:
        if not ok:
            return f"{name} {reason} - at `$.{name}`"
    return None


# ---- the decision: pure, no trio ---------------------------------------------------------------


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


def hedge(arb: ArbPosition, min_qty: tuple[Decimal, Decimal]) -> Phase:
    """Set both legs' targets from what they hold, and return the phase that follows.

    What is long on one leg against short on the other is kept (OPEN) and any excess unwound;
    after partial fills that is the smaller fill. Nothing is hedged when a leg holds nothing
    (it failed) or both lean the same way: then both legs go to zero (CLOSING). So does an
    arbitrage whose excess is under the venue's minimum order: that could not be unwound alone.
    """
    qty_a, qty_b = arb.legs[0].qty, arb.legs[1].qty
    hedged = min(abs(qty_a), abs(qty_b))
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


def repairs(arb: ArbPosition, min_qty: tuple[Decimal, Decimal]) -> list[Repair]:
    """Orders that move each idle leg to its target. Targets lie between zero and the leg's
    quantity, so every repair reduces; a gap under the venue's minimum is dust and left."""
    wanted = []
    for index, leg in enumerate(arb.legs):
        if leg.pending:
            continue  # its order's outcome decides what is left to do
        gap = leg.qty - leg.target
        if gap == 0 or abs(gap) < min_qty[index]:
            continue
        wanted.append(Repair(index, Side.SELL if gap > 0 else Side.BUY, abs(gap)))
    return wanted


def is_flat(arb: ArbPosition, min_qty: tuple[Decimal, Decimal]) -> bool:
    return arb.phase is Phase.CLOSING and arb.settled and all(
        leg.qty == 0 or abs(leg.qty) < minimum
        for leg, minimum in zip(arb.legs, min_qty, strict=True)
    )


# ---- the actor -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ArbTick:
    """The strategy's own timer: max_hold, retries, fills that never came."""


@dataclass(frozen=True, slots=True)
class SpreadArbStatistics:
    open_positions: int
    opened: int
    closed_on_spread: int
    closed_on_max_hold: int
    failed_entries: int
    """Arbitrages whose legs did not both fill; what did fill was unwound."""
    last_hold: Hold | None


@dataclass(slots=True)
class _LegOrder:
    """One of our orders, tied to its arbitrage and leg until its outcome and fills are in."""

    arb: ArbPosition
    leg: int
    filled: Decimal = ZERO
    final: Decimal | None = None
    """The venue's filled quantity once the order ended."""
    ended_s: float = 0.0


class SpreadArb(Strategy[SpreadArbParams]):
    params_type: ClassVar[type[msgspec.Struct]] = SpreadArbParams

    def __init__(
        self, params: SpreadArbParams, topics: MarketTopics,
        instruments: tuple[Instrument, Instrument],
    ) -> None:
        super().__init__(params, topics)
        self.instruments = instruments
        self.min_qty = (instruments[0].min_qty, instruments[1].min_qty)
        self.book_a: SeenBook | None = None
        self.book_b: SeenBook | None = None
        self.state = ArbState()
        self.last_hold: Hold | None = None
        self._tracked: dict[str, _LegOrder] = {}
        self._next_arb_id = 0
        self._adopted: ArbPosition | None = None
        self._opened = self._closed_on_spread = self._closed_on_max_hold = 0
        self._failed_entries = 0

    async def on_start(self) -> None:
        await super().on_start()
        params = self.params
        self.state.opens_from_s = trio.current_time() + START_QUIET_S
        if self._entry_qty(params) == 0:
            logger.error("%s: trade_amount %s is under a venue's minimum order: it will not "
                         "open", self.name, params.trade_amount)
        await self._adopt(self.position(params.venue_a, params.account_a, params.symbol_a),
                          self.position(params.venue_b, params.account_b, params.symbol_b))
        self.topics.books.subscribe(self.ref)
        self.spawn(self._tick_forever)

    def statistics(self) -> SpreadArbStatistics:
        return SpreadArbStatistics(
            open_positions=len(self.state.positions), opened=self._opened,
            closed_on_spread=self._closed_on_spread, closed_on_max_hold=self._closed_on_max_hold,
            failed_entries=self._failed_entries, last_hold=self.last_hold,
        )

    # ---- parameters ----------------------------------------------------------------------

    def validate_params(self, params: SpreadArbParams) -> None:
        for name in _LIVE_FIELDS:
            if getattr(params, name) != getattr(self.params, name):
                raise ParamsError(f"{name} cannot change while the strategy runs "
                                  f"- at `$.{name}`")
        if self._entry_qty(params) == 0:
            raise ParamsError("trade_amount rounds to under a venue's minimum order "
                              f"({self.min_qty[0]}, {self.min_qty[1]}) - at `$.trade_amount`")

    def after_params_changed(self) -> None:
        logger.info("%s: parameters updated; the next decision uses them", self.name)

    # ---- the hot path --------------------------------------------------------------------

    async def on_book_top(self, message: BookTop) -> None:
        params = self.params
        venue, symbol = message.venue, message.symbol
        now = trio.current_time()
        if venue == params.venue_a and symbol == params.symbol_a:
            self.book_a = SeenBook(message.bid, message.ask, now)
        elif venue == params.venue_b and symbol == params.symbol_b:
            self.book_b = SeenBook(message.bid, message.ask, now)
        else:
            return
        decision = decide(self.book_a, self.book_b, now, self.state, params)
        self.last_hold = decision.hold
        if decision.open is not None or decision.closes:
            await self._act(decision, now)

    async def on_arb_tick(self, message: ArbTick) -> None:
        now = trio.current_time()
        for client_id, tracked in list(self._tracked.items()):
            if tracked.final is not None and now - tracked.ended_s > FILL_GRACE_S:
                logger.warning("%s: %s ended with %s filled but only %s arrived as fills; "
                               "going by the fills", self.name, client_id, tracked.final,
                               tracked.filled)
                self._untrack(client_id, tracked)
        for arb in list(self.state.positions.values()):
            await self._advance(arb, now)
        decision = decide(self.book_a, self.book_b, now, self.state, self.params)
        self.last_hold = decision.hold
        if decision.open is not None or decision.closes:
            await self._act(decision, now)

    async def _act(self, decision: Decision, now: float) -> None:
        for close in decision.closes:
            arb = self.state.positions[close.arb_id]
            logger.info("%s: closing arbitrage %d (%s) on %s", self.name, arb.arb_id,
                        arb.direction.value, close.reason.value)
            if close.reason is CloseReason.SPREAD:
                self._closed_on_spread += 1
            else:
                self._closed_on_max_hold += 1
            arb.phase = Phase.CLOSING
            for leg in arb.legs:
                leg.target = ZERO
            arb.retry_at_s, arb.retry_delay_s = -math.inf, RETRY_INITIAL_S
            await self._repair(arb)
        if decision.open is not None:
            await self._open(decision.open, now)

    async def _open(self, direction: Direction, now: float) -> None:
        params, a, b = self.params, self.book_a, self.book_b
        assert a is not None and b is not None  # decide opens on fresh books only
        qty = self._entry_qty(params)
        if qty == 0:
            return
        arb = self._new_arb(direction, now)
        self.state.last_open_s = now
        self._opened += 1
        logger.info("%s: opening arbitrage %d: %s %s, spread %.2f bps net", self.name,
                    arb.arb_id, direction.value, qty, open_spread_bps(direction, a, b, params))
        # Both legs back to back: neither waits for the other's outcome.
        for index, book in ((0, a), (1, b)):
            side = Side.BUY if index == direction.buy_leg else Side.SELL
            await self._send(arb, index, side, qty, self._entry_price(index, book, side))

    # ---- what comes back -----------------------------------------------------------------

    async def after_order_ended(self, own: OwnOrder, reason: str) -> None:
        client_id = own.intent.client_id
        tracked = self._tracked.get(client_id)
        if tracked is None:
            return
        now = trio.current_time()
        tracked.final, tracked.ended_s = own.filled_qty, now
        if own.filled_qty < own.intent.qty:
            logger.info("%s: %s %s %s ended %s with %s of %s filled: %s", self.name, client_id,
                        own.intent.venue, own.intent.side.value, own.status.value,
                        own.filled_qty, own.intent.qty, reason)
            arb = tracked.arb
            if own.intent.reduce_only and arb.retry_at_s <= now:
                # A close or unwind fell short: the next try waits, doubling (once a round,
                # though both legs fell short), since a denial or refusal does not clear in
                # a millisecond.
                arb.retry_at_s = now + arb.retry_delay_s
                arb.retry_delay_s = min(RETRY_MAX_S, arb.retry_delay_s * 2)
        await self._settle(client_id, tracked)

    async def after_fill(self, message: OrderFilled) -> None:
        fill = message.fill
        tracked = self._tracked.get(fill.client_id)
        if tracked is None:
            # A predecessor's order (it was in flight at our start), or one given up on.
            params, signed = self.params, fill.qty * fill.side.sign
            where = (fill.venue, fill.account, fill.symbol)
            if where == (params.venue_a, params.account_a, params.symbol_a):
                await self._adopt(signed, ZERO)
            elif where == (params.venue_b, params.account_b, params.symbol_b):
                await self._adopt(ZERO, signed)
            return
        tracked.arb.legs[tracked.leg].qty += fill.qty * fill.side.sign
        tracked.filled += fill.qty
        await self._settle(fill.client_id, tracked)

    async def _settle(self, client_id: str, tracked: _LegOrder) -> None:
        # Done once the order ended and its fills are in: positions follow fills, and risk
        # has seen every fill we have (it hears first), so a reduce-only repair passes.
        if tracked.final is None or tracked.filled < tracked.final:
            return
        self._untrack(client_id, tracked)
        await self._advance(tracked.arb, trio.current_time())

    async def _advance(self, arb: ArbPosition, now: float) -> None:
        """Move an arbitrage on after news: entry settled, flat, or a repair to send."""
        if arb.arb_id not in self.state.positions:
            return
        if arb.phase is not Phase.CLOSING and arb.settled:
            # Entry done, or an open one's legs changed under it: what is hedged now?
            before = arb.phase
            if hedge(arb, self.min_qty) is Phase.CLOSING and arb is not self._adopted:
                if before is Phase.OPENING:
                    self._failed_entries += 1
                logger.warning("%s: arbitrage %d: legs hold %s and %s, not a hedge; unwinding",
                               self.name, arb.arb_id, arb.legs[0].qty, arb.legs[1].qty)
        elif arb.phase is Phase.OPENING:
            return  # entry legs still in flight
        if is_flat(arb, self.min_qty):
            del self.state.positions[arb.arb_id]
            logger.info("%s: arbitrage %d is flat", self.name, arb.arb_id)
            return
        if now >= arb.retry_at_s:
            await self._repair(arb)

    async def _repair(self, arb: ArbPosition) -> None:
        for repair in repairs(arb, self.min_qty):
            await self._send(arb, repair.leg, repair.side, repair.qty, None, reduce_only=True)

    # ---- helpers -------------------------------------------------------------------------

    async def _send(
        self, arb: ArbPosition, leg: int, side: Side, qty: Decimal, price: Decimal | None,
        *, reduce_only: bool = False,
    ) -> None:
        params = self.params
        venue, account, symbol = (
            (params.venue_a, params.account_a, params.symbol_a) if leg == 0
            else (params.venue_b, params.account_b, params.symbol_b)
        )
        logger.debug("%s: arbitrage %d leg %d: %s %s %s at %s%s", self.name, arb.arb_id, leg,
                     side.value, qty, venue, "market" if price is None else price,
                     " reduce-only" if reduce_only else "")
        client_id = await self.submit(
            venue, account, symbol, side, qty, price,
            order_type=OrderType.MARKET if price is None else OrderType.LIMIT,
            tif=TimeInForce.IOC, reduce_only=reduce_only,
        )
        # Registered after the tell: replies wait in our mailbox until this handler returns.
        self._tracked[client_id] = _LegOrder(arb, leg)
        arb.legs[leg].pending.add(client_id)

    def _untrack(self, client_id: str, tracked: _LegOrder) -> None:
        del self._tracked[client_id]
        tracked.arb.legs[tracked.leg].pending.discard(client_id)

    def _entry_qty(self, params: SpreadArbParams) -> Decimal:
        """trade_amount on both venues' step; zero if under either's minimum."""
        qty = min(instrument.round_qty(params.trade_amount) for instrument in self.instruments)
        return qty if qty >= max(self.min_qty) and qty > 0 else ZERO

    def _entry_price(self, leg: int, book: SeenBook, side: Side) -> Decimal | None:
        slippage = self.params.max_slippage_bps
        if slippage is None:
            return None
        instrument = self.instruments[leg]
        if side is Side.BUY:
            return instrument.round_price(book.ask * (1 + slippage / BPS), side)
        return instrument.round_price(book.bid * (1 - slippage / BPS), side)

    def _new_arb(self, direction: Direction, now: float) -> ArbPosition:
        self._next_arb_id += 1
        arb = ArbPosition(self._next_arb_id, direction, now)
        self.state.positions[arb.arb_id] = arb
        return arb

    async def _adopt(self, qty_a: Decimal, qty_b: Decimal) -> None:
        """Position no order of this instance explains (a predecessor's, found at start or
        filled since) joins one adopted arbitrage, held from now: the hedged part stays open,
        the rest is unwound. Reassessed whole at every addition, so it ends where the truth is;
        the first unwind waits a moment, as the other leg's fill is likely on its way."""
        if qty_a == 0 and qty_b == 0:
            return
        now = trio.current_time()
        arb = self._adopted
        if arb is None or arb.arb_id not in self.state.positions:
            arb = self._adopted = self._new_arb(Direction.BUY_A_SELL_B, now)
        arb.legs[0].qty += qty_a
        arb.legs[1].qty += qty_b
        held_a, held_b = arb.legs[0].qty, arb.legs[1].qty
        buys_a = held_a > 0 or (held_a == 0 and held_b < 0)
        arb.direction = Direction.BUY_A_SELL_B if buys_a else Direction.BUY_B_SELL_A
        arb.phase = Phase.OPENING  # to be assessed once no order of it is in flight
        arb.retry_at_s = max(arb.retry_at_s, now + RETRY_INITIAL_S)
        logger.warning("%s: adopted %s on %s and %s on %s: arbitrage %d holds %s and %s",
                       self.name, qty_a, self.params.venue_a, qty_b, self.params.venue_b,
                       arb.arb_id, held_a, held_b)
        await self._advance(arb, now)

    async def _tick_forever(self) -> None:
        while True:
            await trio.sleep(TICK_S)
            await self.ref.tell(ArbTick())


def build_spread_arb(params: msgspec.Struct, context: StrategyContext) -> SpreadArb:
    assert isinstance(params, SpreadArbParams)
    instruments = (context.instruments[(params.venue_a, params.symbol_a)],
                   context.instruments[(params.venue_b, params.symbol_b)])
    return SpreadArb(params, context.topics, instruments)
