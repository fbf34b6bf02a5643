"""`BackpackAccount.place_orders` (POST /api/v1/orders, venues.md §2.2 batch rule, §2.4,
§4 pitfall 8) against the in-memory `BackpackSimulator`, which verifies the batch signature
its own way."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal

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
)
from exchanges.backpack import BackpackAccount, BackpackAuth, BackpackRest

from .test_backpack_account import BOUND_S, SYMBOL, Venue, _keys, limit

BATCH_PATH = "/api/v1/orders"


@pytest.fixture
async def venue() -> AsyncIterator[Venue]:
    v = Venue()
    async with v.rest:
        yield v


def resting(n: int, prefix: str = "b") -> list[OrderRequest]:
    """`n` non-crossing Bids, one tick apart, ids `<prefix>-0`..."""
    return [limit(f"{prefix}-{i}", price=f"{Decimal('139.50') - Decimal('0.01') * i}")
            for i in range(n)]


def batch_bodies(venue: Venue) -> list[list[dict[str, object]]]:
    decoded = [json.loads(body) for body in venue.sim.bodies]
    return [body for body in decoded if isinstance(body, list)]


async def test_place_orders_when_three_valid_then_all_placed_in_one_signed_call(
        venue: Venue) -> None:
    with trio.fail_after(BOUND_S):
        results = await venue.account.place_orders(resting(3))

    assert all(isinstance(r, VenueOrder) for r in results)
    orders = [r for r in results if isinstance(r, VenueOrder)]
    assert [o.client_id for o in orders] == ["b-0", "b-1", "b-2"]
    assert [o.price for o in orders] == [Decimal("139.50"), Decimal("139.49"),
                                        Decimal("139.48")]
    assert all(o.status is OrderStatus.OPEN for o in orders)
    assert len(batch_bodies(venue)) == 1
    assert venue.sim.signing_strings[-1].count("instruction=orderExecute&") == 3


async def test_place_orders_when_seven_then_one_call_results_in_order(venue: Venue) -> None:
    with trio.fail_after(BOUND_S):
        results = await venue.account.place_orders(resting(7))

    (body,) = batch_bodies(venue)
    assert [o["clientId"] for o in body] == [
        venue.account.client_ids.to_uint32(f"b-{i}") for i in range(7)]
    assert [r.client_id for r in results if isinstance(r, VenueOrder)] == [
        f"b-{i}" for i in range(7)]


async def test_place_orders_when_some_orders_bad_then_typed_errors_and_others_placed(
        venue: Venue) -> None:
    with trio.fail_after(BOUND_S):
        await venue.account.place_order(limit("dup", price="139.00"))
        results = await venue.account.place_orders([
            limit("ok-1"),
            limit("tick", price="139.505"),
            limit("cross", price="140.10", tif=TimeInForce.POST_ONLY),
            limit("ok-2", side=Side.SELL, price="141.00"),
            limit("dup", price="139.00"),
            limit("big", qty="100.00"),  # 13 950 USDC > 10 000 available
            limit("ok-3", price="138.00"),
        ])

    assert len(results) == 7
    placed = [(i, r.client_id) for i, r in enumerate(results) if isinstance(r, VenueOrder)]
    assert placed == [(0, "ok-1"), (3, "ok-2"), (6, "ok-3")]
    errors = [results[i] for i in (1, 2, 4, 5)]
    assert all(isinstance(e, VenueRejectedError) for e in errors)
    assert [(e.reason, e.code) for e in errors if isinstance(e, VenueRejectedError)] == [
        (RejectReason.INVALID, "INVALID_PRICE"), (RejectReason.INVALID, "INVALID_ORDER"),
        (RejectReason.DUPLICATE_CLIENT_ID, "INVALID_ORDER"),
        (RejectReason.INSUFFICIENT_MARGIN, "INSUFFICIENT_FUNDS")]
    assert "would immediately match" in str(results[2])
    with trio.fail_after(BOUND_S):
        open_ids = {o.client_id for o in await venue.account.open_orders()}
    assert open_ids == {"dup", "ok-1", "ok-2", "ok-3"}


@pytest.mark.parametrize("executed", [False, True])
async def test_place_orders_when_503_then_each_order_unknown(venue: Venue,
                                                            executed: bool) -> None:
    venue.sim.fail_next(BATCH_PATH, 503, executed=executed)
    with trio.fail_after(BOUND_S):
        results = await venue.account.place_orders(resting(3, "u"))
        open_ids = [o.client_id for o in await venue.account.open_orders()]

    assert all(isinstance(r, OrderOutcomeUnknownError) for r in results)
    assert [r.client_id for r in results if isinstance(r, OrderOutcomeUnknownError)] == [
        "u-0", "u-1", "u-2"]
    assert open_ids == (["u-0", "u-1", "u-2"] if executed else [])


async def test_place_orders_when_rate_limited_then_each_order_rate_limited(
        venue: Venue) -> None:
    venue.sim.fail_next(BATCH_PATH, 429)
    with trio.fail_after(BOUND_S):
        results = await venue.account.place_orders(resting(2))

    assert all(isinstance(r, RateLimitedError) for r in results) and len(results) == 2
    assert venue.sim.orders == {}


async def test_place_orders_when_sent_then_compact_body_and_same_decimals_signed(
        venue: Venue) -> None:
    requests = [limit("x-1", price="139.50", qty="1.50"),
                limit("x-2", side=Side.SELL, price="141.10", qty="2.00",
                      tif=TimeInForce.POST_ONLY)]
    with trio.fail_after(BOUND_S):
        results = await venue.account.place_orders(requests)

    assert all(isinstance(r, VenueOrder) for r in results)
    id1, id2 = (venue.account.client_ids.to_uint32(c) for c in ("x-1", "x-2"))
    assert venue.sim.bodies[-1] == (
        f'[{{"symbol":"SOL_USDC_PERP","side":"Bid","quantity":"1.50","clientId":{id1},'
        f'"orderType":"Limit","price":"139.50","timeInForce":"GTC"}},'
        f'{{"symbol":"SOL_USDC_PERP","side":"Ask","quantity":"2.00","clientId":{id2},'
        f'"orderType":"Limit","price":"141.10","postOnly":true}}]').encode()
    assert venue.sim.signing_strings[-1] == (
        f"instruction=orderExecute&clientId={id1}&orderType=Limit&price=139.50&quantity=1.50"
        f"&side=Bid&symbol=SOL_USDC_PERP&timeInForce=GTC"
        f"&instruction=orderExecute&clientId={id2}&orderType=Limit&postOnly=true&price=141.10"
        f"&quantity=2.00&side=Ask&symbol=SOL_USDC_PERP"
        f"&timestamp={venue.sim.now_ms}&window=5000")


async def test_place_orders_when_client_ids_then_uint32_sent_and_ours_mapped_back(
        venue: Venue) -> None:
    ours = ["strategy-a/leg 1", "strategy-a/leg 2"]
    with trio.fail_after(BOUND_S):
        results = await venue.account.place_orders([limit(c) for c in ours])
        listed = await venue.account.open_orders()

    numbers = [venue.account.client_ids.to_uint32(c) for c in ours]
    assert [venue.sim.open_order_by_client_id(n) is not None for n in numbers] == [True, True]
    assert [r.client_id for r in results if isinstance(r, VenueOrder)] == ours
    assert sorted(o.client_id for o in listed) == ours


async def test_place_orders_when_signature_wrong_then_every_order_auth_error(
        venue: Venue) -> None:
    other_key, other_seed = _keys()
    auth = BackpackAuth(other_key, other_seed, clock=lambda: venue.sim.now_ms)
    async with BackpackRest(auth, transport=httpx.MockTransport(venue.sim.handle)) as rest:
        with trio.fail_after(BOUND_S):
            results = await BackpackAccount(rest, "x").place_orders(resting(2))

    assert [type(r).__name__ for r in results] == ["VenueAuthError", "VenueAuthError"]
    assert venue.sim.orders == {}


async def test_place_orders_when_items_untagged_or_unreadable_then_errors_orders_unknown(
        ) -> None:
    """Items without the `operation` tag: a bare `{code, message}` is still an error, an
    order is an order, anything else leaves that order's outcome unknown."""
    order = {"id": "1", "clientId": 0, "symbol": SYMBOL, "side": "Bid", "orderType": "Limit",
             "quantity": "1.50", "price": "139.50", "executedQuantity": "0", "status": "New",
             "timeInForce": "GTC", "createdAt": 1}

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[
            {"code": "INVALID_ORDER", "message": "Order with client ID already exists: 7"},
            order, {"status": "Weird"}])

    key, seed = _keys()
    async with BackpackRest(BackpackAuth(key, seed),
                            transport=httpx.MockTransport(answer)) as rest:
        with trio.fail_after(BOUND_S):
            results = await BackpackAccount(rest, "x").place_orders(resting(3))

    first, second, third = results
    assert isinstance(first, VenueRejectedError)
    assert first.reason is RejectReason.DUPLICATE_CLIENT_ID
    assert isinstance(second, VenueOrder) and second.client_id == "b-1"
    assert isinstance(third, OrderOutcomeUnknownError) and third.client_id == "b-2"


async def test_place_orders_when_answer_count_wrong_then_all_unknown() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[])

    key, seed = _keys()
    async with BackpackRest(BackpackAuth(key, seed),
                            transport=httpx.MockTransport(answer)) as rest:
        with trio.fail_after(BOUND_S):
            results = await BackpackAccount(rest, "x").place_orders(resting(2))

    assert all(isinstance(r, OrderOutcomeUnknownError) for r in results)


async def test_place_orders_when_limit_without_price_then_value_error_before_sending(
        venue: Venue) -> None:
    bad = OrderRequest(client_id="np", symbol=SYMBOL, side=Side.BUY, order_type=OrderType.LIMIT,
                       qty=Decimal("1"))
    with trio.fail_after(BOUND_S), pytest.raises(ValueError, match="no price"):
        await venue.account.place_orders([*resting(2), bad])

    assert venue.sim.bodies == []


async def test_place_orders_when_empty_then_nothing_sent(venue: Venue) -> None:
    with trio.fail_after(BOUND_S):
        assert await venue.account.place_orders([]) == []

    assert venue.sim.bodies == []
