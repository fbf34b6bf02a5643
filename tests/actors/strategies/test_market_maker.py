"""The market maker's decisions, as pure functions: layers, skew, thresholds, rounding."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import trio

from actors.feed import MarketTopics
from actors.messages import UpdateParams, strategy_tag
from actors.strategies import MarketMaker, MarketMakerParams, quotes
from actors.strategies.market_maker import spot_rebalance, spot_target
from exchanges import AccountClient, Instrument, Side, VenueOrder
from supervisor._config import StrategyConfig
from tests.faults import FaultyAccount
from tests.trading import paper_config, running_daemon

D = Decimal
BTC = Instrument(venue="paper-a", symbol="BTC-PERP", base="BTC", quote="USDT",
                 tick_size=D("0.5"), step_size=D("0.001"), min_qty=D("0.001"),
                 min_notional=D(5))
PARAMS = MarketMakerParams(
    venue="paper-a", account="mm", symbol="BTC-PERP", quantity=D("0.01"),
    max_position=D("0.1"), spread_bps=D(10), layer_step_bps=D(5), max_orders=2,
    inventory_skew=D("0.5"), position_threshold=D("0.05"),
)
MID = D(60_000)
FLAT = D(0)


def prices(side: Side, position: Decimal = FLAT, params: MarketMakerParams = PARAMS) -> list[D]:
    return [q.price for q in quotes(MID, position, params, BTC) if q.side is side]


def test_quotes_when_flat_then_layers_each_side_around_mid_rounded_away_from_crossing():
    assert prices(Side.BUY) == [D("59940.0"), D("59910.0")]  # 10 and 15 bps below, rounded down
    assert prices(Side.SELL) == [D("60060.0"), D("60090.0")]
    assert all(q.qty == D("0.01") and not q.reduce_only for q in quotes(MID, D(0), PARAMS, BTC))


def test_quotes_when_long_then_shift_down_against_inventory_by_the_skew():
    long = D("0.04")  # inside the threshold: both sides still quoted
    shift_bps = -(long / PARAMS.max_position) * PARAMS.inventory_skew * PARAMS.spread_bps  # -2
    assert prices(Side.BUY, long)[0] == BTC.round_price(
        MID * (1 + (shift_bps - PARAMS.spread_bps) / 10_000), Side.BUY)
    assert prices(Side.SELL, long)[0] < prices(Side.SELL)[0]
    assert prices(Side.BUY, -long)[0] > prices(Side.BUY)[0]  # short: quotes move up


def test_quotes_when_past_target_plus_threshold_then_only_reduce_the_excess():
    wanted = quotes(MID, D("0.08"), PARAMS, BTC)
    assert {q.side for q in wanted} == {Side.SELL}  # nothing that would add
    first = wanted[0]
    assert first.reduce_only and first.qty == D("0.03")  # 0.08 - (0 + 0.05)


def test_quotes_when_past_max_position_then_reduce_to_the_max():
    first = quotes(MID, D("0.25"), PARAMS, BTC)[0]
    assert (first.side, first.qty, first.reduce_only) == (Side.SELL, D("0.20"), True)


def test_quotes_when_target_is_away_from_zero_then_moving_toward_it_is_not_reduce_only():
    params = msgspec.structs.replace(PARAMS, target_position=D("0.08"))
    first = next(q for q in quotes(MID, D(0), params, BTC) if q.side is Side.BUY)
    assert first.qty == D("0.03") and not first.reduce_only  # buying adds to a flat book


def test_follow_mode_when_other_venue_diverges_then_reference_is_clamped():
    params = msgspec.structs.replace(PARAMS, follow_venue="paper-b",
                                     max_divergence_bps=D(5))
    maker = MarketMaker(params, MarketTopics(), BTC)
    maker.own_mid, maker.follow_mid = MID, MID * D("1.01")  # one bad tick, 100 bps away
    assert maker._reference() == MID * D("1.0005")
    maker.follow_mid = MID * D("1.0001")
    assert maker._reference() == MID * D("1.0001")


async def test_update_params_when_invalid_then_rejected_naming_the_field_and_unchanged():
    maker = MarketMaker(PARAMS, MarketTopics(), BTC)
    for bad in ({"spread_bps": "NaN"}, {"quantity": "-1"}, {"inventory_skew": "2"},
                {"spreadbps": "3"}):
        reply = await maker.on_update_params(UpdateParams(params=bad))
        assert not reply.accepted
        assert next(iter(bad)) in reply.error
        assert maker.params == PARAMS


async def test_update_params_when_valid_then_next_quotes_use_it():
    maker = MarketMaker(PARAMS, MarketTopics(), BTC)
    reply = await maker.on_update_params(UpdateParams(params={"spread_bps": "20"}))
    assert reply.accepted and maker.params.spread_bps == D(20)
    assert quotes(MID, D(0), maker.params, BTC)[0].price == D("59880.0")


def test_client_id_tags_when_names_share_a_prefix_then_differ():
    assert strategy_tag("market_maker_btc") != strategy_tag("market_maker_eth")
    assert len(strategy_tag("a" * 200)) <= 10


# ---- spot mode ---------------------------------------------------------------------------------

BTC_SPOT = msgspec.structs.replace(BTC, symbol="BTC-USDT", kind="spot")
SPOT = msgspec.structs.replace(PARAMS, symbol="BTC-USDT", base_asset_target_pct=D(50),
                               rebalance_threshold_pct=D(10))


def test_spot_rebalance_when_within_threshold_then_nothing_beyond_then_back_to_target():
    # 0.1 BTC at 60000 = 6000 of 12000: exactly the 50 % target
    assert spot_rebalance(D("0.1"), D(6_000), MID, SPOT, BTC_SPOT) is None
    # 60 % in base: at the threshold's edge, still nothing
    assert spot_rebalance(D("0.12"), D(4_800), MID, SPOT, BTC_SPOT) is None
    # all quote: buy half the value
    order = spot_rebalance(D(0), D(12_000), MID, SPOT, BTC_SPOT)
    assert order is not None and (order.side, order.qty) == (Side.BUY, D("0.1"))
    order = spot_rebalance(D("0.2"), D(0), MID, SPOT, BTC_SPOT)
    assert order is not None and (order.side, order.qty) == (Side.SELL, D("0.1"))
    capped = msgspec.structs.replace(SPOT, rebalance_max_qty=D("0.03"))
    order = spot_rebalance(D(0), D(12_000), MID, capped, BTC_SPOT)
    assert order is not None and order.qty == D("0.03")


def test_spot_quotes_when_far_from_target_then_never_reduce_only():
    target = spot_target(D("0.2"), D(0), MID, SPOT)
    wanted = quotes(MID, D("0.2"), SPOT, BTC_SPOT, target)
    assert wanted and not any(q.reduce_only for q in wanted)


async def test_spot_market_maker_when_run_then_rebalances_to_target_and_quotes(
    autojump_clock, steward_home
):
    config = paper_config()
    assert config.paper is not None
    spot_symbol = msgspec.structs.replace(config.paper.symbols[0], symbol="BTC-USDT",
                                          kind="spot")
    paper = msgspec.structs.replace(config.paper, symbols=[*config.paper.symbols, spot_symbol])
    venues = [msgspec.structs.replace(
        config.venues[0], accounts={**config.venues[0].accounts,
                                    "spot": {"USDT": D(20_000), "BTC": D(0)}},
    ), *config.venues[1:]]
    strategy = StrategyConfig(name="mm-spot", kind="market_maker", params={
        "venue": "paper-a", "account": "spot", "symbol": "BTC-USDT", "quantity": "0.005",
        "max_position": "0.2", "spread_bps": "1.5", "interval_s": 2.0,
        "base_asset_target_pct": "50", "rebalance_threshold_pct": "10",
        "rebalance_max_qty": "0.05",  # 3000 USDT a step, under risk's 5000 order limit
    })
    config = msgspec.structs.replace(config, paper=paper, venues=venues, strategies=[strategy])
    async with running_daemon(steward_home, config) as daemon:
        await trio.sleep(120)
        venue = daemon.assembly.venues["paper-a"]
        balances = venue.ledger.account("spot").balances
        mid = venue.engine.books["BTC-USDT"].mid
        assert mid is not None
        share = balances["BTC"] * mid / (balances["BTC"] * mid + balances["USDT"]) * 100
        assert abs(share - 50) <= 10 + 2  # within the threshold (a step of slack)
        fills = [f for f in venue.ledger.fills if f.symbol == "BTC-USDT"]
        assert any(f.liquidity.value == "taker" for f in fills)  # the rebalance
        assert any(f.liquidity.value == "maker" for f in fills)  # and quoting after it
        status = await daemon.status()
        assert all(a.restart_count == 0 for a in status.actors)


class LosesOneCancel(FaultyAccount):
    """Loses the first cancel sent after `armed` is set (its request never arrives)."""

    armed = False
    lost: list[str]

    async def cancel_order(self, symbol: str, client_id: str) -> VenueOrder:
        if self.armed and not self.lost:
            self.lost = [client_id]
            self.cancel_faults.append("lost_request")
        return await super().cancel_order(symbol, client_id)


async def test_market_maker_when_a_cancel_is_lost_then_it_cancels_again(
    autojump_clock, steward_home
):
    """Review: the lost cancel's quote rested for good, unwatched. The gateway now tells the
    owner its cancel failed, and the owner cancels again."""
    base = paper_config()
    assert base.paper is not None
    mm = next(s for s in base.strategies if s.name == "mm-btc-a")
    mm = msgspec.structs.replace(mm, params={**mm.params, "order_expire_s": None})
    btc = next(s for s in base.paper.symbols if s.symbol == "BTC-PERP")
    still = msgspec.structs.replace(btc, volatility_per_sqrt_s=0.0, trade_rate_per_s=0.0)
    paper = msgspec.structs.replace(base.paper, symbols=[still],
                                    basis_sigma_bps_per_sqrt_s=0.0)
    config = msgspec.structs.replace(base, strategies=[mm], paper=paper)

    def wrap(client: AccountClient) -> AccountClient:
        faulty = LosesOneCancel(client)
        faulty.lost = []
        return faulty

    async with running_daemon(steward_home, config, wrap=wrap) as daemon:
        await trio.sleep(5)
        client = daemon.assembly.account_client("paper-a", "mm")
        assert isinstance(client, LosesOneCancel)
        client.armed = True
        reply = await daemon.root.registry.lookup("mm-btc-a").ask(
            UpdateParams(params={"spread_bps": "20"}))  # every quote must move
        assert reply.accepted
        await trio.sleep(60)
        open_orders = daemon.assembly.venues["paper-a"].ledger.account("mm").open_orders
        assert client.lost and not [cid for cid in client.lost if cid in open_orders]
