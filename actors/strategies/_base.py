"""Strategy: the base every strategy actor builds on.

What a strategy does is its own; what every strategy needs is here: client ids that are unique
across restarts, its orders and fills as the gateway reports them, its position, submitting
through risk and cancelling through the gateway, parameters that can be replaced live
(validated whole, a rejected update changes nothing), and pulling its quotes when it stops.

On start it cancels orders a previous instance left resting, and re-reads its position from
the positions actor: a restarted strategy starts from the truth, not from zero.
"""

from __future__ import annotations

import logging
import math
import string
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar, Final, Generic, TypeVar

import msgspec
import trio

from actors import Actor, ActorNotFoundError, ActorNotRunningError, ActorRef, MailboxFullError
from exchanges import OrderStatus, OrderType, Side, TimeInForce, VenueOrder

from .._recent import RecentIds
from ..feed import MarketTopics
from ..messages import (
    POSITIONS,
    RISK,
    CancelOrder,
    GetOrders,
    GetParams,
    GetPositions,
    OrderAccepted,
    OrderCancelFailed,
    OrderDenied,
    OrderFilled,
    OrderIntent,
    OrderRejected,
    OrderUpdated,
    ParamsReply,
    SubmitOrder,
    UpdateParams,
    fill_key,
    gateway_name,
    strategy_tag,
)

logger = logging.getLogger(__name__)

P = TypeVar("P", bound=msgspec.Struct)

STOP_CANCEL_S: Final = 3.0
_ID_ALPHABET: Final = string.digits + string.ascii_lowercase


class ParamsError(ValueError):
    """An update that does not validate; names the field and the reason."""


@dataclass
class OwnOrder:
    intent: OrderIntent
    status: OrderStatus = OrderStatus.PENDING
    filled_qty: Decimal = Decimal(0)
    cancel_sent: bool = False

    @property
    def live(self) -> bool:
        return not self.status.is_terminal


