"""Inventory cycle: the pure decisions first (targets, the phase flip, the per-leg max, the
rebalancing threshold, the no-cross rule), then the strategy in the running daemon on MockClock.

The end-to-end tests hold the paper price still (no volatility, no basis drift) unless a test
moves it on purpose, so "never past the max" is exact, not within a drift.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from trio.testing import MockClock

from actors.messages import GetParams, ParamsReply, UpdateParams
from actors.risk import HedgeGroup
from actors.strategies._base import ParamsError
from actors.strategies.inventory_cycle import (
    InventoryCycleParams,
    LiveOrder,
    Order,
    Phase,
    crosses,
    decide,
    initial_phase,
    needs_rebalance,
    rebalance,
    should_flip,
    step,
    targets,
    uncrossed,
)
from exchanges import BookTop, Instrument, OrderRequest, Side, TimeInForce
from supervisor._config import DaemonConfig, StrategyConfig
from tests.faults import FaultyAccount
from tests.trading import RunningDaemon, journal_store, paper_config, running_daemon

VENUE, SYMBOL, NAME = "paper-a", "BTC-PERP", "cycle"
A, B = "cycle-a", "cycle-b"
TICK = Decimal("0.5")
INSTRUMENT = Instrument(venue=VENUE, symbol=SYMBOL, base="BTC", quote="USDT", tick_size=TICK,
                        step_size=Decimal("0.001"), min_qty=Decimal("0.001"),
                        min_notional=Decimal(5))
PARAMS = InventoryCycleParams(
    venue=VENUE, account_a=A, account_b=B, symbol=SYMBOL, maker_step=Decimal("0.005"),
    max_position_usd=Decimal(1500), maker_price_offset_bps=Decimal(1),
    max_net_exposure_pct=Decimal(20),
)
"""At a mid of 60000: each leg's max is 0.025 BTC, and the net limit is 600 USD (0.01 BTC)."""


def book(mid: Decimal | int | str = 60_000, half_spread: Decimal | int = 1) -> BookTop:
    mid = Decimal(mid)
    return BookTop(venue=VENUE, symbol=SYMBOL, bid=mid - half_spread, bid_qty=Decimal(1),
                   ask=mid + half_spread, ask_qty=Decimal(1), ts_venue_ns=0, ts_local_ns=0)


def live(account: str, side: Side, price: str | Decimal, qty: str = "0.005", *,
         cancelling: bool = False, taker: bool = False, client_id: str = "") -> LiveOrder:
    return LiveOrder(client_id=client_id or f"{account}-{side.value}-{price}", account=account,
                     side=side, price=Decimal(price), remaining=Decimal(qty),
                     cancelling=cancelling, taker=taker)


def d(value: str | int) -> Decimal:
    return Decimal(value)


# ---- targets and the phase ---------------------------------------------------------------------


def test_targets_when_phase_one_then_a_long_b_short_and_phase_two_reverses() -> None:
    assert targets(Phase.A_LONG, d(60_000), PARAMS) == (d("0.025"), d("-0.025"))
    assert targets(Phase.B_LONG, d(60_000), PARAMS) == (d("-0.025"), d("0.025"))
    assert Phase.A_LONG.flipped is Phase.B_LONG and Phase.B_LONG.flipped is Phase.A_LONG


def test_initial_phase_when_restarted_then_carries_on_the_phase_positions_show() -> None:
    assert initial_phase(d(0), d(0)) is Phase.A_LONG
    assert initial_phase(d("0.01"), d("-0.01")) is Phase.A_LONG
    assert initial_phase(d("-0.01"), d("0.01")) is Phase.B_LONG


def test_decide_when_both_legs_at_their_targets_then_phase_flips_and_old_steps_cancelled() -> None:
    old = [live(A, Side.BUY, "59990", cancelling=True), live(B, Side.SELL, "60010")]
    decision = decide(Phase.A_LONG, d("0.025"), d("-0.025"), old, book(), PARAMS, INSTRUMENT)
    assert decision.phase is Phase.B_LONG
    assert decision.cancels == (old[1].client_id,)  # the other one's cancel is on its way
    assert [(o.account, o.side, o.qty) for o in decision.orders] == [
        (A, Side.SELL, d("0.005")), (B, Side.BUY, d("0.005")),
    ]


