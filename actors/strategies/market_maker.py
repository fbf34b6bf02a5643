"""Market maker: layered post-only quotes around a reference mid, skewed against inventory.

The reference is the quoted venue's own mid, or in follow mode another venue's mid, clamped
to within `max_divergence_bps` of our own so one bad tick elsewhere cannot drag our quotes.
On a spot symbol the inventory is the base balance, its target the base worth
`base_asset_target_pct` of the account; past `rebalance_threshold_pct` from it the quotes come
down and a taker order rebalances (spot has no reduce-only).
Quotes are `max_orders` layers a side, `spread_bps` from the reference and `layer_step_bps`
apart, shifted against inventory by `inventory_skew`. Past `target_position ±
position_threshold` the side that would add is withdrawn and the other side carries the
excess, reduce-only; past `max_position` it reduces to the maximum. Requotes happen every
`interval_s`, or sooner when the reference moves `requote_bps`; orders that already stand at
a wanted price are kept (each cancel and new order costs rate limit and queue position), new
quotes go out before stale ones are cancelled.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar, Final

import msgspec
import trio

from exchanges import BookTop, Instrument, OrderType, Side, TimeInForce

from ..feed import MarketTopics
from ..messages import GetBalances, OrderFilled, OrderIntent, crosses, gateway_name
from ._base import ParamsError, Strategy, check_finite
from ._kinds import Leg, StrategyContext

logger = logging.getLogger(__name__)

BPS: Final = Decimal(10_000)


class MarketMakerParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    venue: str
    account: str
    symbol: str
    quantity: Decimal
    """Per order, in the base asset."""
    max_position: Decimal
    """Absolute cap, in the base asset."""
    spread_bps: Decimal = Decimal(8)
    layer_step_bps: Decimal = Decimal(4)
    max_orders: int = 2
    """Layers per side."""
    target_position: Decimal = Decimal(0)
    position_threshold: Decimal = Decimal(0)
    inventory_skew: Decimal = Decimal("0.5")
    """0..1: at full inventory (|position - target| = max_position) quotes shift by this many
    spreads against it."""
    interval_s: float = 5.0
    requote_bps: Decimal = Decimal(3)
    follow_venue: str | None = None
    max_divergence_bps: Decimal = Decimal(50)
    order_expire_s: float | None = 120.0
    base_asset_target_pct: Decimal = Decimal(50)
    """Spot only: the share of the account's value to hold in the base asset."""
    rebalance_threshold_pct: Decimal = Decimal(10)
    """Spot only: past this many points from the target, a taker order rebalances to it."""
    rebalance_max_qty: Decimal | None = None
    """Spot only: the most one rebalancing order may trade (keep it under risk's order
    limits); a larger imbalance takes several rounds."""

    def __post_init__(self) -> None:
        # Checked wherever parameters are made: the config file and live updates alike.
        check_finite(self)  # before any comparison: NaN compares by raising
        if self.quantity <= 0:
            raise ValueError("quantity must be > 0")
        if self.max_position <= 0:
            raise ValueError("max_position must be > 0")
        if not 0 <= self.inventory_skew <= 1:
            raise ValueError("inventory_skew must be within 0..1")
        if self.max_orders < 1:
            raise ValueError("max_orders must be >= 1")
        if self.spread_bps <= 0 or self.layer_step_bps < 0:
            raise ValueError("spread_bps must be > 0 and layer_step_bps >= 0")

    def legs(self) -> list[Leg]:
        return [Leg(venue=self.venue, account=self.account, symbol=self.symbol)]

    def reference_venues(self) -> list[str]:
        return [] if self.follow_venue is None else [self.follow_venue]


