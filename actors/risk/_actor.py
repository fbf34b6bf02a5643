"""Risk: every order passes here on its way to a gateway; it decides by the pure checks.

It keeps the view the checks read: trading state (persisted in the journal: a daemon
restarted after a halt comes back halted), positions and today's PnL from fills, orders in
flight and resting (seeded from the journal, then from the gateways' events), reference
mids from the books topic. A daily loss beyond the limit halts trading.
"""

from __future__ import annotations

import json
import logging
import time
from decimal import Decimal
from typing import Final

import msgspec
import trio

from actors import Actor, ActorNotFoundError, ActorNotRunningError
from exchanges import (
    BookTop,
    Fill,
    FundingPayment,
    OrderType,
    PositionState,
    TimeInForce,
    VenueOrder,
)

from .._recent import RecentIds
from ..feed import MarketTopics
from ..journal import EventRecorded, TradingStateRecorded
from ..journal._service import JournalService
from ..messages import (
    CancelAll,
    CancelOrder,
    DenyReason,
    FundingPaid,
    GetTradingState,
    OpenOrdersReconciled,
    OrderAccepted,
    OrderDenied,
    OrderFilled,
    OrderRejected,
    OrderUpdated,
    SetTradingState,
    SubmitOrder,
    TradingState,
    TradingStateChanged,
    fill_key,
    funding_key,
    gateway_name,
    quote_key,
)
from ._checks import Denial, RestingOrder, RiskView, check_daily_loss, check_order
from ._config import RiskConfig

logger = logging.getLogger(__name__)

NS_PER_DAY: Final = 86_400 * 10**9


