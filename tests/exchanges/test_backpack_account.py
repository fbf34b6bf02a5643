"""`BackpackAccount` and `BackpackRest` against the in-memory `BackpackSimulator`."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
import trio
from nacl.signing import SigningKey

from exchanges import (
    Liquidity,
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
from exchanges.backpack import BackpackAccount, BackpackAuth, BackpackRest

from .backpack_sim import BackpackSimulator

SYMBOL = "SOL_USDC_PERP"
BOUND_S = 5


def _keys() -> tuple[str, str]:
    """(api key, secret seed), both base64; generated per test and never printed."""
    key = SigningKey.generate()
    return (base64.b64encode(bytes(key.verify_key)).decode(),
            base64.b64encode(bytes(key)).decode())


class Venue:
    def __init__(self) -> None:
        api_key, seed = _keys()
        self.sim = BackpackSimulator(api_key_b64=api_key)
        self.sim.add_market(SYMBOL, tick="0.01", step="0.01", min_qty="0.01")
        self.sim.set_top(SYMBOL, bid="140.00", ask="140.10")
        self.sim.set_balance("USDC", "10000")
        self.clock_skew_ms = 0
        self.auth = BackpackAuth(api_key, seed, clock=lambda: self.sim.now_ms + self.clock_skew_ms)
        self.rest = BackpackRest(self.auth, transport=httpx.MockTransport(self.sim.handle))
        self.account = BackpackAccount(self.rest, "bp-main")


@pytest.fixture
async def venue() -> AsyncIterator[Venue]:
    v = Venue()
    async with v.rest:
        yield v


def limit(client_id: str, side: Side = Side.BUY, price: str = "139.50", qty: str = "1.50",
          tif: TimeInForce = TimeInForce.GTC, reduce_only: bool = False) -> OrderRequest:
    return OrderRequest(client_id=client_id, symbol=SYMBOL, side=side, order_type=OrderType.LIMIT,
                        qty=Decimal(qty), price=Decimal(price), tif=tif, reduce_only=reduce_only)


# ---------------------------------------------------------------------------------------------
# Public endpoints


async def test_server_time_when_asked_then_returns_venue_ms(venue: Venue) -> None:
    with trio.fail_after(BOUND_S):
        assert await venue.rest.server_time_ms() == venue.sim.now_ms


async def test_instruments_when_markets_listed_then_parsed(venue: Venue) -> None:
    with trio.fail_after(BOUND_S):
        (instrument,) = await venue.rest.instruments()
    assert instrument.symbol == SYMBOL
    assert instrument.tick_size == Decimal("0.01")
    assert instrument.kind == "perp"


# ---------------------------------------------------------------------------------------------
# Placing


async def test_place_order_when_resting_limit_then_open_with_our_client_id(venue: Venue) -> None:
    with trio.fail_after(BOUND_S):
        order = await venue.account.place_order(limit("c-1"))
    assert order.client_id == "c-1"
    assert order.status is OrderStatus.OPEN
    assert order.price == Decimal("139.50")
    assert order.qty == Decimal("1.50")
    assert order.tif is TimeInForce.GTC
    assert order.ts_venue_ns == venue.sim.now_ms * 1_000_000
    assert order.venue == "backpack"
    assert order.account == "bp-main"


async def test_place_order_when_decimals_have_trailing_zeros_then_body_equals_signed_text(
        venue: Venue) -> None:
    with trio.fail_after(BOUND_S):
        await venue.account.place_order(limit("c-1", price="139.50", qty="1.50"))
    body = json.loads(venue.sim.bodies[-1])
    assert body["price"] == "139.50"
    assert body["quantity"] == "1.50"
    assert isinstance(body["clientId"], int)
    signed = venue.sim.signing_strings[-1]
    assert signed.startswith(
        f"instruction=orderExecute&clientId={body['clientId']}&orderType=Limit&price=139.50"
        f"&quantity=1.50&side=Bid&symbol={SYMBOL}&timeInForce=GTC&timestamp=")


async def test_place_order_when_post_only_then_sends_post_only_flag(venue: Venue) -> None:
    with trio.fail_after(BOUND_S):
        order = await venue.account.place_order(limit("c-1", tif=TimeInForce.POST_ONLY))
    body = json.loads(venue.sim.bodies[-1])
    assert body["postOnly"] is True
    assert "timeInForce" not in body
    assert order.tif is TimeInForce.POST_ONLY
    assert "postOnly=true" in venue.sim.signing_strings[-1]


async def test_place_order_when_post_only_would_cross_then_rejected(venue: Venue) -> None:
    with trio.fail_after(BOUND_S), pytest.raises(VenueRejectedError) as caught:
        await venue.account.place_order(limit("c-1", price="140.10", tif=TimeInForce.POST_ONLY))
    assert caught.value.reason is RejectReason.INVALID
    assert caught.value.code == "INVALID_ORDER"


async def test_place_order_when_crossing_ioc_then_filled_at_touch(venue: Venue) -> None:
    with trio.fail_after(BOUND_S):
        order = await venue.account.place_order(
            limit("c-1", price="141.00", qty="2", tif=TimeInForce.IOC))
        fills = await venue.account.fills(0)
        (position,) = await venue.account.positions()
    assert order.status is OrderStatus.FILLED
    assert order.filled_qty == Decimal("2")
    assert order.tif is TimeInForce.IOC
    (fill,) = fills
    assert fill.client_id == "c-1"
    assert fill.price == Decimal("140.10")
    assert fill.liquidity is Liquidity.TAKER
    assert fill.ts_venue_ns == venue.sim.now_ms * 1_000_000
    assert position.qty == Decimal("2")
    assert position.entry_price == Decimal("140.10")


async def test_place_order_when_ioc_does_not_cross_then_expired(venue: Venue) -> None:
    with trio.fail_after(BOUND_S):
        order = await venue.account.place_order(limit("c-1", tif=TimeInForce.IOC))
    assert order.status is OrderStatus.EXPIRED
    assert order.reason == "ImmediateOrCancel"


async def test_place_order_when_market_sell_reduce_only_then_filled_at_bid(venue: Venue) -> None:
    request = OrderRequest(client_id="m-1", symbol=SYMBOL, side=Side.SELL,
                           order_type=OrderType.MARKET, qty=Decimal("1"), reduce_only=True)
    with trio.fail_after(BOUND_S):
        order = await venue.account.place_order(request)
    body = json.loads(venue.sim.bodies[-1])
    assert body["orderType"] == "Market"
    assert body["reduceOnly"] is True
    assert "price" not in body
    assert order.status is OrderStatus.FILLED
    assert order.order_type is OrderType.MARKET
    assert order.reduce_only is True


async def test_place_order_when_limit_has_no_price_then_value_error_before_sending(
        venue: Venue) -> None:
    request = OrderRequest(client_id="c-1", symbol=SYMBOL, side=Side.BUY,
                           order_type=OrderType.LIMIT, qty=Decimal("1"))
    with trio.fail_after(BOUND_S), pytest.raises(ValueError):
        await venue.account.place_order(request)
    assert venue.sim.bodies == []


@pytest.mark.parametrize(("price", "qty", "code"), [
    ("139.505", "1", "INVALID_PRICE"),
    ("139.50", "1.005", "INVALID_QUANTITY"),
    ("139.50", "0.001", "INVALID_QUANTITY"),
])
async def test_place_order_when_off_tick_or_step_then_rejected_invalid(
        venue: Venue, price: str, qty: str, code: str) -> None:
    with trio.fail_after(BOUND_S), pytest.raises(VenueRejectedError) as caught:
        await venue.account.place_order(limit("c-1", price=price, qty=qty))
    assert caught.value.reason is RejectReason.INVALID
    assert caught.value.code == code


async def test_place_order_when_funds_short_then_insufficient_margin(venue: Venue) -> None:
    with trio.fail_after(BOUND_S), pytest.raises(VenueRejectedError) as caught:
        await venue.account.place_order(limit("c-1", qty="1000"))
    assert caught.value.reason is RejectReason.INSUFFICIENT_MARGIN


async def test_place_order_when_client_id_open_then_duplicate_client_id(venue: Venue) -> None:
    with trio.fail_after(BOUND_S):
        await venue.account.place_order(limit("c-1"))
        with pytest.raises(VenueRejectedError) as caught:
            await venue.account.place_order(limit("c-1"))
    assert caught.value.reason is RejectReason.DUPLICATE_CLIENT_ID


async def test_place_order_when_503_but_placed_then_outcome_unknown_and_found(
        venue: Venue) -> None:
    venue.sim.fail_next("/api/v1/order", 503, executed=True)
    with trio.fail_after(BOUND_S):
        with pytest.raises(OrderOutcomeUnknownError) as caught:
            await venue.account.place_order(limit("c-1"))
        found = await venue.account.get_order(SYMBOL, "c-1")
    assert caught.value.client_id == "c-1"
    assert found.client_id == "c-1"
    assert found.status is OrderStatus.OPEN


async def test_place_order_when_transport_times_out_then_outcome_unknown(venue: Venue) -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    rest = BackpackRest(venue.auth, transport=httpx.MockTransport(timeout))
    account = BackpackAccount(rest, "bp-main")
    async with rest:
        with trio.fail_after(BOUND_S), pytest.raises(OrderOutcomeUnknownError) as caught:
            await account.place_order(limit("c-1"))
    assert "X-Signature" not in str(caught.value)


@pytest.mark.parametrize("status", [429, 418])
async def test_place_order_when_rate_limited_then_rate_limited_error(
        venue: Venue, status: int) -> None:
    venue.sim.fail_next("/api/v1/order", status)
    with trio.fail_after(BOUND_S), pytest.raises(RateLimitedError):
        await venue.account.place_order(limit("c-1"))
    assert venue.sim.orders == {}


# ---------------------------------------------------------------------------------------------
# Authentication


async def test_request_when_key_not_registered_then_auth_error(venue: Venue) -> None:
    other_key, other_seed = _keys()
    rest = BackpackRest(BackpackAuth(other_key, other_seed, clock=lambda: venue.sim.now_ms),
                        transport=httpx.MockTransport(venue.sim.handle))
    async with rest:
        with trio.fail_after(BOUND_S), pytest.raises(VenueAuthError) as caught:
            await BackpackAccount(rest, "bp-main").balances()
    assert "UNAUTHORIZED" in str(caught.value)


async def test_request_when_body_changed_after_signing_then_auth_error(venue: Venue) -> None:
    def tamper(request: httpx.Request) -> httpx.Response:
        content = request.content.replace(b'"139.50"', b'"139.5"')
        altered = httpx.Request(request.method, request.url, headers=request.headers,
                                content=content)
        return venue.sim.handle(altered)

    rest = BackpackRest(venue.auth, transport=httpx.MockTransport(tamper))
    async with rest:
        with trio.fail_after(BOUND_S), pytest.raises(VenueAuthError) as caught:
            await BackpackAccount(rest, "bp-main").place_order(limit("c-1"))
    assert "INVALID_SIGNATURE" in str(caught.value)
    assert venue.sim.orders == {}


async def test_request_when_timestamp_outside_window_then_timestamp_reject(
        venue: Venue) -> None:
    venue.clock_skew_ms = -(venue.auth.window_ms + 1)
    with trio.fail_after(BOUND_S), pytest.raises(VenueRejectedError) as caught:
        await venue.account.open_orders()
    assert caught.value.reason is RejectReason.TIMESTAMP
    assert "Request has expired" in str(caught.value)


# ---------------------------------------------------------------------------------------------
# Cancelling and querying


async def test_cancel_order_when_open_then_cancelled(venue: Venue) -> None:
    with trio.fail_after(BOUND_S):
        await venue.account.place_order(limit("c-1"))
        cancelled = await venue.account.cancel_order(SYMBOL, "c-1")
        still_open = await venue.account.open_orders(SYMBOL)
    assert cancelled.status is OrderStatus.CANCELLED
    assert cancelled.client_id == "c-1"
    assert still_open == []
    assert "clientId=" in venue.sim.signing_strings[-2]
    assert "orderId" not in venue.sim.signing_strings[-2]


async def test_cancel_order_when_unknown_then_unknown_order(venue: Venue) -> None:
    with trio.fail_after(BOUND_S), pytest.raises(VenueRejectedError) as caught:
        await venue.account.cancel_order(SYMBOL, "nope")
    assert caught.value.reason is RejectReason.UNKNOWN_ORDER


async def test_get_order_when_unknown_then_unknown_order(venue: Venue) -> None:
    with trio.fail_after(BOUND_S), pytest.raises(VenueRejectedError) as caught:
        await venue.account.get_order(SYMBOL, "nope")
    assert caught.value.reason is RejectReason.UNKNOWN_ORDER


async def test_open_orders_when_two_resting_then_both_with_our_ids(venue: Venue) -> None:
    with trio.fail_after(BOUND_S):
        await venue.account.place_order(limit("c-1"))
        await venue.account.place_order(limit("c-2", side=Side.SELL, price="141.00"))
        orders = await venue.account.open_orders()
    assert sorted(o.client_id for o in orders) == ["c-1", "c-2"]


async def test_open_orders_when_placed_by_another_client_map_then_ids_marked_foreign(
        venue: Venue) -> None:
    with trio.fail_after(BOUND_S):
        await venue.account.place_order(limit("c-1"))
        other = BackpackAccount(venue.rest, "bp-main")
        (order,) = await other.open_orders()
    assert order.client_id.startswith("backpack:")


async def test_cancel_all_when_200_then_returns_cancelled_orders(venue: Venue) -> None:
    with trio.fail_after(BOUND_S):
        await venue.account.place_order(limit("c-1"))
        await venue.account.place_order(limit("c-2"))
        cancelled = await venue.account.cancel_all(SYMBOL)
        left = await venue.account.open_orders()
    assert sorted(o.client_id for o in cancelled) == ["c-1", "c-2"]
    assert all(o.status is OrderStatus.CANCELLED for o in cancelled)
    assert left == []


async def test_cancel_all_when_202_then_confirmed_empty(venue: Venue) -> None:
    venue.sim.cancel_all_accepted = True
    with trio.fail_after(BOUND_S):
        await venue.account.place_order(limit("c-1"))
        cancelled = await venue.account.cancel_all()
        left = await venue.account.open_orders()
    assert cancelled == []
    assert left == []
    assert venue.sim.signing_strings[-2].startswith("instruction=orderQueryAll&symbol=")


# ---------------------------------------------------------------------------------------------
# Account state


async def test_balances_when_capital_listed_then_total_includes_locked(venue: Venue) -> None:
    venue.sim.set_balance("SOL", "1.5", locked="0.5")
    with trio.fail_after(BOUND_S):
        balances = {b.asset: b for b in await venue.account.balances()}
    assert balances["SOL"].total == Decimal("2.0")
    assert balances["SOL"].available == Decimal("1.5")
    assert balances["USDC"].total == Decimal("10000")


async def test_positions_when_none_then_empty(venue: Venue) -> None:
    with trio.fail_after(BOUND_S):
        assert await venue.account.positions() == []


async def test_fills_when_several_then_oldest_first_unique_ids_since_filtered(
        venue: Venue) -> None:
    with trio.fail_after(BOUND_S):
        await venue.account.place_order(limit("c-1", price="141.00", tif=TimeInForce.IOC))
        venue.sim.now_ms += 1000
        await venue.account.place_order(limit("c-2", price="141.00", tif=TimeInForce.IOC))
        venue.sim.now_ms += 1000
        await venue.account.place_order(limit("c-3", price="141.00", tif=TimeInForce.IOC))
        fills = await venue.account.fills((venue.sim.now_ms - 1000) * 1_000_000)
    assert [f.client_id for f in fills] == ["c-2", "c-3"]
    assert len({f.fill_id for f in fills}) == 2


async def test_funding_when_payments_listed_then_oldest_first_since_filtered(
        venue: Venue) -> None:
    t = venue.sim.now_ms
    venue.sim.add_funding(SYMBOL, "-0.12", "0.0001", t - 3_600_000)
    venue.sim.add_funding(SYMBOL, "0.05", "-0.00005", t)
    venue.sim.add_funding(SYMBOL, "0.07", "-0.00007", t + 3_600_000)
    with trio.fail_after(BOUND_S):
        payments = await venue.account.funding(t * 1_000_000)
    assert [p.amount for p in payments] == [Decimal("0.05"), Decimal("0.07")]
    assert payments[0].ts_venue_ns == t * 1_000_000
    assert payments[0].rate == Decimal("-0.00005")


async def test_arm_cancel_all_after_when_called_then_false(venue: Venue) -> None:
    with trio.fail_after(BOUND_S):
        assert await venue.account.arm_cancel_all_after(SYMBOL, 10_000) is False


def test_stream_user_when_rest_has_no_auth_then_runtime_error() -> None:
    # The stream itself is covered in test_backpack_user_stream.py.
    account = BackpackAccount(BackpackRest(), "bp-main")
    with pytest.raises(RuntimeError, match="needs credentials"):
        account.stream_user()


def _refusing(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def _timing_out(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("read timed out", request=request)


@pytest.mark.parametrize(("transport", "expected"), [
    (_refusing, VenueTransportError), (_timing_out, OrderOutcomeUnknownError)])
async def test_place_order_when_no_response_then_unknown_only_if_the_request_may_have_left(
        transport: object, expected: type[Exception]) -> None:
    api_key, seed = _keys()
    async with BackpackRest(BackpackAuth(api_key, seed),
                            transport=httpx.MockTransport(transport)) as rest:  # type: ignore[arg-type]
        account = BackpackAccount(rest, "bp-main")
        with trio.fail_after(BOUND_S), pytest.raises(expected) as caught:
            await account.place_order(limit("c-1"))

    assert type(caught.value) is expected
    assert caught.value.__cause__ is None and seed not in str(caught.value)


async def test_funding_when_history_spans_pages_then_reads_only_pages_since(venue: Venue) -> None:
    t = venue.sim.now_ms
    hour_ms = 3_600_000
    for index in range(2500):  # listed newest first: 3 pages of 1000 hold it all
        venue.sim.add_funding(SYMBOL, "0.01", "0.0001", t - (2500 - index) * hour_ms)

    def funding_requests() -> int:
        return sum("instruction=fundingHistoryQueryAll" in s for s in venue.sim.signing_strings)

    with trio.fail_after(BOUND_S):
        recent = await venue.account.funding((t - 10 * hour_ms) * 1_000_000)
        assert len(recent) == 10 and funding_requests() == 1  # the first page reached `since`
        everything = await venue.account.funding(0)
    assert len(everything) == 2500 and funding_requests() == 1 + 3
