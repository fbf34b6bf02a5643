"""Hedge: the funding-window rule and the cycle's state machine as pure functions, then the
whole daemon on MockClock with a still synthetic market (no drift, no basis), so the maker
fills come from the paper venue's trade flow and every price is known in advance.

The venues' ledgers are the truth: every maker fill on paper-a must be matched by an equal,
opposite taker fill on paper-b (or, when paper-b refuses, by an unwind on paper-a).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio
from trio.testing import MockClock

from actors.messages import GetParams, OrderIntent, ParamsReply, SubmitOrder, UpdateParams
from actors.risk import RiskConfig
from actors.strategies.hedge import (
    CancelMaker,
    Correct,
    Cycle,
    CycleLeg,
    FundingClock,
    HedgeParams,
    MakerOrder,
    Observation,
    Phase,
    Quote,
    Role,
    decide,
    maker_price,
    may_start_cycle,
)
from exchanges import (
    AccountClient,
    BookTop,
    Fill,
    Instrument,
    Liquidity,
    OrderRequest,
    OrderType,
    Side,
    TimeInForce,
    VenueOrder,
)
from exchanges.paper import SyntheticMarket
from supervisor import ChildStarted
from supervisor._config import DaemonConfig, StrategyConfig
from tests.faults import FaultyAccount
from tests.trading import RunningDaemon, paper_config, running_daemon

MAKER, HEDGE, ACCOUNT, SYMBOL, NAME = "paper-a", "paper-b", "hedge", "BTC-PERP", "hedge-btc"
MID = Decimal(60_000)  # the still market's mid on both venues
MINUTE_NS = 60 * 10**9

PARAMS: dict[str, Any] = {
    "maker_venue": MAKER, "maker_account": ACCOUNT, "hedge_venue": HEDGE,
    "hedge_account": ACCOUNT, "symbol": SYMBOL, "quantity": "0.01",
    "max_unhedged_qty": "0.01", "offset_percent": "0.001", "first_wait_s": 5.0,
    "between_legs_sleep_s": 2.0, "cycle_sleep_s": 3.0, "stop_before_funding_minutes": 0.0,
    "hedge_retry_s": 0.5, "hedge_max_attempts": 2,
}
BTC = Instrument(venue=MAKER, symbol=SYMBOL, base="BTC", quote="USDT", tick_size=Decimal("0.5"),
                 step_size=Decimal("0.001"), min_qty=Decimal("0.001"), min_notional=Decimal(5))


def params(**changes: Any) -> HedgeParams:
    return msgspec.convert({**PARAMS, **changes}, HedgeParams, strict=False)


def seen(**changes: Any) -> Observation:
    values: dict[str, Any] = {
        "now_s": 100.0, "exposure": Decimal(0), "maker_position": Decimal(0), "pending": False,
        "failures": 0, "retry_at_s": -math.inf, "maker_order": None, "cycle_allowed": True,
        "quote_ready": True,
    }
    return Observation(**{**values, **changes})


def d(text: str | int) -> Decimal:
    return Decimal(text)


# ---- the funding window ----------------------------------------------------------------------


def test_may_start_cycle_when_one_ns_before_window_then_true_and_from_window_start_false() -> None:
    funding_ns = 10_000 * MINUTE_NS
    window_start = funding_ns - 10 * MINUTE_NS
    assert may_start_cycle(funding_ns, window_start - 1, 10.0)
    assert not may_start_cycle(funding_ns, window_start, 10.0)
    assert not may_start_cycle(funding_ns, funding_ns - 1, 10.0)


def test_may_start_cycle_when_funding_unknown_or_already_passed_then_false() -> None:
    assert not may_start_cycle(None, 0, 10.0)
    # Funding time passed and the venue has not said the next one yet: wait for it.
    assert not may_start_cycle(5 * MINUTE_NS, 5 * MINUTE_NS, 0.0)
    assert may_start_cycle(5 * MINUTE_NS, 5 * MINUTE_NS - 1, 0.0)


def test_funding_clock_when_time_passes_then_reads_the_venue_clock_forward() -> None:
    clock = FundingClock(next_funding_ns=100 * MINUTE_NS, venue_ns=90 * MINUTE_NS, seen_s=50.0)
    assert clock.venue_now_ns(50.0 + 60.0) == 91 * MINUTE_NS
    assert may_start_cycle(clock.next_funding_ns, clock.venue_now_ns(50.0 + 59.0), 9.0)
    assert not may_start_cycle(clock.next_funding_ns, clock.venue_now_ns(50.0 + 60.0), 9.0)


# ---- the state machine -----------------------------------------------------------------------


def test_decide_when_idle_and_allowed_then_cycle_starts_with_leg_one_quote() -> None:
    decision = decide(Cycle(), seen(), params(), BTC)
    assert decision.cycle.phase is Phase.QUOTING and decision.cycle.leg is CycleLeg.OPEN
    assert decision.action == Quote(Side.BUY, d("0.01"), reduce_only=False)


@pytest.mark.parametrize("blocked", [
    {"cycle_allowed": False},  # inside the funding window
    {"quote_ready": False},  # no fresh book
    {"now_s": 99.0},  # cycle_sleep_s not over
])
def test_decide_when_idle_and_blocked_then_no_cycle_starts(blocked: dict[str, Any]) -> None:
    decision = decide(Cycle(Phase.IDLE, CycleLeg.NONE, 100.0), seen(**blocked), params(), BTC)
    assert decision.cycle.phase is Phase.IDLE and decision.cycle.leg is CycleLeg.NONE
    assert decision.action is None


def test_decide_when_maker_fills_then_hedges_at_once_on_hedge_venue() -> None:
    quoting = Cycle(Phase.QUOTING, CycleLeg.OPEN, 90.0)
    decision = decide(quoting, seen(exposure=d("0.01"), maker_position=d("0.01"),
                                    maker_order=MakerOrder(99.0, cancelling=False)), params(), BTC)
    assert decision.cycle.phase is Phase.HEDGING and decision.cycle.leg is CycleLeg.OPEN
    assert decision.action == Correct(Role.HEDGE, Side.SELL, d("0.01"))


def test_decide_when_fill_lands_while_maker_is_being_cancelled_then_still_hedged() -> None:
    requoting = Cycle(Phase.REQUOTING, CycleLeg.OPEN, 90.0)
    decision = decide(requoting, seen(exposure=d("0.004"), maker_position=d("0.004"),
                                      maker_order=MakerOrder(90.0, cancelling=True)),
                      params(), BTC)
    assert decision.action == Correct(Role.HEDGE, Side.SELL, d("0.004"))


def test_decide_when_hedge_pending_then_nothing_else_happens() -> None:
    # No maker order, leg 1 unfinished, hedged by positions: still nothing until it settles.
    decision = decide(Cycle(Phase.HEDGING, CycleLeg.OPEN, 90.0), seen(pending=True), params(),
                      BTC)
    assert decision.cycle.phase is Phase.HEDGING and decision.action is None


def test_decide_when_hedge_filled_partly_then_rest_retried_as_taker() -> None:
    decision = decide(Cycle(Phase.HEDGING, CycleLeg.OPEN, 90.0),
                      seen(exposure=d("0.004"), maker_position=d("0.01")), params(), BTC)
    assert decision.action == Correct(Role.HEDGE, Side.SELL, d("0.004"))


def test_decide_when_hedge_failed_then_waits_retry_then_unwinds_after_max_attempts() -> None:
    hedging = Cycle(Phase.HEDGING, CycleLeg.OPEN, 90.0)
    exposed = {"exposure": d("0.01"), "maker_position": d("0.01")}
    assert decide(hedging, seen(failures=1, retry_at_s=100.5, **exposed), params(),
                  BTC).action is None
    assert decide(hedging, seen(failures=1, **exposed), params(), BTC).action == Correct(
        Role.HEDGE, Side.SELL, d("0.01"))
    unwind = decide(hedging, seen(failures=2, **exposed), params(), BTC)
    assert unwind.action == Correct(Role.UNWIND, Side.SELL, d("0.01"))
    assert unwind.cycle.unwound
    # After as many failed unwinds, back to the hedge venue: whichever works ends it.
    assert decide(hedging, seen(failures=4, **exposed), params(), BTC).action == Correct(
        Role.HEDGE, Side.SELL, d("0.01"))


def test_decide_when_exposure_beyond_limit_then_unwound_on_maker_venue_first() -> None:
    decision = decide(Cycle(), seen(exposure=d("-0.03"), maker_position=d("-0.03")), params(),
                      BTC)
    assert decision.action == Correct(Role.UNWIND, Side.BUY, d("0.03"))


def test_decide_when_flat_after_unwind_then_cycle_ends_and_sleeps() -> None:
    unwound = Cycle(Phase.HEDGING, CycleLeg.OPEN, 90.0, unwound=True)
    live = decide(unwound, seen(maker_order=MakerOrder(99.0, cancelling=False)), params(), BTC)
    assert live.action == CancelMaker()  # no more maker fills the hedge venue would refuse
    flat = decide(unwound, seen(), params(), BTC)
    assert flat.cycle == Cycle(Phase.IDLE, CycleLeg.NONE, 103.0) and flat.action is None
    # The hedge venue refusing cycle after cycle: each wait doubles, up to 64 cycle sleeps.
    assert decide(unwound, seen(unwound_cycles=2), params(), BTC).cycle.wait_until_s == 112.0
    assert decide(unwound, seen(unwound_cycles=9), params(), BTC).cycle.wait_until_s == 292.0


def test_decide_when_maker_unfilled_past_first_wait_then_cancelled_for_requote() -> None:
    quoting = Cycle(Phase.QUOTING, CycleLeg.OPEN, 90.0)
    young = decide(quoting, seen(maker_order=MakerOrder(95.5, cancelling=False)), params(), BTC)
    assert young.cycle.phase is Phase.QUOTING and young.action is None
    old = decide(quoting, seen(maker_order=MakerOrder(95.0, cancelling=False)), params(), BTC)
    assert old.cycle.phase is Phase.REQUOTING and old.action == CancelMaker()
    gone = decide(old.cycle, seen(), params(), BTC)
    assert gone.cycle.phase is Phase.QUOTING and gone.action == Quote(Side.BUY, d("0.01"), False)


def test_decide_when_leg_one_partly_filled_then_requotes_the_rest() -> None:
    decision = decide(Cycle(Phase.REQUOTING, CycleLeg.OPEN, 90.0),
                      seen(maker_position=d("0.004")), params(), BTC)
    assert decision.action == Quote(Side.BUY, d("0.006"), reduce_only=False)


def test_decide_when_leg_one_done_then_between_legs_then_leg_two_reverses() -> None:
    done = decide(Cycle(Phase.HEDGING, CycleLeg.OPEN, 90.0), seen(maker_position=d("0.01")),
                  params(), BTC)
    assert done.cycle == Cycle(Phase.BETWEEN_LEGS, CycleLeg.CLOSE, 102.0) and done.action is None
    waiting = decide(done.cycle, seen(now_s=101.0, maker_position=d("0.01")), params(), BTC)
    assert waiting.cycle.phase is Phase.BETWEEN_LEGS and waiting.action is None
    leg_two = decide(done.cycle, seen(now_s=102.0, maker_position=d("0.01")), params(), BTC)
    assert leg_two.cycle.phase is Phase.QUOTING and leg_two.cycle.leg is CycleLeg.CLOSE
    assert leg_two.action == Quote(Side.SELL, d("0.01"), reduce_only=True)


def test_decide_when_leg_two_done_then_idle_for_cycle_sleep() -> None:
    decision = decide(Cycle(Phase.HEDGING, CycleLeg.CLOSE, 90.0), seen(), params(), BTC)
    assert decision.cycle == Cycle(Phase.IDLE, CycleLeg.NONE, 103.0)


def test_decide_when_started_with_hedged_open_position_then_closes_it_first() -> None:
    # A restart mid-cycle: no funding check, no new cycle, leg 2 at once.
    decision = decide(Cycle(), seen(maker_position=d("0.01"), cycle_allowed=False), params(), BTC)
    assert decision.cycle.leg is CycleLeg.CLOSE
    assert decision.action == Quote(Side.SELL, d("0.01"), reduce_only=True)


def test_decide_when_funding_window_opens_during_leg_one_then_adds_nothing() -> None:
    leg_one = Cycle(Phase.REQUOTING, CycleLeg.OPEN, 90.0)
    nothing_filled = decide(leg_one, seen(cycle_allowed=False), params(), BTC)
    assert nothing_filled.cycle.leg is CycleLeg.NONE and nothing_filled.action is None
    some_filled = decide(leg_one, seen(cycle_allowed=False, maker_position=d("0.004")), params(),
                         BTC)
    assert some_filled.cycle.leg is CycleLeg.CLOSE
    assert decide(some_filled.cycle, seen(cycle_allowed=False, maker_position=d("0.004")),
                  params(), BTC).action == Quote(Side.SELL, d("0.004"), reduce_only=True)


def test_decide_when_leg_bigger_than_unhedged_limit_then_worked_in_chunks() -> None:
    decision = decide(Cycle(), seen(), params(quantity="0.025"), BTC)
    assert decision.action == Quote(Side.BUY, d("0.01"), reduce_only=False)


def test_maker_price_when_offset_then_rounded_away_and_never_crossing() -> None:
    book = BookTop(venue=MAKER, symbol=SYMBOL, bid=d("59999"), bid_qty=d(1), ask=d("60001"),
                   ask_qty=d(1), ts_venue_ns=0, ts_local_ns=0)
    assert maker_price(book, Side.BUY, d("0.01"), BTC) == d("59994.0")
    assert maker_price(book, Side.SELL, d("0.01"), BTC) == d("60006.0")
    assert maker_price(book, Side.BUY, d(0), BTC) == d("60000.0")
    tight = msgspec.structs.replace(book, bid=d("60000"), ask=d("60000.5"))
    assert maker_price(tight, Side.BUY, d(0), BTC) == d("60000.0")
    assert maker_price(tight, Side.SELL, d(0), BTC) == d("60000.5")


@pytest.mark.parametrize(("change", "field"), [
    ({"quantity": "0"}, "quantity"),
    ({"max_unhedged_qty": "-1"}, "max_unhedged_qty"),
    ({"first_wait_s": 0}, "first_wait_s"),
    ({"hedge_venue": MAKER}, "hedge_venue"),
    ({"hedge_max_attempts": 0}, "hedge_max_attempts"),
    ({"quantity": "NaN"}, "quantity"),
    ({"offset_percent": "sNaN"}, "offset_percent"),
    ({"max_unhedged_qty": "Infinity"}, "max_unhedged_qty"),
    ({"cycle_sleep_s": math.inf}, "cycle_sleep_s"),
])
def test_params_when_invalid_then_refused_naming_the_field(
    change: dict[str, Any], field: str
) -> None:
    with pytest.raises(msgspec.ValidationError, match=f"`\\$.{field}`"):
        params(**change)


# ---- the daemon ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Placed:
    at_s: float
    venue: str
    request: OrderRequest


class TimedAccount(FaultyAccount):
    """Records every order call with the trio time, across venues, into one list."""

    def __init__(self, inner: AccountClient, placed: list[Placed]) -> None:
        super().__init__(inner)
        self.placed = placed

    async def place_order(self, request: OrderRequest) -> VenueOrder:
        self.placed.append(Placed(trio.current_time(), self.venue, request))
        return await super().place_order(request)


def hedge_config(*, funding_interval_s: float = 3600.0, risk: RiskConfig | None = None,
                 trade_rate_per_s: float = 4.0, **changes: Any) -> DaemonConfig:
    """BTC-PERP only, standing still on both venues; one `hedge` account each; one strategy."""
    base = paper_config()
    assert base.paper is not None
    btc = next(s for s in base.paper.symbols if s.symbol == SYMBOL)
    still = msgspec.structs.replace(btc, volatility_per_sqrt_s=0.0,
                                    trade_rate_per_s=trade_rate_per_s)
    paper = msgspec.structs.replace(base.paper, symbols=[still], basis_sigma_bps_per_sqrt_s=0.0)
    venues = [msgspec.structs.replace(v, accounts={ACCOUNT: Decimal(20_000)},
                                      funding_interval_s=funding_interval_s)
              for v in base.venues]
    strategy = StrategyConfig(name=NAME, kind="hedge", params={**PARAMS, **changes})
    return msgspec.structs.replace(base, paper=paper, venues=venues, strategies=[strategy],
                                   risk=risk or base.risk)


class FillingCancels(TimedAccount):
    """On the maker venue, the first cancel is slow, and the market runs down through the
    resting bid while it is on its way: the order fills just before the venue cancels it."""

    def __init__(self, inner: AccountClient, placed: list[Placed],
                 markets: list[SyntheticMarket]) -> None:
        super().__init__(inner, placed)
        self.markets = markets
        self.raced = False

    async def cancel_order(self, symbol: str, client_id: str) -> VenueOrder:
        if self.venue == MAKER and not self.raced:
            self.raced = True
            [market] = self.markets
            market.fair[symbol] = float(MID) - 10
            await trio.sleep(0.3)  # a few market steps: the book crosses the bid at 59999
            market.fair[symbol] = float(MID)
        return await super().cancel_order(symbol, client_id)


def timed(placed: list[Placed]) -> Callable[[AccountClient], AccountClient]:
    return lambda client: TimedAccount(client, placed)


def fills(daemon: RunningDaemon, venue: str) -> list[Fill]:
    return [f for f in daemon.assembly.venues[venue].ledger.fills if f.account == ACCOUNT]


def net(fill_list: list[Fill]) -> Decimal:
    return sum((f.qty * f.side.sign for f in fill_list), Decimal(0))


async def quiet_market(daemon: RunningDaemon) -> None:
    """No more trades, so no more maker fills; give the last hedge time to land."""
    assert daemon.assembly.world is not None
    market = daemon.assembly.world.market
    market.symbols[SYMBOL] = msgspec.structs.replace(market.symbols[SYMBOL],
                                                     trade_rate_per_s=0.0)
    await trio.sleep(5)


def maker_quotes(placed: list[Placed]) -> list[Placed]:
    return [p for p in placed if p.venue == MAKER and p.request.tif is TimeInForce.POST_ONLY]


def assert_each_maker_fill_hedged(daemon: RunningDaemon) -> None:
    maker_fills, hedge_fills = fills(daemon, MAKER), fills(daemon, HEDGE)
    assert maker_fills and all(f.liquidity is Liquidity.MAKER for f in maker_fills)
    assert all(f.liquidity is Liquidity.TAKER for f in hedge_fills)
    assert [(f.side, f.qty) for f in maker_fills] == [
        (f.side.opposite, f.qty) for f in hedge_fills
    ]
    assert net(maker_fills) + net(hedge_fills) == 0


async def test_cycles_when_maker_fills_then_each_matched_by_equal_opposite_hedge_fill(
    autojump_clock: MockClock, steward_home: Path
) -> None:
    placed: list[Placed] = []
    async with running_daemon(steward_home, hedge_config(), wrap=timed(placed)) as daemon:
        await trio.sleep(90)
        await quiet_market(daemon)
        assert_each_maker_fill_hedged(daemon)
        assert len(fills(daemon, MAKER)) >= 8  # several whole cycles, both legs
        # Hedges are market orders on the hedge venue, and only there.
        hedges = [p.request for p in placed if p.venue == HEDGE]
        assert hedges and all(r.order_type is OrderType.MARKET for r in hedges)
        # Every maker quote rests 0.001 % from mid: the bid or the ask of this still book.
        assert {(p.request.side, p.request.price) for p in maker_quotes(placed)} == {
            (Side.BUY, Decimal("59999.0")), (Side.SELL, Decimal("60001.0"))
        }


async def test_cycles_when_funding_window_comes_then_no_cycle_starts_inside_it(
    autojump_clock: MockClock, steward_home: Path
) -> None:
    interval_s, window_s = 120.0, 60.0
    config = hedge_config(funding_interval_s=interval_s, stop_before_funding_minutes=1.0)
    placed: list[Placed] = []
    async with running_daemon(steward_home, config, wrap=timed(placed)) as daemon:
        await trio.sleep(330)
        await quiet_market(daemon)
        next_funding_s = daemon.assembly.venues[MAKER].next_funding_s()
        assert_each_maker_fill_hedged(daemon)
    assert next_funding_s is not None
    fundings = [next_funding_s - k * interval_s for k in range(5)]

    def in_window(at_s: float) -> bool:
        return any(f - window_s <= at_s < f for f in fundings)

    # Leg 1 buys (a cycle starting, or leg 1 requoting); leg 2 sells, and may close anywhere.
    opening = [p.at_s for p in maker_quotes(placed) if p.request.side is Side.BUY]
    assert opening and not [at for at in opening if in_window(at)]
    # Cycles did start, in every gap between the windows, so the rule was really tested.
    for funding_s in fundings[1:4]:
        assert any(funding_s <= at < funding_s + interval_s - window_s for at in opening)


async def test_hedge_when_maker_fills_while_being_cancelled_then_fill_still_hedged(
    autojump_clock: MockClock, steward_home: Path
) -> None:
    placed: list[Placed] = []
    markets: list[SyntheticMarket] = []
    config = hedge_config(trade_rate_per_s=0.0)  # nothing fills a quote but the race below
    async with running_daemon(steward_home, config,
                              wrap=lambda c: FillingCancels(c, placed, markets)) as daemon:
        assert daemon.assembly.world is not None
        markets.append(daemon.assembly.world.market)
        await trio.sleep(10)
        maker_venue, hedge_venue = fills(daemon, MAKER), fills(daemon, HEDGE)
    # The first quote went unfilled for first_wait_s, so it was cancelled, and filled meanwhile.
    first_quote = maker_quotes(placed)[0]
    [filled] = maker_venue
    assert filled.client_id == first_quote.request.client_id
    assert filled.liquidity is Liquidity.MAKER and filled.price == Decimal("59999.0")
    [hedged] = hedge_venue
    assert (hedged.side, hedged.qty, hedged.liquidity) == (Side.SELL, filled.qty, Liquidity.TAKER)


async def test_hedge_when_first_attempt_fails_then_retried_as_taker_and_ends_hedged(
    autojump_clock: MockClock, steward_home: Path
) -> None:
    placed: list[Placed] = []
    async with running_daemon(steward_home, hedge_config(), wrap=timed(placed)) as daemon:
        hedge_client = daemon.assembly.account_client(HEDGE, ACCOUNT)
        assert isinstance(hedge_client, FaultyAccount)
        # HTTP 503 and the venue never had it: the gateway finds no order and rejects it.
        hedge_client.fail_next_place("unknown_outcome_not_placed")
        await trio.sleep(20)
        await quiet_market(daemon)
        assert_each_maker_fill_hedged(daemon)
        hedge_fill_ids = {f.client_id for f in fills(daemon, HEDGE)}
    first_maker_fill_hedges = [p.request for p in placed if p.venue == HEDGE][:2]
    failed, retried = first_maker_fill_hedges
    assert failed.client_id not in hedge_fill_ids and retried.client_id in hedge_fill_ids
    assert (failed.side, failed.qty, retried.order_type) == (retried.side, retried.qty,
                                                             OrderType.MARKET)


async def test_hedge_when_answer_lost_and_venue_executes_it_twice_then_ends_hedged(
    autojump_clock: MockClock, steward_home: Path
) -> None:
    # The gateway retries a place whose answer was lost with the same client id; the paper
    # venue only refuses ids that are still open, so a market order executes twice.
    placed: list[Placed] = []
    async with running_daemon(steward_home, hedge_config(), wrap=timed(placed)) as daemon:
        hedge_client = daemon.assembly.account_client(HEDGE, ACCOUNT)
        assert isinstance(hedge_client, FaultyAccount)
        hedge_client.fail_next_place("lost_response")
        await trio.sleep(10)
        await quiet_market(daemon)
        maker_venue, hedge_venue = fills(daemon, MAKER), fills(daemon, HEDGE)
    assert maker_venue and net(maker_venue) + net(hedge_venue) == 0


async def test_hedge_when_hedge_venue_keeps_refusing_then_fill_unwound_on_maker_venue(
    autojump_clock: MockClock, steward_home: Path
) -> None:
    # Risk denies every hedge: paper-b/hedge may not trade more than 0.001 BTC an order.
    base_risk = paper_config().risk
    risk = msgspec.structs.replace(base_risk, accounts={
        f"{HEDGE}/{ACCOUNT}": msgspec.structs.replace(base_risk.defaults,
                                                      max_order_qty=Decimal("0.001")),
    })
    placed: list[Placed] = []
    async with running_daemon(steward_home, hedge_config(risk=risk),
                              wrap=timed(placed)) as daemon:
        await trio.sleep(20)
        await quiet_market(daemon)
        maker_venue_fills = fills(daemon, MAKER)
        assert fills(daemon, HEDGE) == []
    makers = [f for f in maker_venue_fills if f.liquidity is Liquidity.MAKER]
    unwinds = [f for f in maker_venue_fills if f.liquidity is Liquidity.TAKER]
    assert makers and [(f.side, f.qty) for f in makers] == [
        (f.side.opposite, f.qty) for f in unwinds
    ]
    assert net(maker_venue_fills) == 0
    # The hedge venue was tried first; nothing reached it (risk said no).
    assert not [p for p in placed if p.venue == HEDGE]
    assert all(p.request.reduce_only for p in placed
               if p.venue == MAKER and p.request.order_type is OrderType.MARKET)


async def test_restart_when_strategy_holds_unhedged_fill_then_hedges_it_before_anything_else(
    autojump_clock: MockClock, steward_home: Path
) -> None:
    placed: list[Placed] = []
    async with running_daemon(steward_home, hedge_config(), wrap=timed(placed)) as daemon:
        await trio.sleep(17.3)  # mid-cycle, wherever that is
        strategies = daemon.root.find_supervisor("strategies")
        await strategies.kill_child(NAME)
        killed_at = trio.current_time()
        # While it is down, a fill of its own lands on the maker venue, unhedged.
        intent = OrderIntent(client_id="hedge-btc-inject-1", strategy=NAME, venue=MAKER,
                             account=ACCOUNT, symbol=SYMBOL, side=Side.BUY,
                             order_type=OrderType.MARKET, qty=Decimal("0.01"))
        await daemon.root.registry.lookup("risk").tell(SubmitOrder(intent=intent))
        await trio.sleep(20)
        assert [e for e in daemon.events if isinstance(e, ChildStarted)
                and e.path.endswith(NAME) and e.ts_s > killed_at]  # a fresh instance
        await quiet_market(daemon)
        maker_venue, hedge_venue = fills(daemon, MAKER), fills(daemon, HEDGE)
    assert any(f.client_id == intent.client_id for f in maker_venue)
    # The new instance's first order is the hedge of it, at market on the hedge venue.
    after = [p for p in placed if p.at_s > killed_at + 0.5]
    assert after[0].venue == HEDGE and after[0].request.order_type is OrderType.MARKET
    assert after[0].request.side is Side.SELL
    # And it ends hedged: every fill, the injected one too, has its opposite on the other venue.
    assert net(maker_venue) + net(hedge_venue) == 0


async def test_update_params_when_invalid_then_refused_naming_field_and_nothing_changes(
    autojump_clock: MockClock, steward_home: Path
) -> None:
    placed: list[Placed] = []
    async with running_daemon(steward_home, hedge_config(), wrap=timed(placed)) as daemon:
        strategy = daemon.root.registry.lookup(NAME)
        await trio.sleep(8)
        before: ParamsReply = await strategy.ask(GetParams())
        changes: list[tuple[dict[str, object], str]] = [
            ({"quantity": "-1"}, "quantity"),
            ({"hedge_venue": "paper-c"}, "hedge_venue"),  # the legs cannot move live
            ({"offset_percent": "0.01", "first_wait_s": "soon"}, "first_wait_s"),
            ({"cycle_sleep": 3}, "cycle_sleep"),  # unknown: a typo is refused, not ignored
        ]
        for change, field in changes:
            reply: ParamsReply = await strategy.ask(UpdateParams(params=change))
            assert not reply.accepted and field in reply.error, (change, reply.error)
            assert reply.params == before.params
        assert (await strategy.ask(GetParams())).params == before.params
        await trio.sleep(20)
    # Every quote, before and after the refused updates, still rests 0.001 % from mid.
    assert {abs(p.request.price - MID) for p in maker_quotes(placed)
            if p.request.price is not None} == {Decimal(1)}


async def test_update_params_when_valid_then_next_quotes_use_it(
    autojump_clock: MockClock, steward_home: Path
) -> None:
    placed: list[Placed] = []
    async with running_daemon(steward_home, hedge_config(), wrap=timed(placed)) as daemon:
        strategy = daemon.root.registry.lookup(NAME)
        await trio.sleep(8)
        reply: ParamsReply = await strategy.ask(UpdateParams(params={"offset_percent": "0.01"}))
        updated_at = trio.current_time()
        assert reply.accepted and reply.params["offset_percent"] == "0.01"
        await trio.sleep(20)
    quotes = maker_quotes(placed)
    old = [p for p in quotes if p.at_s < updated_at]
    new = [p for p in quotes if p.at_s > updated_at]
    assert old and new
    assert {abs(p.request.price - MID) for p in old if p.request.price is not None} == {
        Decimal(1)
    }
    # 0.01 % of 60000 is 6: every quote after the update uses it.
    assert {abs(p.request.price - MID) for p in new if p.request.price is not None} == {
        Decimal(6)
    }


async def test_unwind_when_own_maker_order_rests_then_it_comes_down_first(
    autojump_clock, steward_home
):
    """A partial maker fill the hedge venue refuses: the unwind trades on the maker account,
    where our own bid still rests. Review: risk refused the unwind as a self-trade for ~2 min
    (until expiry); now the maker order comes down first and the fill is unwound at once."""
    base_risk = paper_config().risk
    risk = msgspec.structs.replace(base_risk, accounts={
        f"{HEDGE}/{ACCOUNT}": msgspec.structs.replace(base_risk.defaults,
                                                      max_order_notional=Decimal(1)),
    })
    config = hedge_config(risk=risk, first_wait_s=120.0, trade_rate_per_s=0.5)
    assert config.paper is not None
    small = msgspec.structs.replace(config.paper.symbols[0], level_qty=Decimal("0.003"))
    config = msgspec.structs.replace(
        config, paper=msgspec.structs.replace(config.paper, symbols=[small]))
    placed: list[Placed] = []
    async with running_daemon(steward_home, config, wrap=timed(placed)) as daemon:
        world = daemon.assembly.world
        assert world is not None
        market = world.market
        first_fill_at = None
        for _ in range(4000):
            await trio.sleep(0.05)
            if fills(daemon, MAKER):
                first_fill_at = trio.current_time()
                market.symbols[SYMBOL] = msgspec.structs.replace(
                    market.symbols[SYMBOL], trade_rate_per_s=0.0)
                break
        assert first_fill_at is not None
        flat_at = None
        for _ in range(3000):
            await trio.sleep(0.1)
            if net(fills(daemon, MAKER)) + net(fills(daemon, HEDGE)) == 0:
                flat_at = trio.current_time()
                break
    assert flat_at is not None and flat_at - first_fill_at < 10