def test_decide_when_only_one_leg_at_target_then_phase_holds_and_the_other_steps() -> None:
    assert not should_flip(Phase.A_LONG, d("0.025"), d("-0.02"), d(60_000), PARAMS, INSTRUMENT)
    decision = decide(Phase.A_LONG, d("0.025"), d("-0.02"), [], book(), PARAMS, INSTRUMENT)
    assert decision.phase is Phase.A_LONG and decision.cancels == ()
    assert decision.orders == (Order(B, Side.SELL, d("0.005"), d(60_006)),)


def test_step_when_room_smaller_than_a_step_then_sized_to_reach_the_max_exactly() -> None:
    order = step(A, d("0.018"), Side.BUY, [], book(), PARAMS, INSTRUMENT)
    assert order == Order(A, Side.BUY, d("0.005"), d(59_994))
    resting = [live(A, Side.BUY, "59994", "0.005")]
    order = step(A, d("0.018"), Side.BUY, resting, book(), PARAMS, INSTRUMENT)
    assert order is not None and order.qty == d("0.002")  # 0.018 + 0.005 + 0.002 = 0.025
    assert step(A, d("0.023"), Side.BUY, resting, book(), PARAMS, INSTRUMENT) is None


def test_step_when_price_carried_leg_past_max_then_trims_reduce_only() -> None:
    # 0.03 BTC long at 60000 is 1800 USD: 0.005 over the 0.025 max.
    order = step(A, d("0.03"), Side.BUY, [], book(), PARAMS, INSTRUMENT)
    assert order == Order(A, Side.SELL, d("0.005"), d(60_006), reduce_only=True)


# ---- never past a leg's max --------------------------------------------------------------------

positions_pct = st.integers(min_value=-150, max_value=150)


Scene = tuple[InventoryCycleParams, Phase, Decimal, Decimal, list[LiveOrder], BookTop]


@st.composite
def scenes(draw: st.DrawFn) -> Scene:
    """A random moment: parameters, phase, both legs' positions, their live orders, a book."""
    bid_ticks = draw(st.integers(min_value=2_000, max_value=400_000))
    spread_ticks = draw(st.integers(min_value=1, max_value=6))
    quote = BookTop(venue=VENUE, symbol=SYMBOL, bid=bid_ticks * TICK, bid_qty=Decimal(1),
                    ask=(bid_ticks + spread_ticks) * TICK, ask_qty=Decimal(1), ts_venue_ns=0,
                    ts_local_ns=0)
    mid = quote.mid
    params = msgspec.structs.replace(
        PARAMS,
        max_position_usd=Decimal(draw(st.integers(min_value=50, max_value=50_000))),
        maker_step=INSTRUMENT.step_size * draw(st.integers(min_value=1, max_value=80)),
        maker_price_offset_bps=Decimal(draw(st.integers(min_value=0, max_value=40))) / 4,
        max_net_exposure_pct=Decimal(draw(st.integers(min_value=1, max_value=100))),
    )
    cap = params.max_position_usd / mid
    position_a = INSTRUMENT.round_qty(cap * draw(positions_pct) / 100)
    position_b = INSTRUMENT.round_qty(cap * draw(positions_pct) / 100)
    # Our live orders sit on the tick grid around the mid (a taker's limit may be further).
    orders = [
        LiveOrder(f"o{i}", account, side, INSTRUMENT.round_price(mid, side) + ticks * TICK,
                  INSTRUMENT.step_size * steps, cancelling, taker)
        for i, (account, side, ticks, steps, cancelling, taker) in enumerate(draw(st.lists(
            st.tuples(st.sampled_from([A, B]), st.sampled_from(list(Side)),
                      st.integers(min_value=-30, max_value=30),
                      st.integers(min_value=1, max_value=20), st.booleans(),
                      st.sampled_from([False, False, False, True])),
            max_size=6,
        )))
    ]
    phase = draw(st.sampled_from(list(Phase)))
    return params, phase, position_a, position_b, orders, quote


