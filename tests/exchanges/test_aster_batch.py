"""`AsterAccount.place_orders` (POST /fapi/v1/batchOrders, venues.md §1.6, §4.13) against the
in-memory venue (`aster_sim.py`) via MockTransport."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from urllib.parse import quote, unquote

import httpx
import pytest
import trio

from exchanges import (
    OrderOutcomeUnknownError,
    OrderRequest,
    OrderStatus,
    OrderType,
    RateLimitedError,
    RejectReason,
    Side,
    TimeInForce,
    VenueOrder,
    VenueRejectedError,
    VenueTransportError,
)
from exchanges.aster import AsterAccount, AsterHmacAuth, AsterRest, venue_client_id

from .aster_sim import Received
from .test_aster_account import Venue, limit, make_venue, market

BATCH_PATH = "/fapi/v1/batchOrders"


Hook = Callable[[httpx.Request], None]


def make_hooked_venue(hook: Hook) -> Venue:
    """`make_venue`'s venue, with `hook` called on every request before the sim sees it."""
    v = make_venue()

    def handle(request: httpx.Request) -> httpx.Response:
        hook(request)
        return v.sim.handle(request)

    auth = v.rest.auth
    assert isinstance(auth, AsterHmacAuth)
    rest = AsterRest(auth, base_url="https://fapi.test", transport=httpx.MockTransport(handle),
                     clock_ms=v.sim.clock_ms)
    return Venue(v.sim, rest, AsterAccount(rest, account="main", symbols=["BTCUSDT"]), v.secret)


@pytest.fixture
async def venue() -> AsyncIterator[Venue]:
    v = make_venue()
    async with v.rest:
        yield v


def batches(venue: Venue) -> list[Received]:
    return [r for r in venue.sim.received if r.path == BATCH_PATH]


def sent_orders(received: Received) -> list[dict[str, str]]:
    orders = json.loads(received.params["batchOrders"])
    assert isinstance(orders, list)
    return orders


def resting(n: int, prefix: str = "b") -> list[OrderRequest]:
    """`n` non-marketable BUY limits, one tick apart, ids `<prefix>-0`..."""
    return [limit(f"{prefix}-{i}", Side.BUY, "0.001", f"{59000 - i}.0") for i in range(n)]


async def test_place_orders_when_three_valid_then_all_placed_in_one_call(venue: Venue):
    with trio.fail_after(5):
        results = await venue.account.place_orders(resting(3))

    assert all(isinstance(r, VenueOrder) for r in results)
    orders = [r for r in results if isinstance(r, VenueOrder)]
    assert [o.client_id for o in orders] == ["b-0", "b-1", "b-2"]
    assert [o.price for o in orders] == [Decimal("59000.0"), Decimal("58999.0"),
                                        Decimal("58998.0")]
    assert all(o.status is OrderStatus.OPEN for o in orders)
    assert len(batches(venue)) == 1 and len(venue.sim.open_orders_of("BTCUSDT")) == 3


async def test_place_orders_when_seven_then_sent_as_five_then_two_in_order(venue: Venue):
    with trio.fail_after(5):
        results = await venue.account.place_orders(resting(7))

    sent = batches(venue)
    assert [[o["newClientOrderId"] for o in sent_orders(r)] for r in sent] == [
        ["b-0", "b-1", "b-2", "b-3", "b-4"], ["b-5", "b-6"]]
    assert [r.client_id for r in results if isinstance(r, VenueOrder)] == [
        f"b-{i}" for i in range(7)]
    order_ids = [int(r.venue_order_id) for r in results if isinstance(r, VenueOrder)]
    assert order_ids == sorted(order_ids)