class Risk(Actor):
    def __init__(
        self,
        config: RiskConfig,
        journal: JournalService,
        topics: MarketTopics,
        bases: dict[tuple[str, str], str],
    ) -> None:
        self.config = config
        self.journal = journal
        self.topics = topics
        self.view = RiskView(bases=dict(bases))
        self.state_reason = ""
        self.state_actor = ""
        """Who set the trading state (a token name, "supervisor", or risk itself)."""
        self.state_ts_ns = 0
        self._pnl_positions: dict[tuple[str, str, str], PositionState] = {}
        self._pnl_day = 0
        self.denials = 0
        self.applied = RecentIds()  # fills and funding already counted (see actors._recent)

    async def on_start(self) -> None:
        journal = self.journal.journal
        latest = await journal.trading_state()
        if latest is not None:
            self.view.state = TradingState(latest.state)
            self.state_reason = latest.reason
            self.state_actor, self.state_ts_ns = latest.actor, latest.ts_ns
        self._pnl_day = time.time_ns() // NS_PER_DAY
        for recorded in await journal.fills():
            if self.applied.add(fill_key(recorded.fill)):
                self._apply_fill(recorded.fill)
        for funding in await journal.funding():
            if self.applied.add(funding_key(funding.payment)):
                self._apply_funding(funding.payment)
        for order in await journal.open_orders():
            self.view.resting.setdefault((order.venue, order.account), {})[order.client_id] = (
                RestingOrder(order.symbol, order.side, order.price, order.qty - order.filled_qty)
            )
        self.topics.books.subscribe(self.ref)

    # ---- the hot path --------------------------------------------------------------------

    async def on_submit_order(self, message: SubmitOrder) -> None:
        intent = message.intent
        denial = check_order(intent, self.view, self.config, trio.current_time())
        if denial is not None:
            await self._deny(message, denial)
            return
        rests = intent.order_type is OrderType.LIMIT and intent.tif is not TimeInForce.IOC
        self.view.resting.setdefault((intent.venue, intent.account), {})[intent.client_id] = (
            RestingOrder(intent.symbol, intent.side, intent.price, intent.qty, rests)
        )
        try:
            gateway = self.registry.lookup(gateway_name(intent.venue, intent.account))
            await gateway.tell(message)
        except (ActorNotFoundError, ActorNotRunningError) as exc:
            self._forget(intent.venue, intent.account, intent.client_id)
            await self._deny(message, Denial(DenyReason.UNKNOWN_ACCOUNT, str(exc)))

    async def on_book_top(self, message: BookTop) -> None:
        self.view.references[quote_key(message.venue, message.symbol)] = (
            message.mid, trio.current_time()
        )

    # ---- what the gateways report --------------------------------------------------------

    async def on_order_accepted(self, message: OrderAccepted) -> None:
        self._track(message.order.venue, message.order.account, message.order.client_id,
                    message.order)

    async def on_order_updated(self, message: OrderUpdated) -> None:
        self._track(message.order.venue, message.order.account, message.order.client_id,
                    message.order)

    async def on_open_orders_reconciled(self, message: OpenOrdersReconciled) -> None:
        self.view.resting[(message.venue, message.account)] = {
            order.client_id: RestingOrder(order.symbol, order.side, order.price,
                                          order.remaining_qty)
            for order in message.orders
        }

    async def on_order_rejected(self, message: OrderRejected) -> None:
        self._forget(message.intent.venue, message.intent.account, message.intent.client_id)

    async def on_order_filled(self, message: OrderFilled) -> None:
        if self.applied.add(fill_key(message.fill)):
            self._apply_fill(message.fill)
            await self._halt_on_daily_loss()

    async def on_funding_paid(self, message: FundingPaid) -> None:
        if self.applied.add(funding_key(message.payment)):
            self._apply_funding(message.payment)
            await self._halt_on_daily_loss()

    async def on_cancel_order(self, message: CancelOrder) -> None:
        """Cancels take the submits' path, so a cancel never overtakes its own order. The order
        stays crossable until the venue confirms it ended: a cancel can fail, and a sibling
        account's orders go through another gateway, in no order with this cancel."""
        await self._to_gateway(message.venue, message.account, message)

    def _apply_funding(self, payment: FundingPayment) -> None:
        if payment.ts_venue_ns // NS_PER_DAY == self._pnl_day:
            self.view.daily_pnl += payment.amount

    # ---- trading state -------------------------------------------------------------------

    async def on_set_trading_state(self, message: SetTradingState) -> TradingStateChanged:
        return await self._set_state(message.state, message.reason, message.actor)

    async def on_get_trading_state(self, message: GetTradingState) -> TradingStateChanged:
        return TradingStateChanged(state=self.view.state, reason=self.state_reason,
                                   actor=self.state_actor, ts_ns=self.state_ts_ns)

    async def _set_state(self, state: TradingState, reason: str, actor: str) -> TradingStateChanged:
        # The state changes before the journal write returns: from this instant risk
        # denies by it. The write makes it survive a restart.
        self.view.state = state
        self.state_reason = reason
        now_ns = time.time_ns()
        self.state_actor, self.state_ts_ns = actor, now_ns
        await self.journal.journal.record(
            TradingStateRecorded(ts_ns=now_ns, state=state.value, reason=reason, actor=actor)
        )
        logger.warning("trading state %s by %s: %s", state.value, actor, reason)
        return TradingStateChanged(state=state, reason=reason, actor=actor, ts_ns=now_ns)

    async def _halt_on_daily_loss(self) -> None:
        denial = check_daily_loss(self.view.daily_pnl, self.config)
        if denial is not None and self.view.state is not TradingState.HALTED:
            await self._set_state(TradingState.HALTED, denial.detail, self.name)
            # Halted means nothing new trades; what already rests must come down too.
            for venue, account in list(self.view.resting):
                await self._to_gateway(venue, account, CancelAll(venue=venue, account=account))

    async def _to_gateway(self, venue: str, account: str, message: object) -> None:
        try:
            await self.registry.lookup(gateway_name(venue, account)).tell(message)
        except (ActorNotFoundError, ActorNotRunningError) as exc:
            logger.warning("%s: %s not delivered: %s", self.name, type(message).__name__, exc)

    # ---- bookkeeping ---------------------------------------------------------------------

    def _apply_fill(self, fill: Fill) -> None:
        key = (fill.venue, fill.account, fill.symbol)
        self.view.positions[key] = self.view.position(*key) + fill.qty * fill.side.sign
        state = self._pnl_positions.setdefault(key, PositionState())
        realized = state.apply_fill(fill.side, fill.qty, fill.price)
        day = fill.ts_venue_ns // NS_PER_DAY
        if day > self._pnl_day:
            self._pnl_day, self.view.daily_pnl = day, Decimal(0)
        if day == self._pnl_day:
            self.view.daily_pnl += realized - fill.fee

    def _track(self, venue: str, account: str, client_id: str, order: VenueOrder) -> None:
        if order.status.is_terminal:
            self._forget(venue, account, client_id)
            return
        rests = order.order_type is OrderType.LIMIT and order.tif is not TimeInForce.IOC
        self.view.resting.setdefault((venue, account), {})[client_id] = RestingOrder(
            order.symbol, order.side, order.price, order.qty - order.filled_qty, rests
        )

    def _forget(self, venue: str, account: str, client_id: str) -> None:
        self.view.resting.get((venue, account), {}).pop(client_id, None)

    async def _deny(self, message: SubmitOrder, denial: Denial) -> None:
        self.denials += 1
        intent = message.intent
        denied = OrderDenied(intent=intent, reason=denial.reason, detail=denial.detail)
        self.spawn(self._journal_denial, denied)
        try:
            await self.registry.lookup(intent.strategy).tell(denied)
        except (ActorNotFoundError, ActorNotRunningError):
            logger.info("denied %s for %s, which is gone: %s", intent.client_id,
                        intent.strategy, denial.detail)

    async def _journal_denial(self, denied: OrderDenied) -> None:
        # Off the hot path: the strategy hears at once; the record follows.
        detail = json.dumps(msgspec.to_builtins(denied), default=str)
        await self.journal.journal.record(EventRecorded(
            ts_ns=time.time_ns(), kind="risk_denied", source=self.name, detail=detail,
        ))
