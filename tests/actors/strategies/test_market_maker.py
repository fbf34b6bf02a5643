"""The market maker's decisions, as pure functions: layers, skew, thresholds, rounding."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from actors.feed import MarketTopics
from actors.messages import UpdateParams, strategy_tag
from actors.strategies import MarketMaker, MarketMakerParams, quotes
from exchanges import Instrument, Side

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