@settings(max_examples=400, deadline=None)
@given(scenes())
def test_decide_when_anything_then_no_order_can_take_a_leg_past_its_max(scene: Scene) -> None:
    params, phase, position_a, position_b, orders, quote = scene
    decision = decide(phase, position_a, position_b, orders, quote, params, INSTRUMENT)
    positions = {A: position_a, B: position_b}
    for order in decision.orders:
        held = positions[order.account] * order.side.sign
        # Every order of the leg on this side, resting or just decided, as if all filled.
        same_side = [o.remaining for o in orders
                     if o.account == order.account and o.side is order.side]
        same_side += [o.qty for o in decision.orders
                      if o.account == order.account and o.side is order.side]
        after = held + sum(same_side, Decimal(0))
        if order.reduce_only:
            # A trim, of a leg the price carried past its max: back toward the max, never
            # through it (`after` is then still the far side of it).
            assert held < 0 and -after * quote.mid >= params.max_position_usd
        else:
            assert after * quote.mid <= params.max_position_usd


@settings(max_examples=400, deadline=None)
@given(scenes())
def test_decide_when_anything_then_new_orders_never_cross_any_order_of_either_leg(
    scene: Scene,
) -> None:
    params, phase, position_a, position_b, orders, quote = scene
    decision = decide(phase, position_a, position_b, orders, quote, params, INSTRUMENT)
    for index, order in enumerate(decision.orders):
        others = [*orders, *(LiveOrder("", o.account, o.side, o.price, o.qty)
                             for i, o in enumerate(decision.orders) if i != index)]
        for other in others:
            if other.side is order.side.opposite:
                assert not crosses(order.side, order.price, other.price), (order, other)
        assert order.price > 0 and order.price % TICK == 0
        if not order.taker:  # post-only: it must not take from the book either
            assert (order.price < quote.ask) if order.side is Side.BUY else (
                order.price > quote.bid)


def test_uncrossed_when_price_would_cross_then_moved_one_tick_clear_and_more_passive() -> None:
    sells = [live(B, Side.SELL, "60000.5"), live(B, Side.SELL, "60003")]
    assert uncrossed(Side.BUY, d("60000.5"), sells, TICK) == d("60000")
    assert uncrossed(Side.BUY, d("59999"), sells, TICK) == d("59999")  # already clear
    buys = [live(A, Side.BUY, "60001")]
    assert uncrossed(Side.SELL, d("60000.5"), buys, TICK) == d("60001.5")


def test_decide_when_mid_rose_through_sibling_sell_then_buy_moved_below_it() -> None:
    # B's sell rests from when the mid was 60000; the mid is now 60001 and A's bid would be
    # 60000.5, on B's sell: on a venue the two accounts would trade with each other.
    params = msgspec.structs.replace(PARAMS, maker_price_offset_bps=Decimal("0.05"))
    resting = [live(B, Side.SELL, "60000.5")]
    decision = decide(Phase.A_LONG, d(0), d("-0.005"), resting, book(60_001), params,
                      INSTRUMENT)
    [buy] = [o for o in decision.orders if o.side is Side.BUY]
    assert buy.account == A and buy.price == d("60000")


def test_decide_when_offset_zero_then_the_legs_quotes_still_do_not_meet() -> None:
    params = msgspec.structs.replace(PARAMS, maker_price_offset_bps=Decimal(0))
    decision = decide(Phase.A_LONG, d(0), d(0), [], book(60_000), params, INSTRUMENT)
    [buy, sell] = decision.orders
    assert buy.price == d(60_000) and sell.price == d("60000.5")


