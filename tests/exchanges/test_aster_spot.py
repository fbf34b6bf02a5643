"""Aster spot: `AsterSpotAccount` and `AsterSpotMarketData` over `AsterRest` against the
in-memory spot venue (`aster_spot_sim.py`) via MockTransport, and their WebSocket sides against
the `ws_sim` loopback server.

The spot HMAC vector (venues.md §3.2) is already checked through `AsterHmacAuth` in
`test_aster_auth.py`; here every request is signed and verified by the simulator instead.
Every test bounds itself with `trio.fail_after`; nothing sleeps in real time except the
keepalive test's shortened interval.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

import httpx
import pytest
import trio

from exchanges import (
    Balance,
    BookTop,
    Fill,
    Instrument,
    Liquidity,
    OrderOutcomeUnknownError,
    OrderRequest,
    OrderStatus,
    OrderType,
    RejectReason,
    Side,
    TimeInForce,
    VenueAuthError,
    VenueOrder,
    VenueRejectedError,
    VenueTransportError,
)
from exchanges.aster import (
    SPOT_BASE_URL,
    SPOT_WS_URL,
    AsterHmacAuth,
    AsterRest,
    AsterSpotAccount,
    AsterSpotMarketData,
)

from .aster_spot_sim import LISTEN_KEY, AsterSpotSimulator
from .ws_sim import open_ws_sim

T0_MS = 1_760_000_000_000
BOUND_S = 5
BNB = Instrument(venue="aster", symbol="BNBUSDT", base="BNB", quote="USDT",
                 tick_size=Decimal("0.01"), step_size=Decimal("0.001"), min_qty=Decimal("0.001"),
                 min_notional=Decimal(5), kind="spot")
TAKER = Decimal("0.001")
MAKER = Decimal("0.0005")


class Clock:
    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


@dataclass
class Venue:
    sim: AsterSpotSimulator
    rest: AsterRest
    account: AsterSpotAccount
    clock: Clock


def make_venue(*, skew_ms: int = 0, wrong_secret: bool = False, ws_url: str = "") -> Venue:
    api_key, secret = os.urandom(32).hex(), os.urandom(32).hex()
    clock = Clock(T0_MS)
    sim = AsterSpotSimulator(api_key=api_key, secret=secret, instruments=[BNB],
                             clock_ms=lambda: clock() + skew_ms,
                             balances={"USDT": Decimal(1000), "BNB": Decimal(2)},
                             taker_fee_rate=TAKER, maker_fee_rate=MAKER)
    sim.set_book("BNBUSDT", Decimal("600.00"), Decimal("600.10"))
    auth = AsterHmacAuth(api_key, os.urandom(32).hex() if wrong_secret else secret, clock=clock)
    rest = AsterRest(auth, base_url="https://sapi.test",
                     transport=httpx.MockTransport(sim.handle), clock_ms=clock)
    account = AsterSpotAccount(rest, account="spot", symbols=["BNBUSDT"],
                               ws_url=ws_url or SPOT_WS_URL)
    return Venue(sim, rest, account, clock)


@pytest.fixture
async def venue() -> AsyncIterator[Venue]:
    v = make_venue()
    async with v.rest:
        yield v


def limit(client_id: str, side: Side, qty: str, price: str, *,
          tif: TimeInForce = TimeInForce.GTC, reduce_only: bool = False) -> OrderRequest:
    return OrderRequest(client_id=client_id, symbol="BNBUSDT", side=side,
                        order_type=OrderType.LIMIT, qty=Decimal(qty), price=Decimal(price),
                        tif=tif, reduce_only=reduce_only)


def market(client_id: str, side: Side, qty: str) -> OrderRequest:
    return OrderRequest(client_id=client_id, symbol="BNBUSDT", side=side,
                        order_type=OrderType.MARKET, qty=Decimal(qty))


def by_asset(balances: list[Balance]) -> dict[str, tuple[Decimal, Decimal]]:
    return {b.asset: (b.total, b.available) for b in balances}


# ---------------------------------------------------------------------------------------------
# Orders


async def test_place_order_when_limit_rests_then_open_and_quote_locked(venue: Venue):
    with trio.fail_after(BOUND_S):
        order = await venue.account.place_order(limit("s-1", Side.BUY, "0.100", "590.00"))
        balances = by_asset(await venue.account.balances())

    assert (order.status, order.client_id, order.side) == (OrderStatus.OPEN, "s-1", Side.BUY)
    assert (order.qty, order.price, order.reduce_only) == (
        Decimal("0.100"), Decimal("590.00"), False)
    assert order.ts_venue_ns == T0_MS * 1_000_000
    sent = venue.sim.received[-2]
    assert (sent.method, sent.path, sent.query) == ("POST", "/api/v1/order", "")
    assert sent.body.startswith("symbol=BNBUSDT&side=BUY&type=LIMIT&timeInForce=GTC"
                                "&quantity=0.100&price=590.00&newClientOrderId=s-1"
                                "&newOrderRespType=RESULT&recvWindow=5000&timestamp=")
    assert balances["USDT"] == (Decimal(1000), Decimal(1000) - Decimal("59.00"))
    assert balances["BNB"] == (Decimal(2), Decimal(2))


async def test_place_order_when_sell_rests_then_base_locked(venue: Venue):
    with trio.fail_after(BOUND_S):
        await venue.account.place_order(limit("s-2", Side.SELL, "0.500", "610.00"))
        balances = by_asset(await venue.account.balances())

    assert balances["BNB"] == (Decimal(2), Decimal("1.5"))
    assert balances["USDT"] == (Decimal(1000), Decimal(1000))


async def test_place_order_when_limit_crosses_then_filled_at_touch_and_balances_move(
        venue: Venue):
    with trio.fail_after(BOUND_S):
        order = await venue.account.place_order(limit("t-1", Side.BUY, "0.100", "601.00"))
        fills = await venue.account.fills(since_ns=0)
        balances = by_asset(await venue.account.balances())
        positions = await venue.account.positions()

    assert (order.status, order.filled_qty) == (OrderStatus.FILLED, Decimal("0.100"))
    [fill] = fills
    assert (fill.fill_id, fill.client_id, fill.venue_order_id) == (
        f"BNBUSDT:1:{order.venue_order_id}", "t-1", order.venue_order_id)
    assert (fill.price, fill.qty, fill.liquidity) == (
        Decimal("600.10"), Decimal("0.100"), Liquidity.TAKER)
    assert (fill.fee, fill.fee_asset) == (Decimal("0.100") * TAKER, "BNB")  # in what it received
    assert balances["USDT"][0] == Decimal(1000) - Decimal("60.010")
    assert balances["BNB"][0] == Decimal(2) + Decimal("0.100") - Decimal("0.100") * TAKER
    assert positions == []  # spot holds balances


async def test_place_order_when_market_sell_then_filled_at_bid_quote_fee_paid(venue: Venue):
    with trio.fail_after(BOUND_S):
        order = await venue.account.place_order(market("m-1", Side.SELL, "1.000"))
        [fill] = await venue.account.fills(since_ns=0)
        balances = by_asset(await venue.account.balances())

    assert (order.status, order.order_type, order.price) == (
        OrderStatus.FILLED, OrderType.MARKET, None)
    params = venue.sim.received[-3].params
    assert (params["type"], params["quantity"]) == ("MARKET", "1.000")
    assert "price" not in params and "timeInForce" not in params
    assert (fill.price, fill.fee_asset) == (Decimal("600.00"), "USDT")
    assert balances["BNB"][0] == Decimal(1)
    assert balances["USDT"][0] == Decimal(1000) + Decimal("600.00") * (1 - TAKER)


async def test_set_book_when_resting_order_crossed_then_filled_as_maker_and_unlocked(
        venue: Venue):
    with trio.fail_after(BOUND_S):
        await venue.account.place_order(limit("mk-1", Side.BUY, "0.100", "595.00"))
        venue.sim.set_book("BNBUSDT", Decimal("594.00"), Decimal("594.50"))
        order = await venue.account.get_order("BNBUSDT", "mk-1")
        [fill] = await venue.account.fills(since_ns=0)
        balances = by_asset(await venue.account.balances())

    assert (order.status, order.filled_qty) == (OrderStatus.FILLED, Decimal("0.100"))
    assert (fill.price, fill.liquidity, fill.fee) == (
        Decimal("595.00"), Liquidity.MAKER, Decimal("0.100") * MAKER)
    assert balances["USDT"] == (Decimal(1000) - Decimal("59.5"),) * 2  # nothing left locked


async def test_place_order_when_post_only_rests_then_sent_as_gtx(venue: Venue):
    with trio.fail_after(BOUND_S):
        order = await venue.account.place_order(
            limit("po-1", Side.SELL, "0.100", "600.50", tif=TimeInForce.POST_ONLY))

    assert (order.status, order.tif) == (OrderStatus.OPEN, TimeInForce.POST_ONLY)
    params = venue.sim.received[-1].params
    assert (params["type"], params["timeInForce"]) == ("LIMIT", "GTX")


async def test_place_order_when_ioc_not_marketable_then_expired_and_nothing_locked(
        venue: Venue):
    with trio.fail_after(BOUND_S):
        order = await venue.account.place_order(
            limit("ioc-1", Side.BUY, "0.100", "590.00", tif=TimeInForce.IOC))
        balances = by_asset(await venue.account.balances())

    assert (order.status, order.tif) == (OrderStatus.EXPIRED, TimeInForce.IOC)
    assert balances["USDT"] == (Decimal(1000), Decimal(1000))


async def test_cancel_order_when_open_then_cancelled_and_unlocked(venue: Venue):
    with trio.fail_after(BOUND_S):
        await venue.account.place_order(limit("c-1", Side.BUY, "0.100", "590.00"))
        cancelled = await venue.account.cancel_order("BNBUSDT", "c-1")
        still_open = await venue.account.open_orders()
        balances = by_asset(await venue.account.balances())

    assert cancelled.status is OrderStatus.CANCELLED
    sent = venue.sim.received[-3]
    assert (sent.method, sent.path) == ("DELETE", "/api/v1/order")
    assert sent.body.startswith("symbol=BNBUSDT&origClientOrderId=c-1&")
    assert still_open == []
    assert balances["USDT"] == (Decimal(1000), Decimal(1000))


async def test_cancel_all_when_orders_open_then_each_cancelled_by_order_id(venue: Venue):
    with trio.fail_after(BOUND_S):
        a = await venue.account.place_order(limit("a-1", Side.BUY, "0.100", "590.00"))
        b = await venue.account.place_order(limit("a-2", Side.SELL, "0.100", "610.00"))
        cancelled = await venue.account.cancel_all()
        still_open = await venue.account.open_orders("BNBUSDT")

    assert sorted((o.client_id, o.status) for o in cancelled) == [
        ("a-1", OrderStatus.CANCELLED), ("a-2", OrderStatus.CANCELLED)]
    deletes = [r.params["orderId"] for r in venue.sim.received if r.method == "DELETE"]
    assert deletes == [a.venue_order_id, b.venue_order_id]
    assert still_open == []


async def test_get_order_and_open_orders_when_resting_then_reported(venue: Venue):
    with trio.fail_after(BOUND_S):
        placed = await venue.account.place_order(limit("g-1", Side.BUY, "0.100", "590.00"))
        found = await venue.account.get_order("BNBUSDT", "g-1")
        listed = await venue.account.open_orders()

    assert found == placed
    assert [o.client_id for o in listed] == ["g-1"]
    assert venue.sim.received[-1].query.startswith("recvWindow=")  # no symbol: all symbols


async def test_place_order_when_client_id_invalid_for_aster_then_hashed_and_ours_returned(
        venue: Venue):
    ours = "strategy one/order #1"
    with trio.fail_after(BOUND_S):
        placed = await venue.account.place_order(limit(ours, Side.BUY, "0.100", "590.00"))
        listed = await venue.account.open_orders()

    assert venue.sim.received[-2].params["newClientOrderId"].startswith("h-")
    assert placed.client_id == listed[0].client_id == ours


# ---------------------------------------------------------------------------------------------
# Refusals


@pytest.mark.parametrize(("request_", "reason", "code"), [
    (limit("x", Side.BUY, "0.100", "590.005"), RejectReason.PRICE_TICK, "-4014"),
    (limit("x", Side.BUY, "0.1005", "590.00"), RejectReason.QTY_STEP, "-1111"),
    (limit("x", Side.BUY, "0.001", "590.00"), RejectReason.MIN_NOTIONAL, "-4164"),
    (limit("x", Side.BUY, "2.000", "590.00"), RejectReason.INSUFFICIENT_MARGIN, "-2010"),
    (limit("x", Side.SELL, "3.000", "610.00"), RejectReason.INSUFFICIENT_MARGIN, "-2010"),
    (market("x", Side.SELL, "2.500"), RejectReason.INSUFFICIENT_MARGIN, "-2010"),
    (limit("x", Side.BUY, "0.100", "600.10", tif=TimeInForce.POST_ONLY),
     RejectReason.POST_ONLY_WOULD_TAKE, "-2010"),
])
async def test_place_order_when_venue_refuses_then_typed_rejection(
        venue: Venue, request_: OrderRequest, reason: RejectReason, code: str):
    with trio.fail_after(BOUND_S), pytest.raises(VenueRejectedError) as caught:
        await venue.account.place_order(request_)

    assert (caught.value.reason, caught.value.code) == (reason, code)
    assert venue.sim.open_orders_of() == []


async def test_place_order_when_reduce_only_then_value_error_and_nothing_sent(venue: Venue):
    with trio.fail_after(BOUND_S), pytest.raises(ValueError, match="reduce-only"):
        await venue.account.place_order(
            limit("r-1", Side.SELL, "0.100", "610.00", reduce_only=True))

    assert venue.sim.received == []


async def test_cancel_and_get_when_order_unknown_then_unknown_order(venue: Venue):
    with trio.fail_after(BOUND_S):
        with pytest.raises(VenueRejectedError) as on_cancel:
            await venue.account.cancel_order("BNBUSDT", "nope")
        with pytest.raises(VenueRejectedError) as on_get:
            await venue.account.get_order("BNBUSDT", "nope")

    assert on_cancel.value.reason is on_get.value.reason is RejectReason.UNKNOWN_ORDER


async def test_place_order_when_503_after_processing_then_outcome_unknown_and_order_exists(
        venue: Venue):
    venue.sim.fail_next("/api/v1/order", 503, then_process=True)
    with trio.fail_after(BOUND_S):
        with pytest.raises(OrderOutcomeUnknownError) as caught:
            await venue.account.place_order(limit("u-1", Side.BUY, "0.100", "590.00"))
        found = await venue.account.get_order("BNBUSDT", "u-1")

    assert caught.value.client_id == "u-1"
    assert found.status is OrderStatus.OPEN


async def test_signed_call_when_secret_wrong_then_auth_error():
    v = make_venue(wrong_secret=True)
    async with v.rest:
        with trio.fail_after(BOUND_S), pytest.raises(VenueAuthError):
            await v.account.balances()


async def test_sync_clock_when_venue_clock_ahead_then_signed_calls_accepted():
    v = make_venue(skew_ms=30_000)
    async with v.rest:
        with trio.fail_after(BOUND_S):
            with pytest.raises(VenueRejectedError) as before:
                await v.account.balances()
            offset = await v.account.sync_clock()
            balances = await v.account.balances()

    assert before.value.reason is RejectReason.TIMESTAMP
    assert offset == 30_000
    assert v.sim.received[-2].path == "/api/v1/time"
    assert by_asset(balances)["BNB"] == (Decimal(2), Decimal(2))


async def test_spot_only_operations_when_called_then_nothing_sent(venue: Venue):
    with trio.fail_after(BOUND_S):
        armed = await venue.account.arm_cancel_all_after("BNBUSDT", 60_000)
        funding = await venue.account.funding(since_ns=0)
        positions = await venue.account.positions()

    assert (armed, funding, positions) == (False, [], [])
    assert venue.sim.received == []


async def test_fills_when_since_after_trade_then_excluded(venue: Venue):
    with trio.fail_after(BOUND_S):
        await venue.account.place_order(market("f-1", Side.BUY, "0.100"))
        venue.clock.now_ms += 1000
        second = await venue.account.place_order(market("f-2", Side.BUY, "0.100"))
        fills = await venue.account.fills(since_ns=(T0_MS + 500) * 1_000_000)

    assert [(f.fill_id, f.client_id) for f in fills] == [
        (f"BNBUSDT:2:{second.venue_order_id}", "f-2")]
    assert venue.sim.received[-1].params["startTime"] == str(T0_MS + 500)


async def test_fills_when_order_placed_elsewhere_then_client_id_looked_up(venue: Venue):
    with trio.fail_after(BOUND_S):
        await venue.account.place_order(market("other-1", Side.BUY, "0.100"))
        fresh = AsterSpotAccount(venue.rest, account="spot", symbols=["BNBUSDT"])
        [fill] = await fresh.fills(since_ns=0)

    assert fill.client_id == "other-1"
    assert venue.sim.received[-1].params["orderId"] == fill.venue_order_id


# ---------------------------------------------------------------------------------------------
# Market data


async def test_instruments_when_read_then_spot_kind_from_filters(venue: Venue):
    market_data = AsterSpotMarketData(venue.rest)
    with trio.fail_after(BOUND_S):
        instruments = await market_data.instruments()
        now_ns = await market_data.server_time_ns()

    assert instruments == [BNB]
    assert instruments[0].is_spot
    assert [r.path for r in venue.sim.received] == ["/api/v1/exchangeInfo", "/api/v1/time"]
    assert now_ns == T0_MS * 1_000_000
    assert SPOT_BASE_URL == "https://sapi.asterdex.com"


async def test_stream_market_when_spot_book_ticker_then_book_top():
    frame = json.dumps({"stream": "bnbusdt@bookTicker", "data": {
        "u": 400900217, "s": "BNBUSDT", "b": "25.35190000", "B": "31.21000000",
        "a": "25.36520000", "A": "40.66000000"}})  # the spot doc's sample: no `e`, no `T`
    with trio.fail_after(BOUND_S):
        async with open_ws_sim() as ws:
            market_data = AsterSpotMarketData(AsterRest(), ws_url=ws.url)
            async with market_data.stream_market(["BNBUSDT", "ETHUSDT"]) as events:
                connection = await ws.next_connection()
                await connection.send("not json")
                await connection.send(frame)
                event = await events.__anext__()
                await connection.close()
                with pytest.raises(StopAsyncIteration):
                    await events.__anext__()

    assert connection.path == "/stream?streams=bnbusdt@bookTicker/ethusdt@bookTicker"
    assert isinstance(event, BookTop)
    assert (event.venue, event.symbol, event.bid, event.ask_qty) == (
        "aster", "BNBUSDT", Decimal("25.35190000"), Decimal("40.66000000"))
    assert event.ts_venue_ns > 0 and event.ts_local_ns > 0


async def test_stream_market_when_dropped_then_transport_error():
    with trio.fail_after(BOUND_S):
        async with open_ws_sim() as ws:
            market_data = AsterSpotMarketData(AsterRest(), ws_url=ws.url)
            async with market_data.stream_market(["BNBUSDT"]) as events:
                connection = await ws.next_connection()
                await connection.drop()
                with pytest.raises(VenueTransportError):
                    await events.__anext__()


# ---------------------------------------------------------------------------------------------
# User stream


async def test_stream_user_when_order_fills_then_fill_before_order_update():
    with trio.fail_after(BOUND_S):
        async with open_ws_sim() as ws:
            v = make_venue(ws_url=ws.url)
            async with v.rest, v.account.stream_user() as events:
                connection = await ws.next_connection()
                await v.account.place_order(limit("u-1", Side.BUY, "0.100", "595.00"))
                v.sim.set_book("BNBUSDT", Decimal("594.00"), Decimal("594.50"))
                for report in v.sim.execution_reports:
                    await connection.send(json.dumps(report))
                await connection.send(json.dumps({"e": "outboundAccountPosition", "E": 1,
                                                  "B": []}))
                opened, fill, filled = [await events.__anext__() for _ in range(3)]
                rest_fills = await v.account.fills(since_ns=0)

    assert connection.path == f"/ws/{LISTEN_KEY}"
    assert isinstance(opened, VenueOrder) and opened.status is OrderStatus.OPEN
    assert isinstance(fill, Fill) and isinstance(filled, VenueOrder)
    assert fill == rest_fills[0]  # same id, so the journal dedupes stream and REST
    assert (filled.client_id, filled.status, filled.filled_qty) == (
        "u-1", OrderStatus.FILLED, Decimal("0.100"))


async def test_stream_user_when_listen_key_expired_then_transport_error():
    with trio.fail_after(BOUND_S):
        async with open_ws_sim() as ws:
            v = make_venue(ws_url=ws.url)
            async with v.rest, v.account.stream_user() as events:
                connection = await ws.next_connection()
                await connection.send(json.dumps({"e": "listenKeyExpired", "E": 1}))
                with pytest.raises(VenueTransportError, match="expired"):
                    await events.__anext__()


async def test_stream_user_when_running_then_key_kept_alive():
    with trio.fail_after(BOUND_S):
        async with open_ws_sim() as ws:
            v = make_venue(ws_url=ws.url)
            v.account.keepalive_interval_s = 0.01
            async with v.rest, v.account.stream_user():
                await ws.next_connection()
                await v.sim.wait_keepalives(2)

    puts = [r for r in v.sim.received if r.method == "PUT"]
    assert puts[0].path == "/api/v1/listenKey"
    assert puts[0].params["listenKey"] == LISTEN_KEY


def execution_report(*, X: str, x: str = "TRADE", t: int = 4, i: int = 7, **extra: object) -> str:
    """A spot `executionReport` (Binance shape) for order `i` of `s-1`: a 1 BNB fill at 600."""
    return json.dumps({"e": "executionReport", "E": 9, "s": "BNBUSDT", "c": "s-1", "S": "BUY",
                       "o": "LIMIT", "f": "GTC", "q": "1", "p": "600", "x": x, "X": X, "i": i,
                       "l": "1", "z": "1", "L": "600", "n": "0", "N": "BNB", "T": 9, "t": t,
                       "m": False, **extra})


async def test_stream_user_when_trade_has_unknown_order_status_then_fill_kept_then_stream_ends():
    with trio.fail_after(BOUND_S):
        async with open_ws_sim() as ws:
            v = make_venue(ws_url=ws.url)
            async with v.rest, v.account.stream_user() as events:
                connection = await ws.next_connection()
                await connection.send(execution_report(X="EXPIRED_IN_MATCH"))
                fill = await events.__anext__()
                with pytest.raises(VenueTransportError, match="unreadable order update"):
                    await events.__anext__()
    assert isinstance(fill, Fill) and fill.fill_id == "BNBUSDT:4:7"  # <symbol>:<t>:<i>


@pytest.mark.parametrize("frame", [
    "not json {",
    execution_report(X="FILLED", z="abc"),
    execution_report(X="FILLED", S="SIDEWAYS"),
], ids=["not-json", "bad-field", "unknown-side"])
async def test_stream_user_when_fill_frame_unreadable_then_stream_ends(frame: str):
    with trio.fail_after(BOUND_S):
        async with open_ws_sim() as ws:
            v = make_venue(ws_url=ws.url)
            async with v.rest:
                with pytest.raises(VenueTransportError, match="spot user stream: unreadable"):
                    async with v.account.stream_user() as events:
                        connection = await ws.next_connection()
                        await connection.send(frame)
                        await connection.send(execution_report(X="NEW", x="NEW", i=8))
                        await events.__anext__()


def test_spot_client_id_maps_when_created_then_bounded():
    v = make_venue()
    assert v.account._client_ids.capacity == v.account._ours.capacity == 65536