def spot_rebalance(
    base: Decimal, quote_balance: Decimal, mid: Decimal, params: MarketMakerParams,
    instrument: Instrument,
) -> Quote | None:
    """On spot: a taker order back to the target base share, once it drifted past the
    threshold; None while within it. Pure."""
    total = base * mid + quote_balance
    if total <= 0:
        return None
    share_pct = base * mid / total * 100
    if abs(share_pct - params.base_asset_target_pct) <= params.rebalance_threshold_pct:
        return None
    target_base = total * params.base_asset_target_pct / 100 / mid
    qty = abs(target_base - base)
    if params.rebalance_max_qty is not None:
        qty = min(qty, params.rebalance_max_qty)
    qty = instrument.round_qty(qty)
    if qty < instrument.min_qty or qty * mid < instrument.min_notional:
        return None
    return Quote(Side.BUY if target_base > base else Side.SELL, mid, qty)


def spot_target(base: Decimal, quote_balance: Decimal, mid: Decimal,
                params: MarketMakerParams) -> Decimal:
    """The base amount worth `base_asset_target_pct` of the account at `mid`."""
    return (base * mid + quote_balance) * params.base_asset_target_pct / 100 / mid


@dataclass(frozen=True, slots=True)
class Quote:
    side: Side
    price: Decimal
    qty: Decimal
    reduce_only: bool = False


def quotes(
    reference: Decimal,
    position: Decimal,
    params: MarketMakerParams,
    instrument: Instrument,
    target: Decimal | None = None,
) -> list[Quote]:
    """The quotes we want. Pure: no trio, no state.

    `position` is the futures position, or on spot the base balance; `target` overrides
    `params.target_position` (spot: the base amount worth `base_asset_target_pct`).
    """
    target_position = params.target_position if target is None else target
    inventory = position - target_position
    ratio = max(Decimal(-1), min(Decimal(1), inventory / params.max_position))
    shift_bps = -ratio * params.inventory_skew * params.spread_bps
    excess = abs(inventory) - params.position_threshold
    over_max = abs(position) - params.max_position
    reducing_side = Side.SELL if inventory > 0 else Side.BUY
    wanted: list[Quote] = []
    for side in (Side.BUY, Side.SELL):
        if excess > 0 and side is not reducing_side:
            continue  # past target + threshold: do not add
        for layer in range(params.max_orders):
            distance_bps = params.spread_bps + layer * params.layer_step_bps
            offset = (shift_bps - distance_bps) if side is Side.BUY else (shift_bps + distance_bps)
            price = instrument.round_price(reference * (1 + offset / BPS), side)
            qty, reduce_only = params.quantity, False
            if excess > 0 and layer == 0:
                qty = max(excess, over_max)
                # Reduce-only only where it trades against the position we hold: with a
                # target away from zero, moving toward it may mean adding.
                reduce_only = not instrument.is_spot and (
                    (position > 0 and side is Side.SELL) or (position < 0 and side is Side.BUY)
                )
            qty = instrument.round_qty(qty)
            if qty >= instrument.min_qty and price > 0 and qty * price >= instrument.min_notional:
                wanted.append(Quote(side, price, qty, reduce_only))
    return wanted