# ---- rebalancing -------------------------------------------------------------------------------


def test_rebalance_when_net_exactly_at_limit_then_none_and_one_step_over_then_taker() -> None:
    # 0.01 BTC at 60000 is 600 USD: 20 % of 2 × 1500, the limit itself.
    assert not needs_rebalance(d("0.01"), d(0), d(60_000), PARAMS, INSTRUMENT)
    assert rebalance(Phase.A_LONG, d("0.01"), d(0), [], book(), PARAMS, INSTRUMENT) is None
    assert needs_rebalance(d("0.011"), d(0), d(60_000), PARAMS, INSTRUMENT)
    taker = rebalance(Phase.A_LONG, d("0.011"), d(0), [], book(), PARAMS, INSTRUMENT)
    # B lags (it should be selling): it sells the whole net, IOC, capped 10 bps under the bid.
    assert taker == Order(B, Side.SELL, d("0.011"), d("59939.5"), taker=True)


def test_needs_rebalance_when_net_beyond_limit_but_below_one_order_then_no() -> None:
    tiny = msgspec.structs.replace(PARAMS, max_net_exposure_pct=Decimal("0.5"))  # 15 USD
    assert not needs_rebalance(d("0.0009"), d(0), d(60_000), tiny, INSTRUMENT)
    assert needs_rebalance(d("0.001"), d(0), d(60_000), tiny, INSTRUMENT)


def test_rebalance_when_lagging_leg_near_its_max_then_taker_stops_at_the_max() -> None:
    taker = rebalance(Phase.B_LONG, d("-0.02"), d("0.004"), [], book(), PARAMS, INSTRUMENT)
    assert taker is not None and (taker.account, taker.side) == (B, Side.BUY)
    assert taker.qty == d("0.016")  # the net, 0.016, and B's room is 0.021
    # A went past its max (the price moved): B's room, 0.001, is all it may take.
    taker = rebalance(Phase.B_LONG, d("-0.04"), d("0.024"), [], book(), PARAMS, INSTRUMENT)
    assert taker == Order(B, Side.BUY, d("0.001"), d("60061"), taker=True)


def test_decide_when_net_beyond_limit_then_pair_goes_quiet_then_takes() -> None:
    ahead = live(A, Side.BUY, "59994", client_id="a-buy")  # would be crossed by B's taker
    lagging = live(B, Side.SELL, "60006", client_id="b-sell")  # would double up with it
    decision = decide(Phase.A_LONG, d("0.015"), d("-0.002"), [ahead, lagging], book(), PARAMS,
                      INSTRUMENT)
    assert decision.cancels == ("a-buy", "b-sell") and decision.orders == ()
    cancelling = [dataclasses.replace(o, cancelling=True) for o in (ahead, lagging)]
    decision = decide(Phase.A_LONG, d("0.015"), d("-0.002"), cancelling, book(), PARAMS,
                      INSTRUMENT)
    assert decision.cancels == () and decision.orders == ()  # the cancels have not landed
    decision = decide(Phase.A_LONG, d("0.015"), d("-0.002"), [], book(), PARAMS, INSTRUMENT)
    assert decision.orders == (Order(B, Side.SELL, d("0.013"), d("59939.5"), taker=True),)


def test_decide_when_rebalancing_and_leg_ahead_past_its_max_then_it_still_trims() -> None:
    # The price carried A to 0.04 (past 0.025); B lags at 0.02 short: net 0.02 is beyond 600.
    decision = decide(Phase.A_LONG, d("0.04"), d("-0.02"), [], book(), PARAMS, INSTRUMENT)
    assert Order(A, Side.SELL, d("0.005"), d(60_006), reduce_only=True) in decision.orders
    assert Order(B, Side.SELL, d("0.005"), d("59939.5"), taker=True) in decision.orders


def test_decide_when_taker_in_flight_then_no_second_taker() -> None:
    in_flight = live(B, Side.SELL, "59939.5", "0.013", taker=True)
    decision = decide(Phase.A_LONG, d("0.015"), d("-0.002"), [in_flight], book(), PARAMS,
                      INSTRUMENT)
    assert not any(o.taker for o in decision.orders)