async def test_place_orders_when_some_orders_bad_then_typed_errors_and_others_placed(
        venue: Venue):
    requests = [
        limit("ok-1", Side.BUY, "0.001", "59000.0"),
        limit("tick", Side.BUY, "0.001", "59000.05"),  # tick is 0.1
        limit("ok-2", Side.SELL, "0.001", "61000.0"),
        limit("cross", Side.BUY, "0.001", "60000.1", tif=TimeInForce.POST_ONLY),
        market("ro", Side.BUY, "0.001", reduce_only=True),  # no position to reduce
        limit("ok-3", Side.BUY, "0.001", "58000.0"),
    ]
    with trio.fail_after(5):
        results = await venue.account.place_orders(requests)

    assert len(results) == 6
    placed = {r.client_id: r for r in results if isinstance(r, VenueOrder)}
    assert list(placed) == ["ok-1", "ok-2", "ok-3"]
    assert [results.index(placed[c]) for c in placed] == [0, 2, 5]
    errors = [results[i] for i in (1, 3, 4)]
    assert all(isinstance(e, VenueRejectedError) for e in errors)
    assert [(e.reason, e.code) for e in errors if isinstance(e, VenueRejectedError)] == [
        (RejectReason.PRICE_TICK, "-4014"), (RejectReason.POST_ONLY_WOULD_TAKE, "-5022"),
        (RejectReason.REDUCE_ONLY_WOULD_INCREASE, "-2022")]
    assert {o.client_id for o in venue.sim.open_orders_of()} == {"ok-1", "ok-2", "ok-3"}


async def test_place_orders_when_duplicate_of_open_order_then_duplicate_client_id(venue: Venue):
    with trio.fail_after(5):
        await venue.account.place_order(limit("dup", Side.BUY, "0.001", "59000.0"))
        results = await venue.account.place_orders(
            [limit("dup", Side.BUY, "0.001", "59000.0"), limit("new", Side.BUY, "0.001",
                                                               "59000.0")])

    first = results[0]
    assert isinstance(first, VenueRejectedError)
    assert first.reason is RejectReason.DUPLICATE_CLIENT_ID
    assert isinstance(results[1], VenueOrder)


@pytest.mark.parametrize("then_process", [False, True])
async def test_place_orders_when_503_then_each_order_of_that_call_unknown(
        venue: Venue, then_process: bool):
    venue.sim.fail_next(BATCH_PATH, 503, then_process=then_process)
    with trio.fail_after(5):
        results = await venue.account.place_orders(resting(3, "u"))
        found = [await venue.account.get_order("BTCUSDT", f"u-{i}") for i in range(3)] \
            if then_process else await venue.account.open_orders()

    assert all(isinstance(r, OrderOutcomeUnknownError) for r in results)
    assert [r.client_id for r in results if isinstance(r, OrderOutcomeUnknownError)] == [
        "u-0", "u-1", "u-2"]
    if then_process:  # the venue had placed them: reconciling finds each
        assert [o.client_id for o in found] == ["u-0", "u-1", "u-2"]
    else:
        assert found == []


async def test_place_orders_when_second_call_503_then_first_placed_second_unknown():
    def hook(request: httpx.Request) -> None:
        if request.url.path == BATCH_PATH and len(batches(venue)) == 1:
            venue.sim.fail_next(BATCH_PATH, 503)

    venue = make_hooked_venue(hook)
    async with venue.rest:
        with trio.fail_after(5):
            results = await venue.account.place_orders(resting(7))

    assert all(isinstance(r, VenueOrder) for r in results[:5])
    assert all(isinstance(r, OrderOutcomeUnknownError) for r in results[5:])
    assert [r.client_id for r in results[5:] if isinstance(r, OrderOutcomeUnknownError)] == [
        "b-5", "b-6"]


async def test_place_orders_when_first_call_rate_limited_then_later_calls_not_sent(
        venue: Venue):
    venue.sim.fail_next(BATCH_PATH, 429, retry_after_s=3)
    with trio.fail_after(5):
        results = await venue.account.place_orders(resting(7))

    assert len(batches(venue)) == 1
    assert all(isinstance(r, RateLimitedError) for r in results[:5])
    assert all(isinstance(r, VenueTransportError) and "not sent" in str(r) for r in results[5:])
    assert venue.sim.orders == {}


