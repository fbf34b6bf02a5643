"""`AsterAccount.stream_user` (venues.md §1.8, §4.5-6) against the simulator's real loopback
WebSocket side (`open_aster_ws`) and its REST side through `httpx.MockTransport`.

Rules: every test bounds itself with `trio.fail_after`; nothing sleeps in real time except the
network and the keepalive test's shortened interval (10-20 ms); out-of-order and malformed
frames are pushed by hand through `ws_sim`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import ConnectionRejected, open_websocket_url

from exchanges import (
    BookTop,
    Fill,
    FundingPayment,
    Instrument,
    Liquidity,
    MarkPrice,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    UserEvent,
    VenueAuthError,
    VenueOrder,
    VenueRejectedError,
    VenueTransportError,
)
from exchanges.aster import (
    AsterAccount,
    AsterHmacAuth,
    AsterMarketData,
    AsterRest,
    venue_client_id,
)

from .aster_sim import LISTEN_KEY_PATH, AsterSimulator, open_aster_ws
from .ws_sim import open_ws_sim

T0_MS = 1_760_000_000_000
BTC = Instrument(venue="aster", symbol="BTCUSDT", base="BTC", quote="USDT",
                 tick_size=Decimal("0.1"), step_size=Decimal("0.001"), min_qty=Decimal("0.001"),
                 min_notional=Decimal(5))
BOUND_S = 2


class Clock:
    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


@dataclass
class Venue:
    sim: AsterSimulator
    rest: AsterRest
    account: AsterAccount
    clock: Clock
    api_key: str
    secret: str


def make_venue(ws_url: str) -> Venue:
    api_key, secret = os.urandom(32).hex(), os.urandom(32).hex()
    clock = Clock(T0_MS)
    sim = AsterSimulator(api_key=api_key, secret=secret, instruments=[BTC], clock_ms=clock)
    sim.set_book("BTCUSDT", Decimal("60000.0"), Decimal("60000.1"))
    rest = AsterRest(AsterHmacAuth(api_key, secret, clock=clock), base_url="https://fapi.test",
                     transport=httpx.MockTransport(sim.handle), clock_ms=clock)
    account = AsterAccount(rest, account="main", symbols=["BTCUSDT"], ws_url=ws_url)
    return Venue(sim, rest, account, clock, api_key, secret)


@asynccontextmanager
async def open_venue() -> AsyncIterator[Venue]:
    """A venue whose WebSocket side is the simulator itself."""
    venue = make_venue("")
    async with open_aster_ws(venue.sim) as url, venue.rest:
        venue.account._ws_url = url
        yield venue


def limit(client_id: str, side: Side, qty: str, price: str, *,
          tif: TimeInForce = TimeInForce.GTC) -> OrderRequest:
    return OrderRequest(client_id=client_id, symbol="BTCUSDT", side=side,
                        order_type=OrderType.LIMIT, qty=Decimal(qty), price=Decimal(price),
                        tif=tif)


async def next_event(events: AsyncIterator[UserEvent]) -> UserEvent:
    return await events.__anext__()


async def next_events(events: AsyncIterator[UserEvent], count: int) -> list[UserEvent]:
    return [await next_event(events) for _ in range(count)]


def order_frame(*, x: str, X: str, z: str, E: int, l: str = "0", L: str = "0",  # noqa: E741
                t: int = 0, n: str = "0", m: bool = False) -> str:
    """An ORDER_TRADE_UPDATE in the documented shape (§1.8) for order 7 of `c-1`."""
    return json.dumps({"e": "ORDER_TRADE_UPDATE", "E": E, "T": E, "o": {
        "s": "BTCUSDT", "c": "c-1", "S": "BUY", "o": "LIMIT", "f": "GTC", "q": "1",
        "p": "100", "ap": "0", "sp": "0", "x": x, "X": X, "i": 7, "l": l, "z": z, "L": L,
        "N": "USDT", "n": n, "T": E, "t": t, "m": m, "R": False, "ps": "BOTH", "rp": "0"}})


def as_dict(event: Any) -> dict[str, Any]:
    return {k: getattr(event, k) for k in event.__struct_fields__}


# ---------------------------------------------------------------------------------------------
# Order events from the simulator


async def test_stream_user_when_order_rests_then_cancelled_then_open_and_cancelled_updates():
    with trio.fail_after(BOUND_S):
        async with open_venue() as v, v.account.stream_user() as events:
            await v.account.place_order(limit("mm-1", Side.BUY, "0.010", "59000.0"))
            opened = await next_event(events)
            await v.account.cancel_order("BTCUSDT", "mm-1")
            cancelled = await next_event(events)
    assert isinstance(opened, VenueOrder) and isinstance(cancelled, VenueOrder)
    assert (opened.client_id, opened.status, opened.qty, opened.price, opened.filled_qty) == (
        "mm-1", OrderStatus.OPEN, Decimal("0.010"), Decimal("59000.0"), Decimal(0))
    assert opened.ts_venue_ns == T0_MS * 1_000_000
    assert (cancelled.client_id, cancelled.status) == ("mm-1", OrderStatus.CANCELLED)


async def test_stream_user_when_taker_fill_then_fill_before_filled_order_with_rest_fill_id():
    with trio.fail_after(BOUND_S):
        async with open_venue() as v, v.account.stream_user() as events:
            await v.account.place_order(
                limit("take-1", Side.BUY, "0.002", "60000.1", tif=TimeInForce.IOC))
            opened, fill, filled = await next_events(events, 3)
            [rest_fill] = await v.account.fills(since_ns=0)
    assert isinstance(opened, VenueOrder) and opened.status is OrderStatus.OPEN
    assert isinstance(fill, Fill)
    assert isinstance(filled, VenueOrder)
    assert (filled.client_id, filled.status, filled.filled_qty) == (
        "take-1", OrderStatus.FILLED, Decimal("0.002"))
    assert fill == rest_fill  # same id, same Decimals: the journal dedupes the two
    assert fill.fill_id == f"BTCUSDT:1:{filled.venue_order_id}"  # <symbol>:<t>:<i>
    assert (fill.client_id, fill.qty, fill.price, fill.liquidity) == (
        "take-1", Decimal("0.002"), Decimal("60000.1"), Liquidity.TAKER)
    assert fill.fee == Decimal("0.002") * Decimal("60000.1") * Decimal("0.0004")
    assert fill.fee_asset == "USDT"


async def test_stream_user_when_book_moves_through_resting_order_then_maker_fill():
    with trio.fail_after(BOUND_S):
        async with open_venue() as v, v.account.stream_user() as events:
            await v.account.place_order(limit("mm-2", Side.SELL, "0.010", "60010.0"))
            await next_event(events)  # NEW
            v.sim.set_book("BTCUSDT", Decimal("60010.0"), Decimal("60010.1"))
            fill, filled = await next_events(events, 2)
            [rest_fill] = await v.account.fills(since_ns=0)
            [position] = await v.account.positions()
    assert isinstance(fill, Fill) and isinstance(filled, VenueOrder)
    assert fill == rest_fill
    assert (fill.client_id, fill.side, fill.qty, fill.price, fill.liquidity) == (
        "mm-2", Side.SELL, Decimal("0.010"), Decimal("60010.0"), Liquidity.MAKER)
    assert fill.fee == Decimal("0.010") * Decimal("60010.0") * Decimal("0.0002")
    assert (filled.status, filled.filled_qty) == (OrderStatus.FILLED, Decimal("0.010"))
    assert position.qty == Decimal("-0.010")


async def test_stream_user_when_client_id_was_hashed_then_events_carry_ours():
    ours = "grid|buy|1"  # `|` is not allowed by Aster: sent hashed
    assert venue_client_id(ours) != ours
    with trio.fail_after(BOUND_S):
        async with open_venue() as v, v.account.stream_user() as events:
            await v.account.place_order(
                limit(ours, Side.BUY, "0.001", "60000.1", tif=TimeInForce.IOC))
            opened, fill, filled = await next_events(events, 3)
    assert isinstance(fill, Fill)
    assert [e.client_id for e in (opened, fill, filled)
            if isinstance(e, VenueOrder | Fill)] == [ours, ours, ours]


async def test_stream_user_when_cancel_all_then_each_order_cancelled():
    with trio.fail_after(BOUND_S):
        async with open_venue() as v, v.account.stream_user() as events:
            await v.account.place_order(limit("a", Side.BUY, "0.001", "59000.0"))
            await v.account.place_order(limit("b", Side.SELL, "0.001", "61000.0"))
            await next_events(events, 2)
            await v.account.cancel_all("BTCUSDT")
            first, second = await next_events(events, 2)
    assert {(e.client_id, e.status) for e in (first, second) if isinstance(e, VenueOrder)} == {
        ("a", OrderStatus.CANCELLED), ("b", OrderStatus.CANCELLED)}


# ---------------------------------------------------------------------------------------------
# Ordering, malformed and unknown frames (pushed by hand)


async def test_stream_user_when_frames_out_of_order_then_order_never_regresses_but_fills_pass():
    venue = make_venue("")
    with trio.fail_after(BOUND_S):
        async with open_ws_sim() as ws, venue.rest:
            venue.account._ws_url = ws.url
            async with venue.account.stream_user() as events:
                connection = await ws.next_connection()
                assert connection.path == f"/ws/{venue.sim.listen_key}"
                await connection.send(order_frame(x="NEW", X="NEW", z="0", E=10))
                await connection.send(order_frame(
                    x="TRADE", X="PARTIALLY_FILLED", z="0.4", E=30, l="0.4", L="100", t=1))
                await connection.send(order_frame(x="NEW", X="NEW", z="0", E=20))  # stale
                await connection.send(order_frame(
                    x="TRADE", X="FILLED", z="1", E=50, l="0.6", L="100", t=2))
                # A late partial fill: its Fill still counts, its order state is stale.
                await connection.send(order_frame(
                    x="TRADE", X="PARTIALLY_FILLED", z="0.4", E=40, l="0.4", L="100", t=1))
                # Newer by time but open again after terminal: dropped.
                await connection.send(order_frame(x="NEW", X="NEW", z="1", E=60))
                await connection.send(order_frame(x="CANCELED", X="CANCELED", z="0", E=5))
                await connection.send(json.dumps(
                    {"e": "ORDER_TRADE_UPDATE", "E": 70, "T": 70, "o": {
                        "s": "BTCUSDT", "c": "c-2", "S": "SELL", "o": "LIMIT", "f": "GTX",
                        "q": "1", "p": "101", "x": "NEW", "X": "NEW", "i": 8, "z": "0",
                        "T": 70}}))  # sentinel (also: N, n, l, L, t, m omitted is fine)
                received = await next_events(events, 7)
    summary = [(type(e).__name__, e.venue_order_id,
                e.status.name if isinstance(e, VenueOrder) else e.fill_id)
               for e in received if isinstance(e, VenueOrder | Fill)]
    assert summary == [
        ("VenueOrder", "7", "OPEN"),
        ("Fill", "7", "BTCUSDT:1:7"),
        ("VenueOrder", "7", "PARTIALLY_FILLED"),
        ("Fill", "7", "BTCUSDT:2:7"),
        ("VenueOrder", "7", "FILLED"),
        ("Fill", "7", "BTCUSDT:1:7"),  # a repeat: the journal dedupes by fill_id
        ("VenueOrder", "8", "OPEN"),
    ]
    last = received[-1]
    assert isinstance(last, VenueOrder) and last.tif is TimeInForce.POST_ONLY


async def test_stream_user_when_unknown_or_unneeded_frame_then_logged_skipped_and_stream_up(
        caplog: pytest.LogCaptureFixture):
    venue = make_venue("")
    caplog.set_level(logging.DEBUG)
    with trio.fail_after(BOUND_S):
        async with open_ws_sim() as ws, venue.rest:
            venue.account._ws_url = ws.url
            async with venue.account.stream_user() as events:
                connection = await ws.next_connection()
                await connection.send(json.dumps({"e": "MARGIN_CALL", "E": 2, "cw": "3.1"}))
                await connection.send(json.dumps(
                    {"e": "ACCOUNT_CONFIG_UPDATE", "E": 3, "ac": {"s": "BTCUSDT", "l": 25}}))
                await connection.send(json.dumps(
                    {"e": "ACCOUNT_UPDATE", "E": 4, "T": 4, "a": {"m": "ORDER", "B": [], "P": []}}))
                # A malformed event we do not need for fills (funding reads REST from a cursor).
                await connection.send(json.dumps(
                    {"e": "ACCOUNT_UPDATE", "E": 5, "a": {"m": 77, "B": "secret-ish-77"}}))
                await connection.send(order_frame(x="NEW", X="NEW", z="0", E=6))
                event = await next_event(events)
    assert isinstance(event, VenueOrder) and event.client_id == "c-1"
    warnings = [r.getMessage() for r in caplog.records
                if r.name == "exchanges.aster" and r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "malformed" in warnings[0]
    assert "secret-ish-77" not in caplog.text
    assert venue.api_key not in caplog.text and venue.secret not in caplog.text


@pytest.mark.parametrize("frame", [
    "not json {",
    order_frame(x="TRADE", X="FILLED", z="abc", E=1, l="1", L="100", t=3),
    order_frame(x="TRADE", X="FILLED", z="1", E=1, l="NaN", L="100", t=3),
    order_frame(x="TRADE", X="FILLED", z="1", E=1, l="1", L="100", t=3).replace(
        '"S": "BUY"', '"S": "SIDEWAYS"'),  # the fill itself cannot be mapped
    json.dumps({"e": "listenKeyExpired", "E": "soon"}),
], ids=["not-json", "order-field", "non-finite", "unknown-side", "expired-key-field"])
async def test_stream_user_when_frame_with_fill_or_order_unreadable_then_stream_ends(
        frame: str, caplog: pytest.LogCaptureFixture):
    # Skipping it would lose the fill until some later reconnect: end the stream instead,
    # so the gateway reconnects and reconciles over REST now.
    venue = make_venue("")
    with trio.fail_after(BOUND_S):
        async with open_ws_sim() as ws, venue.rest:
            venue.account._ws_url = ws.url
            with pytest.raises(VenueTransportError, match="user stream: unreadable") as caught:
                async with venue.account.stream_user() as events:
                    connection = await ws.next_connection()
                    await connection.send(frame)
                    await connection.send(order_frame(x="NEW", X="NEW", z="0", E=6))
                    await next_event(events)
    # msgspec's reasons name paths, not values (an unknown side or status is named, as ever).
    assert "soon" not in str(caught.value) and "abc" not in str(caught.value)
    assert "soon" not in caplog.text and "abc" not in caplog.text


async def test_stream_user_when_trade_has_unknown_order_status_then_fill_kept_then_stream_ends():
    venue = make_venue("")
    with trio.fail_after(BOUND_S):
        async with open_ws_sim() as ws, venue.rest:
            venue.account._ws_url = ws.url
            async with venue.account.stream_user() as events:
                connection = await ws.next_connection()
                await connection.send(order_frame(
                    x="TRADE", X="EXPIRED_IN_MATCH", z="1", E=9, l="1", L="100", t=4))
                fill = await next_event(events)
                with pytest.raises(VenueTransportError, match="unreadable order update"):
                    await next_event(events)
    assert isinstance(fill, Fill)
    assert (fill.fill_id, fill.client_id, fill.qty) == ("BTCUSDT:4:7", "c-1", Decimal(1))


# ---------------------------------------------------------------------------------------------
# Funding


async def test_stream_user_when_funding_fee_update_then_new_payments_from_rest():
    with trio.fail_after(BOUND_S):
        async with open_venue() as v, v.account.stream_user() as events:
            v.sim.add_funding("BTCUSDT", Decimal("-0.12"), T0_MS - 10)
            first = await next_event(events)
            v.sim.add_funding("BTCUSDT", Decimal("0.30"), T0_MS + 20)
            second = await next_event(events)
            await v.account.place_order(limit("after", Side.BUY, "0.001", "59000.0"))
            third = await next_event(events)  # no repeat of the first payment in between
    assert isinstance(first, FundingPayment) and isinstance(second, FundingPayment)
    assert (first.symbol, first.amount, first.ts_venue_ns) == (
        "BTCUSDT", Decimal("-0.12"), (T0_MS - 10) * 1_000_000)
    assert (second.amount, second.ts_venue_ns) == (Decimal("0.30"), (T0_MS + 20) * 1_000_000)
    assert isinstance(third, VenueOrder) and third.client_id == "after"


# ---------------------------------------------------------------------------------------------
# Listen key lifecycle


async def test_stream_user_when_listen_key_expires_then_transport_error_and_new_key_works():
    with trio.fail_after(BOUND_S):
        async with open_venue() as v:
            with pytest.raises(VenueTransportError, match="listen key expired"):
                async with v.account.stream_user() as events:
                    first_key = v.sim.listen_key
                    v.sim.expire_listen_key()
                    await next_event(events)
            async with v.account.stream_user() as events:
                second_key = v.sim.listen_key
                await v.account.place_order(limit("again", Side.BUY, "0.001", "59000.0"))
                event = await next_event(events)
    assert first_key is not None and second_key is not None and second_key != first_key
    assert isinstance(event, VenueOrder) and event.client_id == "again"
    assert not any(r.method == "DELETE" and r.path == LISTEN_KEY_PATH for r in v.sim.received)


async def test_stream_user_when_key_outlives_sim_clock_then_expired_event_ends_stream():
    with trio.fail_after(BOUND_S):
        async with open_venue() as v:
            with pytest.raises(VenueTransportError, match="listen key expired"):
                async with v.account.stream_user() as events:
                    v.clock.now_ms += 60 * 60 * 1000  # no keepalive for 60 min
                    v.sim.add_funding("BTCUSDT", Decimal(1), v.clock.now_ms)
                    await next_event(events)


async def test_stream_user_when_running_then_keepalive_put_sent_and_failure_retried(
        caplog: pytest.LogCaptureFixture):
    with trio.fail_after(BOUND_S):
        async with open_venue() as v:
            v.account.keepalive_interval_s = 0.02
            v.account.keepalive_retry_s = 0.01
            async with v.account.stream_user():
                v.sim.fail_next(LISTEN_KEY_PATH, 503)
                await v.sim.wait_listen_key_extensions(2)
    puts = [r for r in v.sim.received if r.method == "PUT" and r.path == LISTEN_KEY_PATH]
    assert len(puts) >= 3  # the failed one, then two that extended the key
    assert any("keepalive failed" in r.getMessage() for r in caplog.records)
    assert v.api_key not in caplog.text and v.secret not in caplog.text


async def test_stream_user_when_keepalive_refused_for_good_then_stream_ends_with_error():
    with trio.fail_after(BOUND_S):
        async with open_venue() as v:
            v.account.keepalive_interval_s = 0.01
            with pytest.raises(VenueTransportError, match="keepalive refused"):
                async with v.account.stream_user() as events:
                    v.sim.listen_key = None  # the venue forgot the key: PUT answers -1125
                    await next_event(events)


async def test_stream_user_when_context_exits_then_no_delete_and_server_sees_close():
    with trio.fail_after(BOUND_S):
        async with open_ws_sim() as ws:
            venue = make_venue(ws.url)
            async with venue.rest:
                async with venue.account.stream_user():
                    connection = await ws.next_connection()
                await connection.closed.wait()
    assert [r.method for r in venue.sim.received if r.path == LISTEN_KEY_PATH] == ["POST"]


# ---------------------------------------------------------------------------------------------
# Disconnects


async def test_stream_user_when_dropped_abnormally_then_transport_error():
    with trio.fail_after(BOUND_S):
        async with open_venue() as v:
            with pytest.raises(VenueTransportError, match="user stream closed: 1011"):
                async with v.account.stream_user() as events:
                    v.sim.drop_user_streams(1011)
                    await next_event(events)


async def test_stream_user_when_closed_normally_then_iterator_ends():
    with trio.fail_after(BOUND_S):
        async with open_venue() as v, v.account.stream_user() as events:
            await v.account.place_order(limit("last", Side.BUY, "0.001", "59000.0"))
            v.sim.drop_user_streams(1000)
            received = [event async for event in events]
    assert [e.client_id for e in received if isinstance(e, VenueOrder)] == ["last"]


async def test_stream_user_when_connect_refused_then_transport_error():
    with trio.fail_after(BOUND_S):
        async with open_ws_sim() as ws:
            url = ws.url
        venue = make_venue(url)
        async with venue.rest:
            with pytest.raises(VenueTransportError, match="user stream"):
                async with venue.account.stream_user():
                    pass


# ---------------------------------------------------------------------------------------------
# The simulator's listen keys and WebSocket handshake


async def test_sim_listen_key_when_posted_twice_then_same_key_until_expiry():
    with trio.fail_after(BOUND_S):
        async with open_venue() as v:
            first = await v.rest.new_listen_key()
            assert await v.rest.new_listen_key() == first
            v.clock.now_ms += 59 * 60 * 1000
            await v.rest.keepalive_listen_key()
            v.clock.now_ms += 59 * 60 * 1000
            assert await v.rest.new_listen_key() == first  # extended by the PUT
            v.clock.now_ms += 61 * 60 * 1000
            with pytest.raises(VenueRejectedError) as refused:
                await v.rest.keepalive_listen_key()
            second = await v.rest.new_listen_key()
            await v.rest.close_listen_key()
            assert v.sim.listen_key is None
    assert refused.value.code == "-1125"
    assert second != first


async def test_sim_ws_when_unknown_listen_key_then_handshake_rejected():
    with trio.fail_after(BOUND_S):
        async with open_venue() as v:
            url = v.account._ws_url
            with pytest.raises(ConnectionRejected):
                async with open_websocket_url(f"{url}/ws/not-a-key"):
                    pass


# ---------------------------------------------------------------------------------------------
# Market data against the simulator


async def test_stream_market_against_sim_when_book_set_then_book_top_and_mark():
    with trio.fail_after(BOUND_S):
        async with open_venue() as v:
            v.sim.set_mark("BTCUSDT", Decimal("60000.05"), Decimal("0.0001"), T0_MS + 3_600_000)
            market = AsterMarketData(AsterRest(), ws_url=v.account._ws_url)
            async with market.stream_market(["BTCUSDT"]) as events:
                initial = [await events.__anext__() for _ in range(2)]
                v.sim.set_book("BTCUSDT", Decimal("60001.0"), Decimal("60001.1"))
                moved = await events.__anext__()
                v.sim.set_mark("BTCUSDT", Decimal("60001.05"), Decimal("0.0002"), T0_MS)
                mark = await events.__anext__()
    assert {type(e) for e in initial} == {BookTop, MarkPrice}
    assert isinstance(moved, BookTop)
    assert (moved.symbol, moved.bid, moved.ask) == ("BTCUSDT", Decimal("60001.0"),
                                                    Decimal("60001.1"))
    assert isinstance(mark, MarkPrice)
    assert (mark.mark_price, mark.funding_rate, mark.next_funding_ns) == (
        Decimal("60001.05"), Decimal("0.0002"), T0_MS * 1_000_000)


# ---------------------------------------------------------------------------------------------
# AsterRest without credentials


async def test_rest_without_auth_when_signed_then_auth_error_and_public_works():
    clock = Clock(T0_MS)
    sim = AsterSimulator(api_key="k", secret="s", instruments=[BTC], clock_ms=lambda: T0_MS + 7)
    with trio.fail_after(BOUND_S):
        async with AsterRest(base_url="https://fapi.test",
                             transport=httpx.MockTransport(sim.handle), clock_ms=clock) as rest:
            assert await rest.sync_clock() == 7
            assert rest.now_ms() == T0_MS
            with pytest.raises(VenueAuthError, match="no credentials"):
                await rest.new_listen_key()
            assert [i.symbol for i in await rest.instruments()] == ["BTCUSDT"]
    assert [r.path for r in sim.received] == ["/fapi/v1/time", "/fapi/v1/exchangeInfo"]