# ---- parameters --------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value"), [
    ("maker_step", Decimal(0)),
    ("max_position_usd", Decimal(-1)),
    ("maker_price_offset_bps", Decimal(-1)),
    ("max_net_exposure_pct", Decimal(101)),
    ("max_net_exposure_pct", Decimal("NaN")),
    ("decision_interval_s", 0.0),
    ("maker_expire_s", float("inf")),
    ("signal_delay_max_s", -1.0),
    ("account_b", A),
])
def test_params_when_invalid_then_params_error_names_the_field(
    field: str, value: object
) -> None:
    with pytest.raises(ParamsError, match=rf"`\$\.{field}`"):
        msgspec.structs.replace(PARAMS, **{field: value})


def test_params_when_converted_from_config_then_legs_are_both_accounts() -> None:
    params = msgspec.convert({"venue": VENUE, "account_a": A, "account_b": B, "symbol": SYMBOL,
                              "maker_step": "0.005", "max_position_usd": "1500"},
                             InventoryCycleParams, strict=False)
    assert {(leg.venue, leg.account) for leg in params.legs()} == {(VENUE, A), (VENUE, B)}
    assert params.reference_venues() == []
    with pytest.raises(msgspec.ValidationError, match="maker_step"):
        msgspec.convert({**msgspec.to_builtins(params), "maker_step": "0"},
                        InventoryCycleParams, strict=False)


# ---- in the daemon -----------------------------------------------------------------------------

STEP, MAX_USD = Decimal("0.005"), Decimal(1500)


def cycle_config(**overrides: object) -> DaemonConfig:
    """The paper config with a still price, only this strategy, and its two accounts in one
    risk hedge group (so risk's self-trade guard covers them as siblings)."""
    base = paper_config()
    assert base.paper is not None
    paper = msgspec.structs.replace(
        base.paper, basis_sigma_bps_per_sqrt_s=0.0,
        symbols=[msgspec.structs.replace(s, volatility_per_sqrt_s=0.0)
                 for s in base.paper.symbols],
    )
    venues = [
        msgspec.structs.replace(v, accounts={**v.accounts, A: Decimal(10_000),
                                             B: Decimal(10_000)}) if v.name == VENUE else v
        for v in base.venues
    ]
    risk = msgspec.structs.replace(base.risk, groups=[HedgeGroup(
        name="cycle", accounts=[f"{VENUE}/{A}", f"{VENUE}/{B}"],
        max_net_exposure_notional=MAX_USD,
    )])
    params: dict[str, object] = {
        "venue": VENUE, "account_a": A, "account_b": B, "symbol": SYMBOL,
        "maker_step": str(STEP), "max_position_usd": str(MAX_USD),
        "maker_price_offset_bps": "0.1", "decision_interval_s": 1.0, "maker_expire_s": 10.0,
        "signal_delay_max_s": 0.5, "max_net_exposure_pct": "20", "seed": 11, **overrides,
    }
    strategy = StrategyConfig(name=NAME, kind="inventory_cycle", params=params)
    return msgspec.structs.replace(base, paper=paper, venues=venues, risk=risk,
                                   strategies=[strategy])


class Samples:
    """What the venue shows every half second: the legs' positions at the mid, and whether
    any resting order of one leg could trade with a resting order of either leg."""

    def __init__(self) -> None:
        self.positions: list[tuple[Decimal, Decimal]] = []
        self.worst_notional = Decimal(0)
        self.crossed: list[tuple[float, Decimal, Decimal]] = []

    def take(self, daemon: RunningDaemon) -> None:
        venue = daemon.assembly.venues[VENUE]
        mid = venue.engine.books[SYMBOL].mid
        assert mid is not None
        qty = [venue.ledger.account(name).positions.get(SYMBOL) for name in (A, B)]
        position_a, position_b = (Decimal(0) if p is None else p.qty for p in qty)
        self.positions.append((position_a, position_b))
        self.worst_notional = max(self.worst_notional, abs(position_a) * mid,
                                  abs(position_b) * mid)
        resting = [o for name in (A, B) for o in venue.ledger.open_orders(name, SYMBOL)]
        bids = [o.price for o in resting if o.side is Side.BUY and o.price is not None]
        asks = [o.price for o in resting if o.side is Side.SELL and o.price is not None]
        if bids and asks and max(bids) >= min(asks):
            self.crossed.append((trio.current_time(), max(bids), min(asks)))


