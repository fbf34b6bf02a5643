"""The spread arbitrage actor: plumbing around the pure decision.

Books in, orders to risk, order ends and fills back into the positions. A restarted instance
adopts the position it finds, and the fills of orders its predecessor had in flight (hedged
part kept, the rest unwound), and opens nothing for `START_QUIET_S` so those fills are in first.

Receives BookTop, ArbTick, UpdateParams and the order events; sends SubmitOrder to risk.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar, Final

import msgspec
import trio

from exchanges import BookTop, Instrument, OrderType, Side, TimeInForce

from ...feed import MarketTopics
from ...messages import OrderFilled
from .._base import OwnOrder, ParamsError, Strategy
from .._kinds import StrategyContext
from ._decision import (
    BPS,
    RETRY_INITIAL_S,
    RETRY_MAX_S,
    ArbPosition,
    ArbState,
    CloseReason,
    Decision,
    Direction,
    Hold,
    Phase,
    SeenBook,
    decide,
    hedge,
    is_flat,
    open_spread_bps,
    repairs,
)
from ._params import ZERO, SpreadArbParams

logger = logging.getLogger(__name__)

TICK_S: Final = 0.25  # max_hold and retries are checked this often; finer buys nothing
FILL_GRACE_S: Final = 5.0  # an ended order's fills follow in milliseconds; past this, stop waiting
START_QUIET_S: Final = 3.0  # a predecessor's orders may be in flight: see their fills, then open
_LIVE_FIELDS: Final = ("venue_a", "account_a", "symbol_a", "venue_b", "account_b", "symbol_b")


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
        self.steps = (instruments[0].step_size, instruments[1].step_size)
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
            if hedge(arb, self.min_qty, self.steps) is Phase.CLOSING and arb is not self._adopted:
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
        for repair in repairs(arb, self.min_qty, self.steps):
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
