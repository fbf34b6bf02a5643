"""Gateway: the only path to one venue account's order API.

Start: open the user stream first (so nothing is missed), reconcile the journal with the venue,
and only then report ready and take orders. Every restart does this.

Orders: placed with the strategy's client id; a transport failure is retried a bounded number
of times with the same id (idempotent); an unknown outcome (HTTP 503, a timeout) is settled by
asking the venue, never guessed. Venue rate limits are a token bucket: an order waits for a
token rather than being refused. When the venue refuses anyway (HTTP 429, or 418: the IP is
banned for ignoring 429s), the gateway goes quiet: for the venue's `Retry-After`, else a back-off
that doubles per refusal in a row (a ban starts at two minutes), new orders are rejected at once
as `rate_limited` without a request, so a strategy's requotes do not extend the ban; cancels are
still sent, because they take risk off. Orders may carry an expiry; the gateway cancels them
after it.

Events: venue order updates and fills arrive on the user stream. A fill is journaled before
anyone hears of it; then positions, risk and the strategy are told. Order records go to the
journal in the background: the venue is the truth for orders, and reconciliation adopts
anything the journal missed, so the hot path never waits for a commit.

Dead man's switch: where the venue has one (Aster countdownCancelAll), it is kept armed for
every traded symbol while the gateway lives, so the venue cancels our orders if the daemon dies.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, NoReturn

import trio

from actors import Actor, ActorNotFoundError, ActorNotRunningError, MailboxPolicy, Overflow
from exchanges import (
    AccountClient,
    Balance,
    Fill,
    FundingPayment,
    OrderOutcomeUnknownError,
    OrderRequest,
    OrderStatus,
    RateLimitedError,
    RejectReason,
    VenueError,
    VenueOrder,
    VenueRejectedError,
    VenueTransportError,
)

from ..journal import FillRecorded, FundingRecorded, JournalError, JournalRecord
from ..journal._service import JournalService
from ..messages import (
    POSITIONS,
    RISK,
    CancelAll,
    CancelOrder,
    FundingPaid,
    GetBalances,
    GetOrders,
    OpenOrder,
    OpenOrdersReconciled,
    OrderAccepted,
    OrderCancelFailed,
    OrderFilled,
    OrderIntent,
    OrderRejected,
    OrderUpdated,
    SubmitOrder,
    strategy_tag,
)
from ..risk import TokenBucket
from ._orders import OrderTracker
from ._reconcile import ReconcileReport, order_record, reconcile, venue_order

logger = logging.getLogger(__name__)

PLACE_ATTEMPTS: Final = 3
RETRY_DELAY_S: Final = 0.2
EXPIRY_TICK_S: Final = 0.25
STOP_CANCEL_S: Final = 2.5
STOP_FLUSH_S: Final = 1.5  # with STOP_CANCEL_S, inside the default 5 s shutdown
DEAD_MAN_COUNTDOWN_MS: Final = 120_000  # the venue cancels 2 min after our last re-arm
DEAD_MAN_REARM_S: Final = 30.0  # Aster's doc: re-arm every 30 s with 120 s
RECORD_COALESCE_S: Final = 0.005
RATE_LIMIT_BACKOFF_S: Final = 1.0
"""Quiet time after a 429 that named no Retry-After; doubles per refusal in a row."""
RATE_LIMIT_BACKOFF_MAX_S: Final = 60.0
_MAX_DOUBLINGS: Final = 10  # 2**10 s is past the cap already; more would only overflow
IP_BAN_BACKOFF_S: Final = 120.0
"""Aster bans for 2 minutes to 3 days (venues.md §1.9): never wait less than the least."""
STREAM_RETRY_MAX_S: Final = 10.0
STREAM_STABLE_S: Final = 60.0
"""A user stream that stayed up this long resets the reconnect back-off."""
SETTLE_RETRY_S: Final = 5.0
SETTLE_ATTEMPTS: Final = 60
"""An unknown outcome the venue cannot be asked about yet is asked again every 5 s, for up to
5 minutes; meanwhile the order stays pending (its client id taken, risk counting it)."""


@dataclass(frozen=True, slots=True)
class ExpiryTick:
    pass


@dataclass(frozen=True, slots=True)
class StreamReconnected:
    pass


@dataclass(frozen=True, slots=True)
class SettleOutcome:
    """Ask the venue again what became of an order whose placement had an unknown outcome."""

    intent: OrderIntent
    attempt: int


class _OutcomeUnsettled(Exception):
    """The venue could not be asked (rate limit, transport, outage) what became of an order."""


class Gateway(Actor):
    mailbox_policy = MailboxPolicy(capacity=8192, overflow=Overflow.BLOCK)

    def __init__(
        self,
        client: AccountClient,
        journal: JournalService,
        symbols: Sequence[str],
        *,
        orders_per_s: float = 20.0,
        order_burst: int = 40,
        cancel_on_stop: bool = True,
    ) -> None:
        self.client = client
        self.journal = journal
        self.symbols = tuple(symbols)
        self.cancel_on_stop = cancel_on_stop
        self.tracker = OrderTracker()
        self.bucket = TokenBucket(orders_per_s, order_burst)
        self.last_reconcile: ReconcileReport | None = None
        self.quiet_until_s = -math.inf
        """trio time until which new orders are refused locally (the venue rate-limited us)."""
        self._rate_limited_in_a_row = 0
        self._records_send, self._records_receive = trio.open_memory_channel[JournalRecord](
            math.inf
        )
        self._unwritten: list[JournalRecord] = []

    # ---- lifecycle -----------------------------------------------------------------------

    async def on_start(self) -> None:
        stream_open = trio.Event()
        self.spawn(self._user_stream, stream_open)
        self.spawn(self._record_in_background)
        await stream_open.wait()
        await self._reconcile()
        self.spawn(self._tick_expiries)
        self.spawn(self._keep_dead_man_armed)

    async def on_stop(self) -> None:
        # Orders first (money at risk), then what filled while the user stream was already
        # closed, then the records; all within the shutdown time.
        with trio.move_on_after(STOP_CANCEL_S, shield=True):
            if self.cancel_on_stop:
                try:
                    cancelled = await self.client.cancel_all()
                    logger.info("%s: cancelled %d orders on stop", self.name, len(cancelled))
                    for order in cancelled:
                        self._record(order_record(order, self._strategy_tracked(order)))
                except VenueError as exc:
                    logger.error("%s: cancel-all on stop failed: %s", self.name, exc)
            try:
                # The background tasks, the user stream among them, are cancelled before
                # on_stop: a fill in between would otherwise reach the journal (and positions,
                # which outlive a crashed gateway) only at the next start. The records go
                # first, so the orders just cancelled are not taken for vanished ones.
                await self._flush_records()
                await self._reconcile()
            except (VenueError, JournalError) as exc:
                logger.warning("%s: final reconcile on stop failed: %s", self.name, exc)
        with trio.move_on_after(STOP_FLUSH_S, shield=True):
            try:
                await self._flush_records()  # the background recorder is already cancelled
            except JournalError as exc:
                logger.error("%s: order records not flushed on stop: %s", self.name, exc)

    async def _reconcile(self) -> None:
        report = await reconcile(self.journal.journal, self.client, source=self.name,
                                 owner_of=self._owner_by_tag)
        self.last_reconcile = report
        strategies = {record.client_id: record.strategy for record in report.open_orders}
        for order in report.venue_open_orders:
            tracked = self.tracker.get(order.client_id)
            if tracked is None:
                self.tracker.adopt(order, strategies.get(order.client_id, "adopted"))
            else:
                self.tracker.apply(order)
        for filled in report.new_fills:
            await self._announce_fill(filled)
        for funding in report.new_funding:
            paid = FundingPaid(payment=funding.payment)
            await self._tell(POSITIONS, paid)
            await self._tell(RISK, paid)
        for closed in report.closed_orders:
            # Ended while we were not watching: whoever still thinks it rests must hear.
            self.tracker.forget(closed.client_id)
            updated = OrderUpdated(strategy=closed.strategy, order=venue_order(closed))
            await self._tell(RISK, updated)
            await self._tell(closed.strategy, updated)
        await self._tell(RISK, OpenOrdersReconciled(
            venue=self.client.venue, account=self.client.account,
            orders=tuple(
                OpenOrder(client_id=o.client_id, symbol=o.symbol, side=o.side, price=o.price,
                          remaining_qty=o.qty - o.filled_qty)
                for o in report.open_orders
            ),
        ))
        if not report.clean:
            logger.warning(
                "%s: reconciled: %d orders adopted, %d closed, %d fills recorded, "
                "%d position drifts", self.name, len(report.adopted_orders),
                len(report.closed_orders), len(report.new_fills), len(report.position_drift),
            )

    # ---- commands ------------------------------------------------------------------------

    async def on_submit_order(self, message: SubmitOrder) -> None:
        intent = message.intent
        if self.tracker.get(intent.client_id) is not None:
            await self._reject(intent, RejectReason.DUPLICATE_CLIENT_ID.value,
                               "client id already used")
            return
        if trio.current_time() < self.quiet_until_s:
            await self._reject(intent, RejectReason.RATE_LIMITED.value,
                               f"venue rate limit: quiet for another "
                               f"{self.quiet_until_s - trio.current_time():.1f} s")
            return
        await self._wait_for_rate_token()
        self.tracker.add(intent)
        try:
            order = await self._place(intent)
        except VenueRejectedError as exc:
            self.tracker.forget(intent.client_id)
            if isinstance(exc, RateLimitedError):
                self._go_quiet(exc)
            await self._reject(intent, exc.reason.value, str(exc))
            return
        except _OutcomeUnsettled as exc:
            logger.warning("%s: %s outcome unknown and not yet settled (%s); asking again in "
                           "%.0f s", self.name, intent.client_id, exc, SETTLE_RETRY_S)
            self.spawn(self._settle_later, SettleOutcome(intent=intent, attempt=1))
            return
        self._rate_limited_in_a_row = 0
        await self._settled(intent, order)

    async def on_settle_outcome(self, message: SettleOutcome) -> None:
        intent = message.intent
        tracked = self.tracker.get(intent.client_id)
        if tracked is None or tracked.order is not None:
            # Settled meanwhile: the user stream reported the order (its owner heard), or a
            # reconcile closed it.
            if tracked is not None and intent.expire_after_s is not None:
                tracked.expire_at_s = trio.current_time() + intent.expire_after_s
            return
        try:
            order = await self._find(intent)
        except _OutcomeUnsettled as exc:
            if message.attempt < SETTLE_ATTEMPTS:
                self.spawn(self._settle_later, SettleOutcome(intent=intent,
                                                             attempt=message.attempt + 1))
                return
            logger.error("%s: %s outcome still unknown after %d attempts: %s; the next "
                         "reconcile adopts it if the venue has it", self.name, intent.client_id,
                         message.attempt, exc)
            self.tracker.forget(intent.client_id)
            await self._reject(intent, "unknown_outcome_unresolved", str(exc))
            return
        await self._settled(intent, order)

    async def _settled(self, intent: OrderIntent, order: VenueOrder | None) -> None:
        """The venue's answer to a placement, direct or found after an unknown outcome."""
        if order is None:
            self.tracker.forget(intent.client_id)
            await self._reject(intent, "unknown_outcome_not_found",
                               "the venue has no trace of the order after an unknown outcome")
            return
        tracked = self.tracker.orders[intent.client_id]
        self.tracker.apply(order)
        if intent.expire_after_s is not None:
            tracked.expire_at_s = trio.current_time() + intent.expire_after_s
        self._record(order_record(order, intent.strategy))
        accepted = OrderAccepted(strategy=intent.strategy, order=order)
        await self._tell(RISK, accepted)
        await self._tell(intent.strategy, accepted)

    async def on_cancel_order(self, message: CancelOrder) -> None:
        tracked = self.tracker.get(message.client_id)
        if tracked is None or tracked.status.is_terminal:
            return
        try:
            order = await self.client.cancel_order(message.symbol, message.client_id)
        except VenueRejectedError as exc:
            if exc.reason is RejectReason.UNKNOWN_ORDER:
                return  # already gone: its final state arrives on the user stream
            if isinstance(exc, RateLimitedError):
                self._go_quiet(exc)
            logger.warning("%s: cancel %s refused: %s", self.name, message.client_id, exc)
            await self._tell(tracked.strategy, OrderCancelFailed(
                strategy=tracked.strategy, cancel=message, reason=exc.reason.value))
            return
        except (VenueTransportError, OrderOutcomeUnknownError) as exc:
            # If the venue did cancel it, the user stream (or the next reconcile) says so;
            # if not, its owner must know it still rests. Not worth pulling every order for.
            logger.warning("%s: cancel %s outcome unknown: %s", self.name, message.client_id,
                           exc)
            await self._tell(tracked.strategy, OrderCancelFailed(
                strategy=tracked.strategy, cancel=message, reason="outcome_unknown"))
            return
        await self._on_order_state(order)

    async def on_cancel_all(self, message: CancelAll) -> list[VenueOrder]:
        try:
            cancelled = await self.client.cancel_all(message.symbol)
        except (VenueTransportError, OrderOutcomeUnknownError) as exc:
            logger.error("%s: cancel-all outcome unknown: %s", self.name, exc)
            await self._reconcile()  # learn what is still open; the caller may ask again
            return []
        for order in cancelled:
            await self._on_order_state(order)
        return cancelled

    async def on_get_balances(self, message: GetBalances) -> list[Balance]:
        return await self.client.balances()

    async def on_get_orders(self, message: GetOrders) -> list[VenueOrder]:
        return [
            t.order for t in self.tracker.live()
            if t.order is not None and message.strategy in (None, t.strategy)
        ]

    # ---- venue events --------------------------------------------------------------------

    async def on_venue_order(self, message: VenueOrder) -> None:
        await self._on_order_state(message)

    async def on_fill(self, message: Fill) -> None:
        tracked = self.tracker.get(message.client_id)
        strategy = tracked.strategy if tracked is not None else await self._strategy_of(message)
        record = FillRecorded(fill=message, strategy=strategy)
        if await self.journal.journal.record(record):  # durable before anyone hears of it
            await self._announce_fill(record)

    async def on_funding_payment(self, message: FundingPayment) -> None:
        if await self.journal.journal.record(FundingRecorded(payment=message)):
            paid = FundingPaid(payment=message)
            await self._tell(POSITIONS, paid)
            await self._tell(RISK, paid)

    async def on_stream_reconnected(self, message: StreamReconnected) -> None:
        try:
            await self._reconcile()  # whatever happened while the stream was down
        except VenueError as exc:
            # A 503 or 429 here must not crash the gateway (its crash cancels every order):
            # ask again shortly; the stream is up meanwhile.
            logger.warning("%s: reconcile after reconnect failed: %s; again in %.0f s",
                           self.name, exc, SETTLE_RETRY_S)
            self.spawn(self._tell_later, StreamReconnected(), SETTLE_RETRY_S)

    async def on_expiry_tick(self, message: ExpiryTick) -> None:
        now = trio.current_time()
        for client_id, tracked in list(self.tracker.orders.items()):
            if tracked.expire_at_s is not None and now >= tracked.expire_at_s:
                tracked.expire_at_s = None
                if not tracked.status.is_terminal:
                    await self.on_cancel_order(CancelOrder(
                        venue=self.client.venue, account=self.client.account,
                        symbol=tracked.symbol, client_id=client_id,
                    ))
        self.tracker.prune_terminal()

    async def _on_order_state(self, order: VenueOrder) -> None:
        tracked = self.tracker.get(order.client_id)
        if tracked is None and order.status.is_terminal:
            return  # a late report of an order we finished with (and journaled) already
        if tracked is None:
            strategy = await self._strategy_of(order)
            tracked = self.tracker.adopt(order, strategy)
        elif not self.tracker.apply(order):
            return
        self._record(order_record(order, tracked.strategy))
        updated = OrderUpdated(strategy=tracked.strategy, order=order)
        await self._tell(RISK, updated)
        await self._tell(tracked.strategy, updated)

    async def _announce_fill(self, record: FillRecorded) -> None:
        filled = OrderFilled(strategy=record.strategy, fill=record.fill)
        await self._tell(POSITIONS, filled)
        await self._tell(RISK, filled)
        await self._tell(record.strategy, filled)

    # ---- placing -------------------------------------------------------------------------

    async def _place(self, intent: OrderIntent) -> VenueOrder | None:
        """The venue's order, or None when an unknown outcome turned out to be no order."""
        request = OrderRequest(
            client_id=intent.client_id, symbol=intent.symbol, side=intent.side,
            order_type=intent.order_type, qty=intent.qty, price=intent.price, tif=intent.tif,
            reduce_only=intent.reduce_only,
        )
        for attempt in range(1, PLACE_ATTEMPTS + 1):
            try:
                return await self.client.place_order(request)
            except VenueRejectedError as exc:
                if exc.reason is RejectReason.DUPLICATE_CLIENT_ID and attempt > 1:
                    return await self._find(intent)  # an earlier attempt did arrive
                raise
            except OrderOutcomeUnknownError:
                return await self._find(intent)
            except VenueTransportError as exc:
                # The request may have arrived and executed (a market order fills at once and
                # is then no longer "open", so a venue may not refuse its id twice): ask first.
                found = await self._find(intent)
                if found is not None:
                    return found
                if attempt == PLACE_ATTEMPTS:
                    logger.error("%s: %s not placed after %d attempts: %s", self.name,
                                 intent.client_id, attempt, exc)
                    return None
                await trio.sleep(RETRY_DELAY_S * attempt)
        raise AssertionError("unreachable")

    async def _find(self, intent: OrderIntent) -> VenueOrder | None:
        """Settle an unknown outcome by asking the venue: open, filled, or never there.

        Raises _OutcomeUnsettled when the venue cannot be asked: refusing the order then
        would let its strategy place again while the first may rest on the venue.
        """
        try:
            return await self.client.get_order(intent.symbol, intent.client_id)
        except VenueRejectedError as exc:
            if exc.reason is not RejectReason.UNKNOWN_ORDER:
                self._unsettled(exc)
        except VenueError as exc:
            self._unsettled(exc)
        try:
            venue_fills = await self.client.fills(intent.ts_created_ns - 60 * 10**9)
        except VenueError as exc:
            self._unsettled(exc)
        fills = [f for f in venue_fills if f.client_id == intent.client_id]
        for fill in fills:
            await self.on_fill(fill)
        return None if not fills else _filled_order(intent, fills, self.client)

    def _unsettled(self, exc: VenueError) -> NoReturn:
        if isinstance(exc, RateLimitedError):
            self._go_quiet(exc)
        raise _OutcomeUnsettled(str(exc)) from None

    async def _settle_later(self, message: SettleOutcome) -> None:
        await self._tell_later(message, max(SETTLE_RETRY_S,
                                            self.quiet_until_s - trio.current_time()))

    async def _tell_later(self, message: object, delay_s: float) -> None:
        await trio.sleep(delay_s)
        await self.ref.tell(message)

    def _go_quiet(self, refusal: RateLimitedError) -> None:
        """Stop sending new orders for as long as the venue asked, or a growing back-off."""
        self._rate_limited_in_a_row += 1
        doublings = min(self._rate_limited_in_a_row - 1, _MAX_DOUBLINGS)
        quiet_s = min(RATE_LIMIT_BACKOFF_MAX_S, RATE_LIMIT_BACKOFF_S * 2**doublings)
        if refusal.retry_after_s is not None:
            quiet_s = refusal.retry_after_s
        if refusal.ip_banned:
            quiet_s = max(quiet_s, IP_BAN_BACKOFF_S)
        self.quiet_until_s = max(self.quiet_until_s, trio.current_time() + quiet_s)
        logger.warning("%s: venue rate limit%s: no new orders for %.1f s", self.name,
                       " (IP banned)" if refusal.ip_banned else "", quiet_s)

    async def _wait_for_rate_token(self) -> None:
        """Pace to the venue's limit: wait for a token rather than be refused by the venue."""
        if self.bucket.take(trio.current_time()):
            return  # the usual case: no wait, not even a yield
        for _ in range(3):  # one wait is enough; float clocks get two more chances
            await trio.sleep(self.bucket.seconds_until_token(trio.current_time()))
            if self.bucket.take(trio.current_time()):
                return
        logger.warning("%s: rate bucket still empty after waiting; sending anyway", self.name)

    # ---- background ----------------------------------------------------------------------

    async def _user_stream(self, stream_open: trio.Event) -> None:
        """Keep the user stream open; each reconnect is followed by a reconcile. Reconnects
        back off (0.2 s doubling to 10 s) unless the last stream stayed up a minute: a
        venue refusing us right after each connect must not be asked 5 times a second."""
        first = True
        delay_s = RETRY_DELAY_S
        while True:
            opened_s = trio.current_time()
            try:
                async with self.client.stream_user() as stream:
                    stream_open.set()
                    if not first:
                        await self.ref.tell(StreamReconnected())
                    first = False
                    async for event in stream:
                        await self.ref.tell(event)
            except VenueError as exc:
                logger.warning("%s: user stream failed: %s", self.name, exc)
            if trio.current_time() - opened_s >= STREAM_STABLE_S:
                delay_s = RETRY_DELAY_S
            logger.warning("%s: user stream ended; reconnecting in %.1f s", self.name, delay_s)
            await trio.sleep(delay_s)
            delay_s = min(delay_s * 2, STREAM_RETRY_MAX_S)

    async def _record_in_background(self) -> None:
        while True:
            self._unwritten.append(await self._records_receive.receive())
            # Gather a few milliseconds of records into one commit: fewer commits, and less
            # of the writer thread's time competing with the hot path for the GIL.
            await trio.sleep(RECORD_COALESCE_S)
            self._drain_records()
            await self.journal.journal.record_many(self._unwritten)
            # Cleared only once written: if this task is cancelled first, on_stop writes them
            # again (order records are upserts, so a repeat changes nothing).
            self._unwritten = []

    async def _flush_records(self) -> None:
        self._drain_records()
        if self._unwritten:
            await self.journal.journal.record_many(self._unwritten)
            self._unwritten = []

    def _drain_records(self) -> None:
        while True:
            try:
                self._unwritten.append(self._records_receive.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                return

    async def _tick_expiries(self) -> None:
        while True:
            await trio.sleep(EXPIRY_TICK_S)
            await self.ref.tell(ExpiryTick())

    async def _keep_dead_man_armed(self) -> None:
        while True:
            for symbol in self.symbols:
                try:
                    if not await self.client.arm_cancel_all_after(symbol, DEAD_MAN_COUNTDOWN_MS):
                        return  # the venue has no such switch
                except VenueError as exc:
                    logger.error("%s: could not arm dead man's switch for %s: %s",
                                 self.name, symbol, exc)
            await trio.sleep(DEAD_MAN_REARM_S)

    # ---- helpers -------------------------------------------------------------------------

    def _strategy_tracked(self, order: VenueOrder) -> str:
        tracked = self.tracker.get(order.client_id)
        return "adopted" if tracked is None else tracked.strategy

    def _record(self, record: JournalRecord) -> None:
        self._records_send.send_nowait(record)

    async def _strategy_of(self, event: VenueOrder | Fill) -> str:
        known = await self.journal.journal.order(event.venue, event.account, event.client_id)
        if known is not None:
            return known.strategy
        return self._owner_by_tag(event.client_id) or "adopted"

    def _owner_by_tag(self, client_id: str) -> str | None:
        """The registered actor whose strategy tag begins `client_id`, if any."""
        for name in self.registry.names():
            if client_id.startswith(strategy_tag(name) + "-"):
                return name
        return None

    async def _reject(self, intent: OrderIntent, reason: str, detail: str) -> None:
        rejected = OrderRejected(intent=intent, reason=reason, detail=detail)
        await self._tell(RISK, rejected)
        await self._tell(intent.strategy, rejected)

    async def _tell(self, name: str, message: object) -> None:
        try:
            await self.registry.lookup(name).tell(message)
        except (ActorNotFoundError, ActorNotRunningError):
            logger.debug("%s: %s is gone; %s dropped", self.name, name, type(message).__name__)


def _filled_order(intent: OrderIntent, fills: list[Fill], client: AccountClient) -> VenueOrder:
    """What an order that left only fills behind must have been."""
    filled = sum((f.qty for f in fills), Decimal(0))
    return VenueOrder(
        venue=client.venue, account=client.account, client_id=intent.client_id,
        venue_order_id=fills[0].venue_order_id, symbol=intent.symbol, side=intent.side,
        order_type=intent.order_type, tif=intent.tif, qty=intent.qty, price=intent.price,
        filled_qty=filled,
        status=OrderStatus.FILLED if filled >= intent.qty else OrderStatus.EXPIRED,
        reduce_only=intent.reduce_only, ts_venue_ns=fills[-1].ts_venue_ns,
    )