def risk_denials(home: Path, reason: str) -> list[dict[str, object]]:
    store = journal_store(home)
    try:
        details = [json.loads(e.detail) for e in store.events() if e.kind == "risk_denied"]
    finally:
        store.close()
    return [x for x in details if x["reason"] == reason and x["intent"]["strategy"] == NAME]


def legs_met_at_one_price(daemon: RunningDaemon) -> list[tuple[int, Decimal]]:
    """Fills of A and B at the same venue instant and price on opposite sides: what a trade
    between the two accounts would look like. (The paper venue matches us only with its
    synthetic flow, so this stays empty unless the venue itself were wrong.)"""
    fills = daemon.assembly.venues[VENUE].ledger.fills
    seen = {(f.ts_venue_ns, f.price, f.side) for f in fills if f.account == A}
    return [(f.ts_venue_ns, f.price) for f in fills
            if f.account == B and (f.ts_venue_ns, f.price, f.side.opposite) in seen]


def reached_in_order(positions: Sequence[tuple[Decimal, Decimal]], cap: Decimal,
                     targets_in_turn: Sequence[tuple[int, int]]) -> int:
    """How many of the (sign A, sign B) targets the samples reached, one after another."""
    near = cap - STEP / 5  # within one qty step of the max
    reached_count = 0
    for position_a, position_b in positions:
        if reached_count == len(targets_in_turn):
            break
        sign_a, sign_b = targets_in_turn[reached_count]
        if position_a * sign_a >= near and position_b * sign_b >= near:
            reached_count += 1
    return reached_count


async def test_cycle_when_run_then_phase_flips_both_ways_and_no_leg_ever_exceeds_its_max(
    autojump_clock: MockClock, steward_home: Path
) -> None:
    samples = Samples()
    async with running_daemon(steward_home, cycle_config()) as daemon:
        for _ in range(2 * 240):
            await trio.sleep(0.5)
            samples.take(daemon)
        status = await daemon.status()
        met = legs_met_at_one_price(daemon)
    cap = MAX_USD / 60_000
    # +max / -max, then reversed, then back again: the phase flipped at least twice.
    assert reached_in_order(samples.positions, cap, [(1, -1), (-1, 1), (1, -1)]) == 3
    assert samples.worst_notional <= MAX_USD
    assert samples.crossed == [] and met == []
    assert risk_denials(steward_home, "self_trade") == []
    assert all(a.restart_count == 0 for a in status.actors)
    assert status.position_checks and all(check.agrees for check in status.position_checks)