class MarketMaker(Strategy[MarketMakerParams]):
    params_type: ClassVar[type[msgspec.Struct]] = MarketMakerParams

    def __init__(
        self, params: MarketMakerParams, topics: MarketTopics, instrument: Instrument
    ) -> None:
        super().__init__(params, topics)
        self.instrument = instrument
        self.own_mid: Decimal | None = None
        self.follow_mid: Decimal | None = None
        self.last_quote_s = float("-inf")
        self.last_reference: Decimal | None = None

    async def on_start(self) -> None:
        await super().on_start()
        self.topics.books.subscribe(self.ref)

    def validate_params(self, params: MarketMakerParams) -> None:
        if (params.venue, params.account, params.symbol) != (
            self.params.venue, self.params.account, self.params.symbol
        ):
            raise ParamsError("venue, account and symbol cannot change live (at `$.venue`)")

    def after_params_changed(self) -> None:
        self.last_quote_s = float("-inf")  # the next book requotes with the new parameters

    # ---- the hot path --------------------------------------------------------------------

    async def on_book_top(self, message: BookTop) -> None:
        params = self.params
        if message.symbol != params.symbol:
            return
        if message.venue == params.venue:
            self.own_mid = message.mid
        elif message.venue == params.follow_venue:
            self.follow_mid = message.mid
        else:
            return
        reference = self._reference()
        if reference is None or not self._should_requote(reference):
            return
        await self._requote(reference)

    async def after_fill(self, message: OrderFilled) -> None:
        self.last_quote_s = float("-inf")  # inventory moved: quotes should move with it

    def _reference(self) -> Decimal | None:
        own = self.own_mid
        if self.params.follow_venue is None or self.follow_mid is None:
            return own if self.params.follow_venue is None else None
        if own is None:
            return None
        band = own * self.params.max_divergence_bps / BPS
        return max(own - band, min(own + band, self.follow_mid))

    def _should_requote(self, reference: Decimal) -> bool:
        if trio.current_time() - self.last_quote_s >= self.params.interval_s:
            return True
        last = self.last_reference
        return last is not None and abs(reference - last) / last * BPS >= self.params.requote_bps

    async def _spot_inventory(
        self, reference: Decimal
    ) -> tuple[Decimal, Decimal] | tuple[None, None]:
        """Spot: (base balance, target base) to quote around, or (None, None) after sending
        a rebalancing taker order (quotes wait for the account to be back near its target)."""
        params, instrument = self.params, self.instrument
        gateway = self.registry.lookup(gateway_name(params.venue, params.account))
        balances = {b.asset: b.total for b in await gateway.ask(GetBalances())}
        base = balances.get(instrument.base, Decimal(0))
        quote_balance = balances.get(instrument.quote, Decimal(0))
        rebalance = spot_rebalance(base, quote_balance, reference, params, instrument)
        if rebalance is not None and not self.live_orders(params.venue, params.account,
                                                          params.symbol):
            await self.submit(params.venue, params.account, params.symbol, rebalance.side,
                              rebalance.qty, order_type=OrderType.MARKET, tif=TimeInForce.IOC)
            return None, None
        if rebalance is not None:
            for own in self.live_orders(params.venue, params.account, params.symbol):
                await self.cancel(own.intent.client_id)  # quotes down first, then rebalance
            return None, None
        return base, spot_target(base, quote_balance, reference, params)

    async def _requote(self, reference: Decimal) -> None:
        params = self.params
        self.last_quote_s = trio.current_time()
        self.last_reference = reference
        target = None
        if self.instrument.is_spot:
            position, target = await self._spot_inventory(reference)
            if position is None:
                return
        else:
            position = self.position(params.venue, params.account, params.symbol)
        wanted = quotes(reference, position, params, self.instrument, target)
        stale = []
        for own in self.live_orders(params.venue, params.account, params.symbol):
            intent = own.intent
            match = Quote(intent.side, intent.price or Decimal(0),
                          intent.qty - own.filled_qty, intent.reduce_only)
            if match in wanted:
                wanted.remove(match)  # keep it: same side, price, size
            else:
                stale.append(intent.client_id)
        # Stale quotes a new one would cross come down first (never trade with ourselves);
        # the rest after the new quotes: a cancel sent first queues ahead of every new order
        # at the gateway. The brief overlap is bounded: risk counts resting orders.
        crossed = [cid for cid in stale if _crossed_by(self.orders[cid].intent, wanted)]
        for client_id in crossed:
            await self.cancel(client_id)
        stale = [cid for cid in stale if cid not in crossed]
        for quote in wanted:
            await self.submit(
                params.venue, params.account, params.symbol, quote.side, quote.qty,
                quote.price, tif=TimeInForce.POST_ONLY, reduce_only=quote.reduce_only,
                expire_after_s=params.order_expire_s,
            )
        for client_id in stale:
            await self.cancel(client_id)


def build_market_maker(params: msgspec.Struct, context: StrategyContext) -> MarketMaker:
    assert isinstance(params, MarketMakerParams)
    return MarketMaker(params, context.topics, context.instruments[(params.venue, params.symbol)])


def _crossed_by(order: OrderIntent, wanted: list[Quote]) -> bool:
    """Whether a wanted quote on the other side would trade with this resting order."""
    price = order.price
    if price is None:
        return False
    return any(q.side is not order.side and crosses(q.side, q.price, price) for q in wanted)