class Strategy(Actor, Generic[P]):
    params_type: ClassVar[type[msgspec.Struct]]

    def __init__(self, params: P, topics: MarketTopics) -> None:
        self.params = params
        self.topics = topics
        self.orders: dict[str, OwnOrder] = {}
        self.positions: dict[tuple[str, str, str], Decimal] = {}
        self.risk: ActorRef | None = None
        self.applied = RecentIds()
        self._id_prefix = ""
        self._id_seq = 0

    # ---- lifecycle -----------------------------------------------------------------------

    async def on_start(self) -> None:
        self._id_prefix = _client_id_prefix(self.name)
        self.risk = self.registry.lookup(RISK)
        snapshot = await self.registry.lookup(POSITIONS).ask(GetPositions(strategy=self.name))
        for view in snapshot.positions:
            self.positions[(view.venue, view.account, view.symbol)] = view.qty
        self.applied = RecentIds(snapshot.recent_fill_keys)
        for venue, account in self.accounts():
            gateway = self.registry.lookup(gateway_name(venue, account))
            for order in await gateway.ask(GetOrders(strategy=self.name)):
                await gateway.tell(CancelOrder(venue=venue, account=account,
                                               symbol=order.symbol, client_id=order.client_id))

    async def on_stop(self) -> None:
        with trio.move_on_after(STOP_CANCEL_S, shield=True):
            for client_id in [cid for cid, own in self.orders.items() if own.live]:
                await self.cancel(client_id)

    def accounts(self) -> list[tuple[str, str]]:
        """The (venue, account) pairs this strategy trades, from its parameters' legs."""
        legs = self.params.legs()  # type: ignore[attr-defined]
        return sorted({(leg.venue, leg.account) for leg in legs})

    # ---- orders --------------------------------------------------------------------------

    def new_client_id(self) -> str:
        """Unique across restarts and ≤ 36 chars of [A-Za-z0-9_-] (Aster's rule)."""
        self._id_seq += 1
        return f"{self._id_prefix}{_base36(self._id_seq)}"

    async def submit(
        self, venue: str, account: str, symbol: str, side: Side, qty: Decimal,
        price: Decimal | None = None, *, order_type: OrderType = OrderType.LIMIT,
        tif: TimeInForce = TimeInForce.GTC, reduce_only: bool = False,
        expire_after_s: float | None = None,
    ) -> str:
        assert self.risk is not None
        intent = OrderIntent(
            client_id=self.new_client_id(), strategy=self.name, venue=venue, account=account,
            symbol=symbol, side=side, order_type=order_type, qty=qty, price=price, tif=tif,
            reduce_only=reduce_only, expire_after_s=expire_after_s,
            ts_created_ns=time.time_ns(),
        )
        self.orders[intent.client_id] = OwnOrder(intent)
        try:
            await self.risk.tell(SubmitOrder(intent=intent))
        except (ActorNotFoundError, ActorNotRunningError, MailboxFullError) as exc:
            # Risk is restarting (its branch is): the order was not sent. Not a reason to
            # crash the strategy; it decides again on the next event.
            logger.warning("%s: %s not sent: %s", self.name, intent.client_id, exc)
            await self._end(intent.client_id, OrderStatus.REJECTED, "risk_unavailable")
        return intent.client_id

    async def cancel(self, client_id: str) -> None:
        own = self.orders.get(client_id)
        if own is None or not own.live or own.cancel_sent:
            return
        own.cancel_sent = True
        intent = own.intent
        await self._send_cancel(CancelOrder(venue=intent.venue, account=intent.account,
                                            symbol=intent.symbol, client_id=client_id))

    async def _send_cancel(self, cancel: CancelOrder) -> None:
        # Through risk, the way the order went: a cancel sent straight to the gateway could
        # overtake its own order there, be dropped as unknown, and leave the order resting.
        try:
            await self.registry.lookup(RISK).tell(cancel)
        except (ActorNotFoundError, ActorNotRunningError):
            try:  # risk is down: the gateway directly is better than no cancel at all
                await self.registry.lookup(gateway_name(cancel.venue, cancel.account)).tell(
                    cancel
                )
            except (ActorNotFoundError, ActorNotRunningError):
                logger.warning("%s: cannot cancel %s: no risk, no gateway", self.name,
                               cancel.client_id)

    def live_orders(self, venue: str, account: str, symbol: str) -> list[OwnOrder]:
        return [o for o in self.orders.values() if o.live and not o.cancel_sent
                and (o.intent.venue, o.intent.account, o.intent.symbol) == (venue, account, symbol)]

    def position(self, venue: str, account: str, symbol: str) -> Decimal:
        return self.positions.get((venue, account, symbol), Decimal(0))

    # ---- what the gateway and risk report ------------------------------------------------

    async def on_order_accepted(self, message: OrderAccepted) -> None:
        order = message.order
        own = self.orders.get(order.client_id)
        if own is None:
            await self._cancel_stranger(order)
            return
        await self._update(order)
        await self.after_order_accepted(own, order)

    async def on_order_updated(self, message: OrderUpdated) -> None:
        if message.order.client_id not in self.orders:
            await self._cancel_stranger(message.order)
            return
        await self._update(message.order)

    async def _cancel_stranger(self, order: VenueOrder) -> None:
        """Ours by attribution, unknown to this instance (a predecessor's, or adopted by
        reconciliation): nothing may rest that no strategy is watching."""
        if not order.status.is_terminal:
            await self._send_cancel(CancelOrder(venue=order.venue, account=order.account,
                                                symbol=order.symbol, client_id=order.client_id))

    async def on_order_rejected(self, message: OrderRejected) -> None:
        await self._end(message.intent.client_id, OrderStatus.REJECTED, message.reason)

    async def on_order_denied(self, message: OrderDenied) -> None:
        logger.debug("%s: %s denied by risk: %s", self.name, message.intent.client_id,
                     message.detail)
        await self._end(message.intent.client_id, OrderStatus.REJECTED, message.reason.value)

    async def on_order_cancel_failed(self, message: OrderCancelFailed) -> None:
        own = self.orders.get(message.cancel.client_id)
        if own is not None and own.live:
            own.cancel_sent = False  # live again: the next decision (or on_stop) cancels anew
            logger.warning("%s: cancel of %s failed (%s); it may still rest", self.name,
                           message.cancel.client_id, message.reason)

    async def on_order_filled(self, message: OrderFilled) -> None:
        fill = message.fill
        if not self.applied.add(fill_key(fill)):
            return  # queued for the previous instance and already in the positions it read
        key = (fill.venue, fill.account, fill.symbol)
        self.positions[key] = self.positions.get(key, Decimal(0)) + fill.qty * fill.side.sign
        await self.after_fill(message)

    async def after_fill(self, message: OrderFilled) -> None:
        """Hook: a fill of ours arrived (position already updated)."""

    async def after_order_accepted(self, own: OwnOrder, order: VenueOrder) -> None:
        """Hook: the venue took one of our orders (it may already be filled or expired)."""

    async def after_order_ended(self, own: OwnOrder, reason: str) -> None:
        """Hook, once per order: it reached a final state (`own.status`: filled, cancelled,
        expired, or rejected, which covers risk's denials and the venue's refusals; `reason`
        says which). Fills may still be arriving for a filled order; positions follow fills."""

    async def _update(self, order: VenueOrder) -> None:
        own = self.orders.get(order.client_id)
        if own is None:
            return
        own.status, own.filled_qty = order.status, order.filled_qty
        if order.status.is_terminal:
            del self.orders[order.client_id]
            await self.after_order_ended(own, order.reason or order.status.value)

    async def _end(self, client_id: str, status: OrderStatus, reason: str) -> None:
        own = self.orders.pop(client_id, None)
        if own is not None:
            own.status = status
            await self.after_order_ended(own, reason)

    # ---- parameters ----------------------------------------------------------------------

    async def on_update_params(self, message: UpdateParams) -> ParamsReply:
        """Validate the whole merged set; apply it all or nothing. Never crashes the actor."""
        merged = {**msgspec.to_builtins(self.params), **message.params}
        try:
            params = msgspec.convert(merged, type(self.params), strict=False)
            check_finite(params)
            self.validate_params(params)
        except Exception as exc:  # any failed check is a rejection, never a crash
            return ParamsReply(params=msgspec.to_builtins(self.params),
                               schema=msgspec.json.schema(type(self.params)),
                               accepted=False, error=str(exc))
        if not message.dry_run:
            self.params = params
            self.after_params_changed()
        return self._params_reply(params)

    def validate_params(self, params: P) -> None:
        """Hook: cross-field rules a schema cannot state; raise ParamsError naming the field."""

    async def on_get_params(self, message: GetParams) -> ParamsReply:
        return self._params_reply(self.params)

    def after_params_changed(self) -> None:
        """Hook: new parameters are in place; applied at the next decision."""

    def _params_reply(self, params: msgspec.Struct) -> ParamsReply:
        return ParamsReply(params=msgspec.to_builtins(params),
                           schema=msgspec.json.schema(type(params)))


def check_finite(params: msgspec.Struct) -> None:
    """Decimal accepts "NaN" and "Infinity"; no parameter may be either."""
    for name in params.__struct_fields__:
        value = getattr(params, name)
        if isinstance(value, (Decimal, float)) and not math.isfinite(value):
            raise ParamsError(f"{name} must be a finite number, got {value} (at `$.{name}`)")


def _client_id_prefix(name: str) -> str:
    # Milliseconds since the epoch, base 36: a restarted instance never reuses an id.
    return f"{strategy_tag(name)}-{_base36(time.time_ns() // 1_000_000)}-"


def _base36(number: int) -> str:
    digits = []
    while True:
        number, rest = divmod(number, 36)
        digits.append(_ID_ALPHABET[rest])
        if number == 0:
            return "".join(reversed(digits))

