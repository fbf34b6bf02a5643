"""spread_arb: the pure decision at its boundaries, then the whole daemon on a scripted market.

Decision tests use round prices (an ask of 100 000) so that a spread in bps is exact. The
daemon tests run the paper config on MockClock with the market held still (no volatility, no
basis noise or reversion) and script each venue's basis to open and close the spread: paper-a
and paper-b start at bid 59 999 / ask 60 001, and a basis of x bps moves a venue's mid by
60 000 × x / 10 000.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio

from actors.messages import (
    GetParams,
    ParamsReply,
    SetTradingState,
    TradingState,
    UpdateParams,
)
from actors.risk import AccountLimits
from actors.strategies.spread_arb import (
    START_QUIET_S,
    ArbPosition,
    ArbState,
    Close,
    CloseReason,
    Decision,
    Direction,
    Hold,
    Phase,
    SeenBook,
    SpreadArbParams,
    close_spread_bps,
    decide,
    hedge,
    is_flat,
    open_spread_bps,
    repairs,
)
from exchanges import Side
from supervisor._config import ConfigError, DaemonConfig, StrategyConfig, strategy_params
from tests.trading import RunningDaemon, journal_store, paper_config, running_daemon

NOW = 1_000.0
MIN_QTY = (Decimal("0.001"), Decimal("0.001"))
SYMBOL = "BTC-PERP"
A, B = "paper-a", "paper-b"


def make_params(**overrides: Any) -> SpreadArbParams:
    fields: dict[str, Any] = {
        "venue_a": A, "account_a": "arb", "symbol_a": SYMBOL,
        "venue_b": B, "account_b": "arb", "symbol_b": SYMBOL,
        "trade_amount": Decimal("0.01"), "open_threshold_bps": Decimal(10),
        "close_threshold_bps": Decimal(2), "max_hold_s": 60.0, "max_price_age_s": 2.0,
        "min_trade_interval_s": 5.0, "max_positions": 1,
    }
    return SpreadArbParams(**{**fields, **overrides})


def book(bid: str | int, ask: str | int, age_s: float = 0.0) -> SeenBook:
    return SeenBook(Decimal(bid), Decimal(ask), NOW - age_s)


def holding(direction: Direction = Direction.BUY_A_SELL_B, *, opened_s: float = NOW - 10,
            phase: Phase = Phase.OPEN, arb_id: int = 1) -> ArbState:
    arb = ArbPosition(arb_id, direction, opened_s, phase=phase)
    return ArbState(positions={arb_id: arb})


# A at 99 990 / 100 000. With 3.5 + 3.5 bps fees, an open threshold of 10 bps needs a gross
# 17 bps: B's bid at 100 170 against A's ask of 100 000.
CHEAP_A = book(99_990, 100_000)


# ---- opening -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("bid_b", "opens"), [("100169.5", False), ("100170", True),
                                              ("100170.5", True)])
def test_decide_when_spread_below_at_or_above_open_threshold_then_opens_from_the_threshold(
    bid_b: str, opens: bool
):
    decision = decide(CHEAP_A, book(bid_b, "100180"), NOW, ArbState(), make_params())

    if opens:
        assert decision == Decision(open=Direction.BUY_A_SELL_B)
    else:
        assert decision == Decision(hold=Hold.BELOW_THRESHOLD)


def test_decide_when_fees_are_higher_then_the_same_gross_spread_no_longer_opens():
    rich_b = book("100170", "100180")
    assert decide(CHEAP_A, rich_b, NOW, ArbState(), make_params()).open is Direction.BUY_A_SELL_B

    decision = decide(CHEAP_A, rich_b, NOW, ArbState(), make_params(taker_fee_bps_b=Decimal("3.6")))

    assert decision.hold is Hold.BELOW_THRESHOLD


def test_decide_when_a_is_rich_then_buys_b_and_sells_a():
    decision = decide(book("100170", "100180"), book(99_990, 100_000), NOW, ArbState(),
                      make_params())

    assert decision.open is Direction.BUY_B_SELL_A
    assert decision.open.buy_leg == 1


def test_open_spread_bps_when_at_threshold_then_reads_the_threshold_net_of_fees():
    spread = open_spread_bps(Direction.BUY_A_SELL_B, CHEAP_A, book("100170", "100180"),
                             make_params())

    assert spread == Decimal(10)


# ---- fresh prices only -------------------------------------------------------------------------


@pytest.mark.parametrize(("age_a", "age_b"), [(2.01, 0.0), (0.0, 2.01)])
def test_decide_when_either_price_is_older_than_max_price_age_then_refuses(
    age_a: float, age_b: float
):
    a, b = book(99_990, 100_000, age_s=age_a), book("100500", "100510", age_s=age_b)

    assert decide(a, b, NOW, ArbState(), make_params()) == Decision(hold=Hold.STALE_PRICE)


def test_decide_when_price_exactly_max_price_age_old_then_still_acts():
    a, b = book(99_990, 100_000, age_s=2.0), book("100500", "100510")

    assert decide(a, b, NOW, ArbState(), make_params()).open is Direction.BUY_A_SELL_B


def test_decide_when_prices_are_stale_then_neither_spread_nor_max_hold_closes():
    converged = book(99_990, 100_000, age_s=5.0), book(99_990, 100_000)
    state = holding(opened_s=NOW - 3_600)

    assert decide(*converged, NOW, state, make_params()) == Decision(hold=Hold.STALE_PRICE)


@pytest.mark.parametrize(("opens_in_s", "opens"), [(0.01, False), (0.0, True)])
def test_decide_when_just_started_then_opens_only_after_the_quiet_period(
    opens_in_s: float, opens: bool
):
    state = ArbState(opens_from_s=NOW + opens_in_s)

    decision = decide(CHEAP_A, book("100500", "100510"), NOW, state, make_params())

    assert decision.hold is (None if opens else Hold.JUST_STARTED)


def test_decide_when_a_book_is_missing_then_holds():
    assert decide(CHEAP_A, None, NOW, ArbState(), make_params()).hold is Hold.NO_PRICE
    assert decide(None, CHEAP_A, NOW, ArbState(), make_params()).hold is Hold.NO_PRICE


# ---- how often, how many -----------------------------------------------------------------------

RICH_B = book("100500", "100510")


@pytest.mark.parametrize(("since_open_s", "opens"), [(4.99, False), (5.0, True)])
def test_decide_when_last_open_within_min_trade_interval_then_holds(
    since_open_s: float, opens: bool
):
    state = ArbState(last_open_s=NOW - since_open_s)

    decision = decide(CHEAP_A, RICH_B, NOW, state, make_params(max_positions=5))

    assert decision.open is (Direction.BUY_A_SELL_B if opens else None)
    assert decision.hold is (None if opens else Hold.MIN_TRADE_INTERVAL)


@pytest.mark.parametrize("phase", list(Phase))
def test_decide_when_max_positions_held_then_holds_whatever_their_phase(phase: Phase):
    state = holding(phase=phase)

    assert decide(CHEAP_A, RICH_B, NOW, state, make_params()).hold is Hold.MAX_POSITIONS
    assert decide(CHEAP_A, RICH_B, NOW, state, make_params(max_positions=2)).open is (
        Direction.BUY_A_SELL_B
    )


def test_decide_when_holding_the_other_direction_then_does_not_open_against_it():
    state = holding(Direction.BUY_B_SELL_A, phase=Phase.CLOSING)

    decision = decide(CHEAP_A, RICH_B, NOW, state, make_params(max_positions=2))

    assert decision.hold is Hold.OPPOSITE_POSITION


# ---- closing -----------------------------------------------------------------------------------
# Long A, short B. A close sells A at its bid (100 000) and buys B at its ask; with 7 bps of
# fees a close threshold of 2 bps needs B's ask 5 bps under A's bid: 99 950.


@pytest.mark.parametrize(("ask_b", "closes"), [("99950.5", False), ("99950", True),
                                               ("99949.5", True)])
def test_decide_when_close_spread_above_at_or_below_close_threshold_then_closes_from_it(
    ask_b: str, closes: bool
):
    a, b = book(100_000, 100_010), book("99940", ask_b)

    decision = decide(a, b, NOW, holding(), make_params())

    assert decision.closes == ((Close(1, CloseReason.SPREAD),) if closes else ())


def test_close_spread_bps_when_at_threshold_then_reads_the_threshold_with_fees():
    spread = close_spread_bps(Direction.BUY_A_SELL_B, book(100_000, 100_010),
                              book("99940", "99950"), make_params())

    assert spread == Decimal(2)


@pytest.mark.parametrize(("held_s", "closes"), [(59.9, False), (60.0, True)])
def test_decide_when_held_for_max_hold_then_closes_whatever_the_spread(
    held_s: float, closes: bool
):
    wide = book(99_990, 100_000), RICH_B

    decision = decide(*wide, NOW, holding(opened_s=NOW - held_s), make_params())

    assert decision.closes == ((Close(1, CloseReason.MAX_HOLD),) if closes else ())


def test_decide_when_position_still_opening_then_does_not_close_it():
    converged = book(100_000, 100_001), book(100_000, 100_001)

    decision = decide(*converged, NOW, holding(phase=Phase.OPENING, opened_s=0.0), make_params())

    assert decision.closes == ()


# ---- legs that fail ----------------------------------------------------------------------------


def entered(qty_a: str, qty_b: str) -> ArbPosition:
    arb = ArbPosition(1, Direction.BUY_A_SELL_B, NOW)
    arb.legs[0].qty, arb.legs[1].qty = Decimal(qty_a), Decimal(qty_b)
    return arb


def test_hedge_when_one_leg_failed_then_unwinds_the_other_whole():
    arb = entered("0.01", "0")

    assert hedge(arb, MIN_QTY) is Phase.CLOSING
    assert [(r.leg, r.side, r.qty) for r in repairs(arb, MIN_QTY)] == [
        (0, Side.SELL, Decimal("0.01"))
    ]


def test_hedge_when_legs_filled_unequally_then_keeps_the_hedge_and_unwinds_the_excess():
    arb = entered("0.004", "-0.01")

    assert hedge(arb, MIN_QTY) is Phase.OPEN
    assert [(r.leg, r.side, r.qty) for r in repairs(arb, MIN_QTY)] == [
        (1, Side.BUY, Decimal("0.006"))
    ]


def test_hedge_when_excess_is_under_min_qty_then_closes_the_whole_arbitrage():
    arb = entered("0.010", "-0.012")

    assert hedge(arb, (Decimal("0.005"), Decimal("0.005"))) is Phase.CLOSING


def test_repairs_when_a_leg_has_an_order_pending_then_leave_that_leg_alone():
    arb = entered("0.01", "-0.01")
    arb.phase = Phase.CLOSING
    arb.legs[1].pending.add("c-1")

    assert [r.leg for r in repairs(arb, MIN_QTY)] == [0]
    assert not is_flat(arb, MIN_QTY)


# ---- parameters --------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value"), [
    ("trade_amount", "-0.01"), ("trade_amount", "NaN"), ("close_threshold_bps", "10"),
    ("open_threshold_bps", "0"), ("max_positions", 0), ("max_price_age_s", math.inf),
    ("taker_fee_bps_a", "-1"), ("max_slippage_bps", "-1"),
])
def test_params_when_a_field_is_out_of_range_then_the_error_names_it(field: str, value: object):
    raw = msgspec.to_builtins(make_params())

    with pytest.raises(msgspec.ValidationError, match=f"at `\\$.{field}`"):
        msgspec.convert({**raw, field: value}, SpreadArbParams, strict=False)


def test_params_when_unknown_field_then_the_error_names_it():
    raw = msgspec.to_builtins(make_params())

    with pytest.raises(msgspec.ValidationError, match="spread_bps"):
        msgspec.convert({**raw, "spread_bps": "5"}, SpreadArbParams, strict=False)


def test_params_when_both_legs_are_one_market_then_rejected():
    with pytest.raises(ValueError, match="symbol_b"):
        make_params(venue_b=A)


def test_params_when_bad_in_the_config_file_then_the_error_names_the_key():
    raw = {**msgspec.to_builtins(make_params()), "trade_amount": "0"}

    with pytest.raises(ConfigError) as caught:
        strategy_params("paper.toml", 3, StrategyConfig(name="arb", kind="spread_arb",
                                                         params=raw))

    assert caught.value.key == "strategies[3].params.trade_amount"


# ---- the daemon on a scripted market -----------------------------------------------------------


def arb_config(*, risk_b: AccountLimits | None = None, balance_b: str = "20000",
               level_qty: str | None = None, **params: Any) -> DaemonConfig:
    """The paper config held still, an `arb` account on both venues, and only our strategy."""
    base = paper_config()
    assert base.paper is not None
    symbols = [
        msgspec.structs.replace(spec, volatility_per_sqrt_s=0.0,
                                level_qty=spec.level_qty if level_qty is None
                                else Decimal(level_qty))
        for spec in base.paper.symbols
    ]
    paper = msgspec.structs.replace(base.paper, symbols=symbols, basis_sigma_bps_per_sqrt_s=0.0,
                                    basis_reversion_per_s=0.0)
    venues = [
        msgspec.structs.replace(venue, accounts={
            **venue.accounts, "arb": Decimal(balance_b if venue.name == B else "20000")
        })
        for venue in base.venues
    ]
    risk = base.risk
    if risk_b is not None:
        risk = msgspec.structs.replace(risk, accounts={**risk.accounts, f"{B}/arb": risk_b})
    arb_params = {
        "venue_a": A, "account_a": "arb", "symbol_a": SYMBOL,
        "venue_b": B, "account_b": "arb", "symbol_b": SYMBOL,
        "trade_amount": "0.01", "open_threshold_bps": "10", "close_threshold_bps": "8",
        "max_hold_s": 600.0, "max_price_age_s": 2.0, "min_trade_interval_s": 60.0,
        **params,
    }
    return msgspec.structs.replace(
        base, paper=paper, venues=venues, risk=risk,
        strategies=[StrategyConfig(name="arb", kind="spread_arb", params=arb_params)],
    )


def set_basis(daemon: RunningDaemon, venue: str, bps: float) -> None:
    assert daemon.assembly.world is not None
    daemon.assembly.world.market.basis_bps[(venue, SYMBOL)] = bps


def held(daemon: RunningDaemon, venue: str) -> Decimal:
    """The `arb` account's position at the venue: the truth, not our view of it."""
    positions = daemon.assembly.venues[venue].ledger.positions("arb")
    return sum((p.qty for p in positions if p.symbol == SYMBOL), Decimal(0))


