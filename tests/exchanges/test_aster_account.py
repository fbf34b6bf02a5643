"""AsterAccount over AsterRest against the in-memory venue (`aster_sim.py`), via MockTransport."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

import httpx
import pytest
import trio

from exchanges import (
    Instrument,
    OrderOutcomeUnknownError,
    OrderRequest,
    OrderStatus,
    OrderType,
    RateLimitedError,
    RejectReason,
    Side,
    TimeInForce,
    VenueAuthError,
    VenueRejectedError,
    VenueTransportError,
)
from exchanges.aster import AsterAccount, AsterHmacAuth, AsterRest
from exchanges.aster._account import MAX_TRACKED_CLIENT_IDS, LruMap, _Trade
from exchanges.aster._user_stream import OrderUpdate

from .aster_sim import AsterSimulator

T0_MS = 1_760_000_000_000
BTC = Instrument(venue="aster", symbol="BTCUSDT", base="BTC", quote="USDT",
                 tick_size=Decimal("0.1"), step_size=Decimal("0.001"), min_qty=Decimal("0.001"),
                 min_notional=Decimal(5))
ETH = Instrument(venue="aster", symbol="ETHUSDT", base="ETH", quote="USDT",
                 tick_size=Decimal("0.01"), step_size=Decimal("0.01"), min_qty=Decimal("0.01"),
                 min_notional=Decimal(5))


@dataclass
class Venue:
    sim: AsterSimulator
    rest: AsterRest
    account: AsterAccount
    secret: str


class Clock:
    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


def make_venue(*, skew_ms: int = 0, wrong_secret: bool = False) -> Venue:
    api_key, secret = os.urandom(32).hex(), os.urandom(32).hex()
    local = Clock(T0_MS)
    sim = AsterSimulator(api_key=api_key, secret=secret, instruments=[BTC, ETH],
                         clock_ms=lambda: local() + skew_ms)
    sim.set_book("BTCUSDT", Decimal("60000.0"), Decimal("60000.1"))
    sim.set_book("ETHUSDT", Decimal("3000.00"), Decimal("3000.01"))
    auth = AsterHmacAuth(api_key, os.urandom(32).hex() if wrong_secret else secret, clock=local)
    rest = AsterRest(auth, base_url="https://fapi.test", transport=httpx.MockTransport(sim.handle),
                     clock_ms=local)
    return Venue(sim, rest, AsterAccount(rest, account="main", symbols=["BTCUSDT", "ETHUSDT"]),
                 secret)


@pytest.fixture
async def venue() -> AsyncIterator[Venue]:
    v = make_venue()
    async with v.rest:
        yield v


def limit(client_id: str, side: Side, qty: str, price: str, *, symbol: str = "BTCUSDT",
          tif: TimeInForce = TimeInForce.GTC, reduce_only: bool = False) -> OrderRequest:
    return OrderRequest(client_id=client_id, symbol=symbol, side=side,
                        order_type=OrderType.LIMIT, qty=Decimal(qty), price=Decimal(price),
                        tif=tif, reduce_only=reduce_only)


def market(client_id: str, side: Side, qty: str, *, reduce_only: bool = False) -> OrderRequest:
    return OrderRequest(client_id=client_id, symbol="BTCUSDT", side=side,
                        order_type=OrderType.MARKET, qty=Decimal(qty), reduce_only=reduce_only)


# ---------------------------------------------------------------------------------------------
# Happy paths


async def test_place_order_when_limit_rests_then_open_with_exact_decimals_sent(venue: Venue):
    with trio.fail_after(5):
        order = await venue.account.place_order(limit("mm-1", Side.BUY, "0.010", "59000.0"))

    assert order.status is OrderStatus.OPEN
    assert (order.client_id, order.symbol, order.side) == ("mm-1", "BTCUSDT", Side.BUY)
    assert (order.qty, order.price, order.filled_qty) == (
        Decimal("0.010"), Decimal("59000.0"), Decimal(0))
    assert order.ts_venue_ns == T0_MS * 1_000_000
    sent = venue.sim.received[-1]
    assert sent.query == ""
    assert sent.body.startswith("symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC"
                                "&quantity=0.010&price=59000.0&newClientOrderId=mm-1"
                                "&newOrderRespType=RESULT&recvWindow=5000&timestamp=")


async def test_place_order_when_decimal_has_exponent_then_sent_in_plain_notation(venue: Venue):
    with trio.fail_after(5):
        await venue.account.place_order(limit("e-1", Side.SELL, "1E-2", "6.1E+4"))

    params = venue.sim.received[-1].params
    assert (params["quantity"], params["price"]) == ("0.01", "61000")


async def test_place_order_when_limit_crosses_then_filled_at_touch_and_fill_reported(
        venue: Venue):
    with trio.fail_after(5):
        order = await venue.account.place_order(limit("t-1", Side.BUY, "0.002", "60100.0"))
        fills = await venue.account.fills(since_ns=0)
        positions = await venue.account.positions()

    assert (order.status, order.filled_qty) == (OrderStatus.FILLED, Decimal("0.002"))
    [fill] = fills
    assert (fill.fill_id, fill.client_id, fill.venue_order_id) == (
        f"BTCUSDT:1:{order.venue_order_id}", "t-1", order.venue_order_id)
    assert (fill.price, fill.qty, fill.fee_asset) == (Decimal("60000.1"), Decimal("0.002"), "USDT")
    assert fill.fee == Decimal("60000.1") * Decimal("0.002") * Decimal("0.0004")
    assert [(p.symbol, p.qty, p.entry_price) for p in positions] == [
        ("BTCUSDT", Decimal("0.002"), Decimal("60000.1"))]


async def test_place_order_when_market_reduce_only_then_closes_position(venue: Venue):
    with trio.fail_after(5):
        await venue.account.place_order(market("open-1", Side.SELL, "0.001"))
        closing = await venue.account.place_order(
            market("close-1", Side.BUY, "0.001", reduce_only=True))
        positions = await venue.account.positions()

    assert closing.status is OrderStatus.FILLED
    assert (closing.order_type, closing.price, closing.reduce_only) == (
        OrderType.MARKET, None, True)
    assert venue.sim.received[-2].params["reduceOnly"] == "true"
    assert "price" not in venue.sim.received[-2].params
    assert positions == []


async def test_place_order_when_ioc_not_marketable_then_expired(venue: Venue):
    with trio.fail_after(5):
        order = await venue.account.place_order(
            limit("ioc-1", Side.BUY, "0.001", "59000.0", tif=TimeInForce.IOC))

    assert (order.status, order.tif) == (OrderStatus.EXPIRED, TimeInForce.IOC)


async def test_place_order_when_client_id_invalid_for_aster_then_hashed_and_ours_returned(
        venue: Venue):
    ours = "strategy one/order #1"
    with trio.fail_after(5):
        placed = await venue.account.place_order(limit(ours, Side.BUY, "0.001", "59000.0"))
        found = await venue.account.get_order("BTCUSDT", ours)

    assert venue.sim.received[-1].params["origClientOrderId"].startswith("h-")
    assert placed.client_id == found.client_id == ours


async def test_cancel_order_when_open_then_cancelled(venue: Venue):
    with trio.fail_after(5):
        await venue.account.place_order(limit("c-1", Side.SELL, "0.001", "61000.0"))
        cancelled = await venue.account.cancel_order("BTCUSDT", "c-1")
        still_open = await venue.account.open_orders()

    assert cancelled.status is OrderStatus.CANCELLED
    assert venue.sim.received[-2].body.startswith("symbol=BTCUSDT&origClientOrderId=c-1&")
    assert still_open == []


async def test_cancel_all_when_no_symbol_then_every_symbol_with_open_orders_cancelled(
        venue: Venue):
    with trio.fail_after(5):
        await venue.account.place_order(limit("a-1", Side.BUY, "0.001", "59000.0"))
        await venue.account.place_order(
            limit("a-2", Side.BUY, "0.01", "2900.00", symbol="ETHUSDT"))
        cancelled = await venue.account.cancel_all()
        still_open = await venue.account.open_orders()

    assert sorted((o.client_id, o.status) for o in cancelled) == [
        ("a-1", OrderStatus.CANCELLED), ("a-2", OrderStatus.CANCELLED)]
    assert [r.params["symbol"] for r in venue.sim.received if r.path.endswith("allOpenOrders")] \
        == ["BTCUSDT", "ETHUSDT"]
    assert still_open == []


async def test_open_orders_when_symbol_given_then_only_that_symbol(venue: Venue):
    with trio.fail_after(5):
        await venue.account.place_order(limit("o-1", Side.BUY, "0.001", "59000.0"))
        await venue.account.place_order(
            limit("o-2", Side.BUY, "0.01", "2900.00", symbol="ETHUSDT"))
        eth = await venue.account.open_orders("ETHUSDT")

    assert [o.client_id for o in eth] == ["o-2"]


async def test_balances_when_read_then_quote_balance_less_fees(venue: Venue):
    with trio.fail_after(5):
        await venue.account.place_order(market("m-1", Side.BUY, "0.001"))
        [balance] = await venue.account.balances()

    fee = Decimal("60000.1") * Decimal("0.001") * Decimal("0.0004")
    assert (balance.asset, balance.total, balance.available) == (
        "USDT", Decimal(10_000) - fee, Decimal(10_000) - fee)


async def test_funding_when_payments_exist_then_those_since_returned_oldest_first(venue: Venue):
    venue.sim.add_funding("BTCUSDT", Decimal("-0.12"), T0_MS - 10)
    venue.sim.add_funding("BTCUSDT", Decimal("0.30"), T0_MS + 20)
    venue.sim.add_funding("ETHUSDT", Decimal("-0.05"), T0_MS + 10)
    with trio.fail_after(5):
        payments = await venue.account.funding(since_ns=T0_MS * 1_000_000)

    assert [(p.symbol, p.amount, p.ts_venue_ns) for p in payments] == [
        ("ETHUSDT", Decimal("-0.05"), (T0_MS + 10) * 1_000_000),
        ("BTCUSDT", Decimal("0.30"), (T0_MS + 20) * 1_000_000)]
    assert venue.sim.received[-1].params["incomeType"] == "FUNDING_FEE"


async def test_arm_cancel_all_after_when_called_then_countdown_set_per_symbol(venue: Venue):
    with trio.fail_after(5):
        armed = await venue.account.arm_cancel_all_after("BTCUSDT", 120_000)

    assert armed is True
    assert venue.sim.countdowns == {"BTCUSDT": 120_000}


async def test_instruments_when_read_then_filters_parsed(venue: Venue):
    with trio.fail_after(5):
        instruments = await venue.rest.instruments()

    assert instruments == [BTC, ETH]


# ---------------------------------------------------------------------------------------------
# Rejections


@pytest.mark.parametrize(("request_", "reason", "code"), [
    (limit("x", Side.BUY, "0.001", "59000.05"), RejectReason.PRICE_TICK, "-4014"),
    (limit("x", Side.BUY, "0.0015", "59000.0"), RejectReason.QTY_STEP, "-1111"),
    (limit("x", Side.BUY, "0.015", "2900.00", symbol="ETHUSDT"), RejectReason.QTY_STEP, "-1111"),
    (limit("x", Side.BUY, "0.001", "1000.0"), RejectReason.MIN_NOTIONAL, "-4164"),
    (limit("x", Side.BUY, "0.001", "60000.1", tif=TimeInForce.POST_ONLY),
     RejectReason.POST_ONLY_WOULD_TAKE, "-5022"),
    (market("x", Side.BUY, "0.001", reduce_only=True),
     RejectReason.REDUCE_ONLY_WOULD_INCREASE, "-2022"),
])
async def test_place_order_when_filter_broken_then_typed_rejection(
        venue: Venue, request_: OrderRequest, reason: RejectReason, code: str):
    with trio.fail_after(5), pytest.raises(VenueRejectedError) as caught:
        await venue.account.place_order(request_)

    assert (caught.value.reason, caught.value.code) == (reason, code)
    assert venue.sim.orders == {}


async def test_place_order_when_qty_not_step_multiple_then_qty_step(venue: Venue):
    venue.sim.instruments["BTCUSDT"] = Instrument(
        venue="aster", symbol="BTCUSDT", base="BTC", quote="USDT", tick_size=Decimal("0.1"),
        step_size=Decimal("0.002"), min_qty=Decimal("0.002"))
    with trio.fail_after(5), pytest.raises(VenueRejectedError) as caught:
        await venue.account.place_order(limit("x", Side.BUY, "0.003", "59000.0"))

    assert (caught.value.reason, caught.value.code) == (RejectReason.QTY_STEP, "-4023")


async def test_get_order_when_unknown_then_unknown_order(venue: Venue):
    with trio.fail_after(5), pytest.raises(VenueRejectedError) as caught:
        await venue.account.get_order("BTCUSDT", "nope")

    assert (caught.value.reason, caught.value.code) == (RejectReason.UNKNOWN_ORDER, "-2013")


async def test_cancel_order_when_unknown_then_unknown_order(venue: Venue):
    with trio.fail_after(5), pytest.raises(VenueRejectedError) as caught:
        await venue.account.cancel_order("BTCUSDT", "nope")

    assert (caught.value.reason, caught.value.code) == (RejectReason.UNKNOWN_ORDER, "-2011")


async def test_signed_call_when_secret_wrong_then_auth_error():
    v = make_venue(wrong_secret=True)
    async with v.rest:
        with trio.fail_after(5), pytest.raises(VenueAuthError) as caught:
            await v.account.balances()

    assert "-1022" in str(caught.value)


async def test_signed_call_when_clock_skewed_then_sync_clock_fixes_it():
    v = make_venue(skew_ms=-30_000)  # the venue is 30 s behind us
    async with v.rest:
        with trio.fail_after(5):
            with pytest.raises(VenueRejectedError) as caught:
                await v.account.balances()
            offset = await v.rest.sync_clock()
            balances = await v.account.balances()

    assert caught.value.reason is RejectReason.TIMESTAMP
    assert offset == -30_000 and v.rest.auth.offset_ms == -30_000
    assert len(balances) == 1


# ---------------------------------------------------------------------------------------------
# Unknown outcomes, rate limits, transport failures


async def test_place_order_when_503_but_placed_then_unknown_and_get_order_finds_it(
        venue: Venue):
    venue.sim.fail_next("/fapi/v1/order", 503, then_process=True)
    request = limit("u-1", Side.BUY, "0.001", "59000.0")
    with trio.fail_after(5):
        with pytest.raises(OrderOutcomeUnknownError) as unknown:
            await venue.account.place_order(request)
        found = await venue.account.get_order("BTCUSDT", "u-1")
        with pytest.raises(VenueRejectedError) as duplicate:
            await venue.account.place_order(request)
        still_open = await venue.account.open_orders()

    assert unknown.value.client_id == "u-1"
    assert (found.client_id, found.status) == ("u-1", OrderStatus.OPEN)
    assert duplicate.value.code == "-2010"
    assert duplicate.value.reason is RejectReason.DUPLICATE_CLIENT_ID
    assert [o.client_id for o in still_open] == ["u-1"]


async def test_place_order_when_503_not_placed_then_unknown_and_nothing_open(venue: Venue):
    venue.sim.fail_next("/fapi/v1/order", 503)
    with trio.fail_after(5):
        with pytest.raises(OrderOutcomeUnknownError):
            await venue.account.place_order(limit("u-2", Side.BUY, "0.001", "59000.0"))
        assert await venue.account.open_orders() == []


async def test_read_when_503_then_transport_error(venue: Venue):
    venue.sim.fail_next("/fapi/v2/balance", 503)
    with trio.fail_after(5), pytest.raises(VenueTransportError):
        await venue.account.balances()


@pytest.mark.parametrize(("status", "banned"), [(429, False), (418, True)])
async def test_call_when_rate_limited_then_rate_limited_error_with_retry_after(
        venue: Venue, status: int, banned: bool):
    venue.sim.fail_next("/fapi/v1/order", status, retry_after_s=7)
    with trio.fail_after(5), pytest.raises(RateLimitedError) as caught:
        await venue.account.place_order(limit("r-1", Side.BUY, "0.001", "59000.0"))

    assert (caught.value.retry_after_s, caught.value.ip_banned) == (7.0, banned)
    assert venue.sim.orders == {}


def _timing_out(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("timed out", request=request)


@pytest.mark.parametrize(("placing", "expected"), [
    (True, OrderOutcomeUnknownError), (False, VenueTransportError)])
async def test_call_when_no_response_then_unknown_on_place_else_transport_without_signature(
        placing: bool, expected: type[Exception]):
    auth = AsterHmacAuth(os.urandom(32).hex(), os.urandom(32).hex())
    async with AsterRest(auth, base_url="https://fapi.test",
                         transport=httpx.MockTransport(_timing_out)) as rest:
        account = AsterAccount(rest, account="main")
        with trio.fail_after(5), pytest.raises(expected) as caught:
            if placing:
                await account.place_order(limit("n-1", Side.BUY, "0.001", "59000.0"))
            else:
                await account.get_order("BTCUSDT", "n-1")

    text = str(caught.value)
    assert "ReadTimeout" in text and "signature" not in text and "timestamp" not in text
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def _refusing(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


async def test_place_order_when_connection_refused_then_transport_error_not_unknown_outcome():
    auth = AsterHmacAuth(os.urandom(32).hex(), os.urandom(32).hex())
    async with AsterRest(auth, base_url="https://fapi.test",
                         transport=httpx.MockTransport(_refusing)) as rest:
        account = AsterAccount(rest, account="main")
        with trio.fail_after(5), pytest.raises(VenueTransportError) as caught:
            await account.place_order(limit("c-1", Side.BUY, "0.001", "59000.0"))

    assert not isinstance(caught.value, OrderOutcomeUnknownError)
    assert "ConnectError" in str(caught.value) and "signature" not in str(caught.value)


def _garbled_success(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, text="<html>ok</html>")


async def test_place_order_when_success_body_unreadable_then_unknown_outcome():
    auth = AsterHmacAuth(os.urandom(32).hex(), os.urandom(32).hex())
    async with AsterRest(auth, base_url="https://fapi.test",
                         transport=httpx.MockTransport(_garbled_success)) as rest:
        account = AsterAccount(rest, account="main")
        with trio.fail_after(5), pytest.raises(OrderOutcomeUnknownError) as caught:
            await account.place_order(limit("g-1", Side.BUY, "0.001", "59000.0"))

    assert caught.value.client_id == "g-1"


# ---------------------------------------------------------------------------------------------
# Fill ids across our own accounts; bounded client-id memory


def _both_sides_of_one_trade() -> tuple[_Trade, _Trade]:
    """One trade (id 5) as the buyer's and the seller's `userTrades` rows: same id, two orders."""
    common = {"id": 5, "symbol": "BTCUSDT", "price": Decimal("60000.0"), "qty": Decimal("0.01"),
              "commission": Decimal(0), "commissionAsset": "USDT", "time": T0_MS}
    return (_Trade(orderId=11, side="BUY", maker=True, **common),
            _Trade(orderId=12, side="SELL", maker=False, **common))


async def test_fills_when_two_of_our_accounts_trade_together_then_fill_ids_differ(venue: Venue):
    # The journal keys fills by (venue, fill_id): `<symbol>:<tradeId>` alone made the second
    # account's fill a "duplicate" of the first one's, and it was dropped.
    buyer = AsterAccount(venue.rest, account="a", symbols=["BTCUSDT"])
    seller = AsterAccount(venue.rest, account="b", symbols=["BTCUSDT"])
    buy, sell = _both_sides_of_one_trade()
    buyer._client_ids[11], seller._client_ids[12] = "buy-1", "sell-1"
    with trio.fail_after(5):
        fills = [await buyer._fill(buy), await seller._fill(sell)]
    assert [f.fill_id for f in fills] == ["BTCUSDT:5:11", "BTCUSDT:5:12"]
    stream = [account._stream_fill(OrderUpdate(
        s="BTCUSDT", c=cid, S=t.side, o="LIMIT", X="FILLED", x="TRADE", i=t.orderId,
        q=t.qty, z=t.qty, T=t.time, l=t.qty, L=t.price, N="USDT", t=t.id, m=t.maker))
        for account, t, cid in ((buyer, buy, "buy-1"), (seller, sell, "sell-1"))]
    assert [f.fill_id for f in stream] == [f.fill_id for f in fills]  # REST == stream
    assert venue.sim.received == []  # client ids were known: no lookup


def test_lru_map_when_over_capacity_then_least_recently_used_forgotten():
    lru: LruMap[int, str] = LruMap(2)
    lru[1], lru[2] = "a", "b"
    assert lru.get(1) == "a"  # 1 is now the newest
    lru[3] = "c"
    assert (len(lru), lru.get(2), lru.get(1), lru.get(3)) == (2, None, "a", "c")
    lru[1] = "a2"
    lru[4] = "d"
    assert (1 in lru, 3 in lru, 4 in lru) == (True, False, True)
    with pytest.raises(ValueError):
        LruMap(0)


async def test_place_order_when_many_orders_then_client_id_maps_stay_bounded(venue: Venue):
    assert venue.account._client_ids.capacity == MAX_TRACKED_CLIENT_IDS == 65536
    assert venue.account._ours.capacity == MAX_TRACKED_CLIENT_IDS
    venue.account._client_ids = LruMap(3)
    venue.account._ours = LruMap(3)
    with trio.fail_after(5):
        orders = [await venue.account.place_order(limit(f"strategy one/order {n}", Side.BUY,
                                                        "0.001", "50000.0"))
                  for n in range(10)]  # spaces: hashed ids, so `_ours` is used too
        newest = await venue.account.open_orders()
    assert (len(venue.account._client_ids), len(venue.account._ours)) == (3, 3)
    by_id = {o.venue_order_id: o.client_id for o in newest}
    assert by_id[orders[-1].venue_order_id] == "strategy one/order 9"  # newest still mapped
