"""`strategy_decision`: per strategy, from a market event to its decision (orders handed to risk).

Each strategy runs as an actor under a real Supervisor, with stand-ins for what it talks to
(positions and gateways answer its start-up questions; risk is never reached: the strategy's
ref to risk is swapped for a recorder once it has started). Start: perf_counter_ns as the book
is published on the topic. End: perf_counter_ns as the strategy hands its first SubmitOrder to
risk. So the figure is one mailbox hop (topic → strategy) plus the strategy's own decision.

Each scenario alternates the market between two states that both call for new orders, one
event at a time, waiting until the decision arrived and every task is idle before the next.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

import msgspec
import trio
import trio.testing

from actors import Actor, ActorRef
from actors.feed import MarketTopics
from actors.messages import (
    POSITIONS,
    CancelOrder,
    GetOrders,
    GetPositions,
    OrderAccepted,
    OrderIntent,
    OrderUpdated,
    PositionView,
    StrategyPositions,
    SubmitOrder,
    gateway_name,
    quote_key,
)
from actors.strategies import STRATEGY_KINDS, MarketMakerParams, Strategy, StrategyContext
from exchanges import (
    BookTop,
    Instrument,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    VenueOrder,
)
from supervisor import BACKOFF_OFF, ChildSpec, Supervisor, SupervisorSpec

from ._stats import percentile_us

SAMPLES: Final = 3_000
WARMUP: Final = 300
TARGET_P50_US: Final = 50.0
BTC = Instrument(venue="bench", symbol="BTC-PERP", base="BTC", quote="USDT",
                 tick_size=Decimal("0.5"), step_size=Decimal("0.001"),
                 min_qty=Decimal("0.001"), min_notional=Decimal(5))


@dataclass
class Decisions:
    """Where the recorder notes each decision's time."""

    started_ns: int = 0
    latencies_ns: list[int] = field(default_factory=list)
    decided: trio.Event = field(default_factory=trio.Event)

    def arm(self) -> None:
        self.decided = trio.Event()
        self.started_ns = time.perf_counter_ns()

    def note(self) -> None:
        if not self.decided.is_set():
            self.latencies_ns.append(time.perf_counter_ns() - self.started_ns)
            self.decided.set()


class RecordingRisk:
    """Stands where the strategy's ref to risk stands: notes the hand-over, then answers as
    the gateway would once the venue took the order, so the strategy's own-order table stays
    the size it has in the daemon."""

    def __init__(self, decisions: Decisions, strategy: ActorRef) -> None:
        self.decisions = decisions
        self.strategy = strategy

    async def tell(self, message: object) -> None:
        if isinstance(message, SubmitOrder):
            self.decisions.note()
            self.strategy.tell_nowait(OrderAccepted(strategy="strategy",
                                                    order=_venue_order(message.intent)))


class Positions(Actor):
    async def on_get_positions(
        self, message: GetPositions
    ) -> list[PositionView] | StrategyPositions:
        return StrategyPositions(positions=[], recent_fill_keys=())


class Gateway(Actor):
    """Answers start-up questions; confirms every cancel, as the venue would."""

    async def on_get_orders(self, message: GetOrders) -> list[VenueOrder]:
        return []

    async def on_cancel_order(self, message: CancelOrder) -> None:
        cancelled = VenueOrder(
            venue=message.venue, account=message.account, client_id=message.client_id,
            venue_order_id=message.client_id, symbol=message.symbol, side=Side.BUY,
            order_type=OrderType.LIMIT, tif=TimeInForce.POST_ONLY, qty=Decimal(0), price=None,
            filled_qty=Decimal(0), status=OrderStatus.CANCELLED, reduce_only=False,
            ts_venue_ns=0,
        )
        await self.registry.lookup("strategy").tell(
            OrderUpdated(strategy="strategy", order=cancelled)
        )


def _venue_order(intent: OrderIntent) -> VenueOrder:
    return VenueOrder(
        venue=intent.venue, account=intent.account, client_id=intent.client_id,
        venue_order_id=intent.client_id, symbol=intent.symbol, side=intent.side,
        order_type=intent.order_type, tif=intent.tif, qty=intent.qty, price=intent.price,
        filled_qty=Decimal(0), status=OrderStatus.OPEN, reduce_only=intent.reduce_only,
        ts_venue_ns=0,
    )


@dataclass(frozen=True)
class Scenario:
    kind: str
    params: msgspec.Struct
    events: Callable[[int], list[BookTop]]
    """The market events of sample n; the last one is the one timed."""


def book(venue: str, mid: Decimal) -> BookTop:
    now = time.perf_counter_ns()
    return BookTop(venue=venue, symbol="BTC-PERP", bid=mid - Decimal("0.5"), bid_qty=Decimal(1),
                   ask=mid + Decimal("0.5"), ask_qty=Decimal(1), ts_venue_ns=now,
                   ts_local_ns=now)


def market_maker() -> Scenario:
    params = MarketMakerParams(
        venue="bench", account="mm", symbol="BTC-PERP", quantity=Decimal("0.01"),
        max_position=Decimal(1), spread_bps=Decimal(2), max_orders=2, interval_s=0.0,
    )
    return Scenario("market_maker", params,
                    lambda n: [book("bench", Decimal(60_000 + 12 * (n % 2)))])


SCENARIOS: Final[list[Callable[[], Scenario]]] = [market_maker]


async def measure(scenario: Scenario) -> Decisions:
    decisions = Decisions()
    topics = MarketTopics()
    instances: list[Strategy[Any]] = []
    context = StrategyContext(topics=topics, instruments={("bench", "BTC-PERP"): BTC})
    build = STRATEGY_KINDS[scenario.kind].build

    def make_strategy() -> Actor:
        instance = build(scenario.params, context)
        assert isinstance(instance, Strategy)
        instances.append(instance)
        return instance

    legs = scenario.params.legs()  # type: ignore[attr-defined]
    children = [ChildSpec(POSITIONS, Positions)] + [
        ChildSpec(gateway_name(leg.venue, leg.account), Gateway)
        for leg in {(leg.venue, leg.account): leg for leg in legs}.values()
    ] + [ChildSpec("risk", Positions), ChildSpec("strategy", make_strategy)]
    tree = Supervisor(SupervisorSpec("bench", children, backoff=BACKOFF_OFF))
    async with trio.open_nursery() as nursery:
        await nursery.start(tree.run)
        strategy_ref = tree.registry.lookup("strategy")
        instances[-1].risk = RecordingRisk(decisions, strategy_ref)  # type: ignore[assignment]
        for n in range(WARMUP + SAMPLES):
            events = scenario.events(n)
            for event in events[:-1]:
                topics.books.publish(quote_key(event.venue, event.symbol), event)
            await trio.testing.wait_all_tasks_blocked()
            decisions.arm()
            last = events[-1]
            topics.books.publish(quote_key(last.venue, last.symbol), last)
            with trio.fail_after(5):
                await decisions.decided.wait()
            await trio.testing.wait_all_tasks_blocked()
        tree.request_stop()
    decisions.latencies_ns = decisions.latencies_ns[WARMUP:]
    return decisions


async def run_strategy_decision() -> dict[str, Any]:
    result: dict[str, Any] = {}
    met = True
    for make in SCENARIOS:
        scenario = make()
        decisions = await measure(scenario)
        p50 = percentile_us(decisions.latencies_ns, 0.50)
        result[f"{scenario.kind}_p50_us"] = p50
        result[f"{scenario.kind}_p99_us"] = percentile_us(decisions.latencies_ns, 0.99)
        met = met and p50 <= TARGET_P50_US
    result["meets_targets"] = met
    return result