async def test_cycle_when_price_jumps_then_legs_never_cross_and_risk_never_denies_self_trade(
    autojump_clock: MockClock, steward_home: Path
) -> None:
    # The price steps a dollar at a time, up and down, faster than steps expire; the offset
    # is inside the half-spread, so a new bid regularly lands on a sibling's resting ask.
    config = cycle_config(maker_price_offset_bps="0.05", maker_expire_s=20.0)
    samples = Samples()
    async with running_daemon(steward_home, config) as daemon:
        world = daemon.assembly.world
        assert world is not None
        path = [0, 1, 2, 3, 2, 1, 0, -1, -2, -1]
        for tick in range(2 * 150):
            world.market.fair[SYMBOL] = 60_000.0 + path[(tick // 3) % len(path)]
            await trio.sleep(0.5)
            samples.take(daemon)
        met = legs_met_at_one_price(daemon)
    assert samples.crossed == [] and met == []
    assert risk_denials(steward_home, "self_trade") == []
    # It still cycled: each leg reached its max one way and then the other.
    cap = MAX_USD / 60_003
    assert reached_in_order(samples.positions, cap, [(1, -1), (-1, 1)]) == 2
    # The price moved by at most 3 dollars in 60000: so may the legs' notional.
    assert samples.worst_notional <= MAX_USD * (1 + Decimal(3) / 60_000)


def sent(daemon: RunningDaemon) -> list[OrderRequest]:
    """Every order the legs' gateways sent the venue, in order per account."""
    requests: list[OrderRequest] = []
    for name in (A, B):
        client = daemon.assembly.account_client(VENUE, name)
        assert isinstance(client, FaultyAccount)
        requests += client.place_calls
    return requests


def steps(requests: Sequence[OrderRequest]) -> list[OrderRequest]:
    return [r for r in requests if r.tif is TimeInForce.POST_ONLY]


async def test_update_params_when_invalid_then_rejected_naming_field_and_quotes_unchanged(
    autojump_clock: MockClock, steward_home: Path
) -> None:
    async with running_daemon(steward_home, cycle_config(), wrap=FaultyAccount) as daemon:
        strategy = daemon.root.registry.lookup(NAME)
        await trio.sleep(2)
        before: ParamsReply = await strategy.ask(GetParams())
        invalid: list[tuple[dict[str, object], str]] = [
            ({"maker_step": "-0.001"}, "maker_step"),  # out of range
            ({"maker_step": "0.0004"}, "maker_step"),  # under the venue's minimum order
            ({"account_b": A}, "account_b"),  # the legs would be one account
            ({"venue": "paper-b"}, "venue"),  # fixed while running
            ({"maker_stepp": "0.002"}, "maker_stepp"),  # no such field
        ]
        for change, field in invalid:
            reply: ParamsReply = await strategy.ask(UpdateParams(params=change))
            assert not reply.accepted and field in reply.error, (change, reply.error)
            assert reply.params == before.params
        after: ParamsReply = await strategy.ask(GetParams())
        assert after.params == before.params
        already = {r.client_id for r in sent(daemon)}
        await trio.sleep(5)
        later = [r for r in steps(sent(daemon)) if r.client_id not in already]
        assert later and {r.qty for r in later} == {STEP}
        status = await daemon.status()
    assert all(a.restart_count == 0 for a in status.actors)


async def test_update_params_when_valid_then_the_next_steps_use_it(
    autojump_clock: MockClock, steward_home: Path
) -> None:
    async with running_daemon(steward_home, cycle_config(), wrap=FaultyAccount) as daemon:
        strategy = daemon.root.registry.lookup(NAME)
        await trio.sleep(2)
        assert {r.qty for r in steps(sent(daemon))} == {STEP}
        dry: ParamsReply = await strategy.ask(UpdateParams(params={"maker_step": "0.002"},
                                                           dry_run=True))
        assert dry.accepted and (await strategy.ask(GetParams())).params["maker_step"] == "0.005"
        already = {r.client_id for r in sent(daemon)}
        reply: ParamsReply = await strategy.ask(UpdateParams(
            params={"maker_step": "0.002", "maker_price_offset_bps": "0.5"}))
        assert reply.accepted and reply.params["maker_step"] == "0.002"
        await trio.sleep(3)
        later = [r for r in steps(sent(daemon)) if r.client_id not in already]
        # At most the new step (less only where a leg's max leaves less room), 0.5 bps from
        # the mid of 60000, which is 3 dollars: bids at 59997, asks at 60003.
        assert later and all(r.qty <= Decimal("0.002") for r in later)
        assert {r.price for r in later if r.side is Side.BUY} <= {Decimal(59_997)}
        assert {r.price for r in later if r.side is Side.SELL} <= {Decimal(60_003)}