def fills(daemon: RunningDaemon, venue: str) -> int:
    return sum(1 for f in daemon.assembly.venues[venue].ledger.fills if f.account == "arb")


def orders_received(daemon: RunningDaemon) -> int:
    return sum(v.engine.orders_received for v in daemon.assembly.venues.values())


async def wait_until(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Polls on the mock clock: a paper venue's ledger has no event to wait on."""
    for _ in range(round(timeout_s / 0.05)):
        if check():
            return
        await trio.sleep(0.05)
    raise AssertionError(f"not true within {timeout_s} s")


def risk_denials(home: Path) -> int:
    store = journal_store(home)
    try:
        return sum(1 for event in store.events() if event.kind == "risk_denied")
    finally:
        store.close()


async def assert_no_crashes(daemon: RunningDaemon) -> None:
    status = await daemon.status()
    assert all(a.last_error is None for a in status.actors), [
        (a.path, a.last_error) for a in status.actors if a.last_error is not None
    ]


async def test_arbitrage_when_spread_just_under_then_over_open_threshold_then_opens_only_over(
    autojump_clock, steward_home
):
    async with running_daemon(steward_home, arb_config()) as daemon:
        await trio.sleep(START_QUIET_S)
        # 17.4 bps of basis: 9.9997 bps net of fees, a hair under the threshold.
        set_basis(daemon, B, 17.4)
        await trio.sleep(5)
        assert orders_received(daemon) == 0

        set_basis(daemon, B, 17.5)  # 10.17 bps net
        await wait_until(lambda: held(daemon, A) != 0)
        await trio.sleep(1)

        assert held(daemon, A) == Decimal("0.01") and held(daemon, B) == Decimal("-0.01")
        assert orders_received(daemon) == 2
        await assert_no_crashes(daemon)
    assert risk_denials(steward_home) == 0


async def test_arbitrage_when_one_venue_price_is_stale_then_waits_for_a_fresh_one(
    autojump_clock, steward_home
):
    async with running_daemon(steward_home, arb_config()) as daemon:
        await trio.sleep(START_QUIET_S)
        world = daemon.assembly.world
        assert world is not None
        frozen_b = daemon.assembly.venues[B]
        world.venues.remove(frozen_b)  # paper-b's market stops: no more books from it
        await trio.sleep(2.5)  # older than max_price_age_s, younger than risk's 5 s

        set_basis(daemon, A, -20.0)  # A cheap against B's last book: 12.7 bps net
        await trio.sleep(2)
        assert orders_received(daemon) == 0

        world.venues.append(frozen_b)  # fresh books again: the same spread is real now
        await wait_until(lambda: held(daemon, B) != 0)
        await trio.sleep(1)

        assert held(daemon, A) == Decimal("0.01") and held(daemon, B) == Decimal("-0.01")
    assert risk_denials(steward_home) == 0


async def test_arbitrage_when_spread_falls_to_close_threshold_then_closes_flat(
    autojump_clock, steward_home
):
    async with running_daemon(steward_home, arb_config()) as daemon:
        set_basis(daemon, B, 20.0)
        await wait_until(lambda: held(daemon, A) != 0)

        set_basis(daemon, B, 1.0)  # closing now costs 8.33 bps: over the 8 bps threshold
        await trio.sleep(5)
        assert held(daemon, A) == Decimal("0.01") and fills(daemon, A) == 1

        set_basis(daemon, B, 0.5)  # 7.83 bps: close
        await wait_until(lambda: held(daemon, A) == 0 and held(daemon, B) == 0)
        await trio.sleep(1)

        assert (fills(daemon, A), fills(daemon, B)) == (2, 2)
        await assert_no_crashes(daemon)


async def test_arbitrage_when_held_for_max_hold_then_closes_though_spread_stays_open(
    autojump_clock, steward_home
):
    async with running_daemon(steward_home, arb_config(max_hold_s=10.0)) as daemon:
        set_basis(daemon, B, 20.0)
        await wait_until(lambda: held(daemon, A) != 0)
        opened_at = trio.current_time()

        await trio.sleep(9)
        assert held(daemon, A) == Decimal("0.01")
        await wait_until(lambda: held(daemon, A) == 0 and held(daemon, B) == 0)

        assert 9.5 <= trio.current_time() - opened_at <= 10.5
        assert (fills(daemon, A), fills(daemon, B)) == (2, 2)


async def test_arbitrage_when_risk_denies_one_leg_then_the_other_is_unwound_and_ends_flat(
    autojump_clock, steward_home
):
    # Every order on paper-b's arb account is over its notional limit.
    tight = AccountLimits(max_order_notional=Decimal(100))
    async with running_daemon(steward_home, arb_config(risk_b=tight)) as daemon:
        set_basis(daemon, B, 20.0)  # buy A (fills), sell B (denied)
        await wait_until(lambda: fills(daemon, A) == 2)
        await trio.sleep(1)

        assert held(daemon, A) == 0 and held(daemon, B) == 0
        assert fills(daemon, B) == 0
        await assert_no_crashes(daemon)
    assert risk_denials(steward_home) == 1


async def test_arbitrage_when_the_venue_refuses_one_leg_then_the_other_is_unwound_and_ends_flat(
    autojump_clock, steward_home
):
    # paper-b's arb account has 1 USDT: its venue refuses any order for want of margin.
    async with running_daemon(steward_home, arb_config(balance_b="1")) as daemon:
        set_basis(daemon, A, 20.0)  # A rich: sell A (fills, short), buy B (refused)
        await wait_until(lambda: fills(daemon, A) == 2)
        await trio.sleep(1)

        assert held(daemon, A) == 0 and held(daemon, B) == 0
        assert fills(daemon, B) == 0
        await assert_no_crashes(daemon)


async def test_arbitrage_when_close_is_denied_then_retried_with_backoff_until_flat(
    autojump_clock, steward_home
):
    async with running_daemon(steward_home, arb_config()) as daemon:
        risk = daemon.root.registry.lookup("risk")
        set_basis(daemon, B, 20.0)
        await wait_until(lambda: held(daemon, A) != 0)
        await risk.ask(SetTradingState(state=TradingState.HALTED, reason="test", actor="test"))

        set_basis(daemon, B, 0.0)  # close: every leg is denied while halted
        await trio.sleep(5)
        assert held(daemon, A) == Decimal("0.01") and held(daemon, B) == Decimal("-0.01")

        await risk.ask(SetTradingState(state=TradingState.ACTIVE, reason="test", actor="test"))
        await wait_until(lambda: held(daemon, A) == 0 and held(daemon, B) == 0, timeout_s=30)
        await assert_no_crashes(daemon)
    # Both legs tried at once, 1 s and 3 s later while halted (backoff, not a try per book),
    # then 7 s later, after the resume.
    assert risk_denials(steward_home) == 6


async def test_arbitrage_when_legs_fill_partially_then_stays_hedged_and_closes_flat(
    autojump_clock, steward_home
):
    # Thin books (a few thousandths a level) and no slippage: each IOC takes one level. In
    # this seeded market, at this moment, paper-a's top level is the larger of the two.
    config = arb_config(level_qty="0.004", max_slippage_bps="0")
    async with running_daemon(steward_home, config) as daemon:
        await trio.sleep(START_QUIET_S + 0.5)
        set_basis(daemon, B, 20.0)
        await wait_until(lambda: held(daemon, A) != 0)
        await trio.sleep(1)

        assert 0 < held(daemon, A) < Decimal("0.01")
        assert held(daemon, A) == -held(daemon, B)
        assert (orders_received(daemon), fills(daemon, A)) == (3, 2)  # A's excess went back

        set_basis(daemon, B, 0.0)
        await wait_until(lambda: held(daemon, A) == 0 and held(daemon, B) == 0)


async def test_arbitrage_when_restarted_while_open_then_adopts_the_position_and_closes_it(
    autojump_clock, steward_home
):
    async with running_daemon(steward_home, arb_config()) as daemon:
        set_basis(daemon, B, 20.0)
        await wait_until(lambda: held(daemon, A) != 0)
        await trio.sleep(1)

        await daemon.root.find_supervisor("strategies").restart_child("arb")
        await trio.sleep(1)
        assert held(daemon, A) == Decimal("0.01") and held(daemon, B) == Decimal("-0.01")

        set_basis(daemon, B, 0.0)
        await wait_until(lambda: held(daemon, A) == 0 and held(daemon, B) == 0)
        assert (fills(daemon, A), fills(daemon, B)) == (2, 2)


# ---- live parameters ---------------------------------------------------------------------------


async def update(daemon: RunningDaemon, **params: object) -> ParamsReply:
    reply = await daemon.root.registry.lookup("arb").ask(UpdateParams(params=params))
    assert isinstance(reply, ParamsReply)
    return reply


async def test_update_params_when_invalid_then_rejected_naming_the_field_and_nothing_changes(
    autojump_clock, steward_home
):
    async with running_daemon(steward_home, arb_config()) as daemon:
        before = (await daemon.root.registry.lookup("arb").ask(GetParams())).params
        cases = {
            "trade_amount": {"trade_amount": "-0.01"},
            "bogus_field": {"bogus_field": 1},
            "close_threshold_bps": {"close_threshold_bps": "12", "trade_amount": "0.02"},
            "account_a": {"account_a": "mm"},
        }
        for field, params in cases.items():
            reply = await update(daemon, **params)
            assert not reply.accepted and field in reply.error, (field, reply.error)
            assert reply.params == before

        assert (await daemon.root.registry.lookup("arb").ask(GetParams())).params == before
        await assert_no_crashes(daemon)


async def test_update_params_when_valid_then_the_next_decision_uses_it(
    autojump_clock, steward_home
):
    async with running_daemon(steward_home, arb_config()) as daemon:
        await trio.sleep(START_QUIET_S)
        reply = await update(daemon, open_threshold_bps="15", trade_amount="0.02")
        assert reply.accepted and reply.params["open_threshold_bps"] == "15"

        set_basis(daemon, B, 20.0)  # 12.67 bps net: enough for 10, not for 15
        await trio.sleep(3)
        assert orders_received(daemon) == 0

        assert (await update(daemon, open_threshold_bps="12")).accepted
        await wait_until(lambda: held(daemon, A) != 0)
        await trio.sleep(1)

        assert held(daemon, A) == Decimal("0.02") and held(daemon, B) == Decimal("-0.02")


async def test_arbitrage_when_restarted_mid_entry_then_adopts_the_late_fills_and_closes_flat(
    autojump_clock, steward_home
):
    # Half a second of order latency: the restart lands while both entry legs are in flight.
    config = arb_config()
    config = msgspec.structs.replace(config, venues=[
        msgspec.structs.replace(venue, order_latency_s=0.5) for venue in config.venues
    ])
    async with running_daemon(steward_home, config) as daemon:
        await trio.sleep(START_QUIET_S)
        set_basis(daemon, B, 20.0)
        await trio.sleep(0.25)  # the legs left (a book comes every 0.1 s), none has arrived
        assert orders_received(daemon) == 0
        await daemon.root.find_supervisor("strategies").restart_child("arb")
        # The new instance sees the same spread, but opens nothing of its own: it adopts.
        await trio.sleep(START_QUIET_S + 1)
        assert held(daemon, A) == Decimal("0.01") and held(daemon, B) == Decimal("-0.01")
        assert orders_received(daemon) == 2

        set_basis(daemon, B, 0.0)
        await wait_until(lambda: held(daemon, A) == 0 and held(daemon, B) == 0)

        assert (fills(daemon, A), fills(daemon, B)) == (2, 2)
        await assert_no_crashes(daemon)


def test_repairs_when_venues_have_different_steps_then_every_order_is_on_its_venue_step():
    """Leg a trades in 0.001, leg b in 0.01: the hedged size and each repair land on steps
    both venues accept (review: a 0.015 repair on b was refused forever)."""
    arb = ArbPosition(1, Direction.BUY_A_SELL_B, 0.0)
    arb.legs[0].qty, arb.legs[1].qty = Decimal("0.015"), Decimal("-0.03")
    steps = (Decimal("0.001"), Decimal("0.01"))
    hedge(arb, steps, steps)
    wanted = repairs(arb, steps, steps)
    assert wanted and all(r.qty % steps[r.leg] == 0 for r in wanted)