async def test_place_orders_when_sent_then_compact_json_exact_decimals_and_signed_bytes(
        venue: Venue):
    requests = [limit("x-1", Side.BUY, "0.010", "59000.0", tif=TimeInForce.POST_ONLY),
                market("x-2", Side.SELL, "1E-3", reduce_only=True)]
    with trio.fail_after(5):
        await venue.account.place_order(market("open", Side.BUY, "0.001"))  # something to reduce
        results = await venue.account.place_orders(requests)

    assert all(isinstance(r, VenueOrder) for r in results)
    expected = ('[{"symbol":"BTCUSDT","side":"BUY","type":"LIMIT","timeInForce":"GTX",'
                '"quantity":"0.010","price":"59000.0","newClientOrderId":"x-1",'
                '"newOrderRespType":"RESULT"},'
                '{"symbol":"BTCUSDT","side":"SELL","type":"MARKET","quantity":"0.001",'
                '"reduceOnly":"true","newClientOrderId":"x-2","newOrderRespType":"RESULT"}]')
    (sent,) = batches(venue)
    assert sent.query == ""
    assert sent.body.startswith(f"batchOrders={quote(expected, safe='')}&recvWindow=5000"
                                f"&timestamp=")
    assert " " not in unquote(sent.body) and "+" not in sent.body
    assert sent.params["batchOrders"] == expected
    # The venue recomputed the HMAC over exactly these bytes and accepted them.


async def test_place_orders_when_client_id_hashed_then_mapped_back_and_recorded_before_send():
    ours = "strategy a/order #1"  # a space and '#': not a valid newClientOrderId
    hashed = venue_client_id(ours)
    seen_before_send: list[str] = []

    def hook(request: httpx.Request) -> None:
        if request.url.path == BATCH_PATH:
            # What a stream update naming the hashed id would map to at this moment.
            seen_before_send.append(venue.account._client_id(0, hashed))

    venue = make_hooked_venue(hook)
    async with venue.rest:
        with trio.fail_after(5):
            results = await venue.account.place_orders(
                [limit(ours, Side.BUY, "0.001", "59000.0"),
                 limit("plain-1", Side.BUY, "0.001", "58000.0")])
            listed = await venue.account.open_orders()

    assert seen_before_send == [ours]
    assert [r.client_id for r in results if isinstance(r, VenueOrder)] == [ours, "plain-1"]
    assert [o["newClientOrderId"] for o in sent_orders(batches(venue)[0])] == [hashed, "plain-1"]
    assert {o.client_id for o in listed} == {ours, "plain-1"}


async def test_place_orders_when_limit_without_price_then_value_error_before_sending(
        venue: Venue):
    bad = OrderRequest(client_id="np", symbol="BTCUSDT", side=Side.BUY,
                       order_type=OrderType.LIMIT, qty=Decimal("0.001"))
    with trio.fail_after(5), pytest.raises(ValueError, match="needs a price"):
        await venue.account.place_orders([*resting(6), bad])

    assert batches(venue) == []


async def test_place_orders_when_empty_then_nothing_sent(venue: Venue):
    with trio.fail_after(5):
        assert await venue.account.place_orders([]) == []

    assert batches(venue) == []


async def test_sim_when_more_than_five_then_rejected_as_invalid_parameter(venue: Venue):
    batch = json.dumps([{"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                         "timeInForce": "GTC", "quantity": "0.001", "price": "59000.0"}] * 6,
                       separators=(",", ":"))
    with trio.fail_after(5), pytest.raises(VenueRejectedError) as caught:
        await venue.rest.signed("POST", BATCH_PATH, [("batchOrders", batch)],
                                is_order_placement=True)

    assert caught.value.code == "-1130"
    assert venue.sim.orders == {}
