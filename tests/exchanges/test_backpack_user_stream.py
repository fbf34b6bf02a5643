"""`BackpackAccount.stream_user` (venues.md §2.5) over real loopback WebSockets.

Two servers: `BackpackSimulator.serve_websocket` (a whole venue: REST through
`httpx.MockTransport(sim.handle)`, orders changing on both) and `ws_sim` (frames pushed by hand,
for out-of-order and malformed input). Every test is bounded by `trio.fail_after` and waits
only on the network; none sleeps.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
import trio
from nacl.signing import SigningKey, VerifyKey
from trio_websocket import open_websocket_url

from exchanges import (
    BookTop,
    Fill,
    FundingPayment,
    Liquidity,
    MarkPrice,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    UserEvent,
    VenueAuthError,
    VenueOrder,
    VenueTransportError,
)
from exchanges.backpack import (
    BackpackAccount,
    BackpackAuth,
    BackpackMarketData,
    BackpackRest,
    decode_depth,
)

from .backpack_sim import BackpackSimulator, open_backpack_ws
from .ws_sim import open_ws_sim

SYMBOL = "SOL_USDC_PERP"
BOUND_S = 2
ORDERS = "account.orderUpdate"


def _keys() -> tuple[str, str]:
    """(api key, secret seed), both base64; generated per test and never printed."""
    key = SigningKey.generate()
    return (base64.b64encode(bytes(key.verify_key)).decode(),
            base64.b64encode(bytes(key)).decode())


class Venue:
    def __init__(self, ws_url: str = "ws://unused") -> None:
        self.api_key, self.seed = _keys()
        self.sim = BackpackSimulator(api_key_b64=self.api_key)
        self.sim.add_market(SYMBOL, tick="0.01", step="0.01", min_qty="0.01")
        self.sim.set_top(SYMBOL, bid="140.00", ask="140.10")
        self.sim.set_balance("USDC", "10000")
        self.clock_skew_ms = 0
        self.auth = BackpackAuth(self.api_key, self.seed,
                                 clock=lambda: self.sim.now_ms + self.clock_skew_ms)
        self.rest = BackpackRest(self.auth, transport=httpx.MockTransport(self.sim.handle))
        self.ws_url = ws_url
        self.account = BackpackAccount(self.rest, "bp-main", ws_url=ws_url)


@pytest.fixture
async def venue() -> AsyncIterator[Venue]:
    v = Venue()
    async with open_backpack_ws(v.sim) as url, v.rest:
        v.ws_url = url
        v.account = BackpackAccount(v.rest, "bp-main", ws_url=url)
        yield v


def limit(client_id: str, price: str, side: Side = Side.BUY, qty: str = "1.50") -> OrderRequest:
    return OrderRequest(client_id=client_id, symbol=SYMBOL, side=side,
                        order_type=OrderType.LIMIT, qty=Decimal(qty), price=Decimal(price))


async def take(events: AsyncIterator[UserEvent], n: int) -> list[UserEvent]:
    return [await events.__anext__() for _ in range(n)]


def order_states(events: list[UserEvent]) -> list[tuple[str, OrderStatus, Decimal]]:
    return [(e.client_id, e.status, e.filled_qty) for e in events if isinstance(e, VenueOrder)]


# ---------------------------------------------------------------------------------------------
# Against the simulator


async def test_stream_user_when_orders_live_then_events_carry_our_ids_and_exact_decimals(
        venue: Venue) -> None:
    with trio.fail_after(BOUND_S):
        async with venue.account.stream_user() as events:
            await venue.sim.wait_subscribed(ORDERS)
            await venue.account.place_order(limit("rest-1", "139.50"))
            opened = await take(events, 1)
            await venue.account.place_order(limit("take-1", "140.10", qty="0.25"))
            taker = await take(events, 3)
            venue.sim.set_top(SYMBOL, bid="139.00", ask="139.40")  # through rest-1: maker fill
            maker = await take(events, 2)
            fills = await venue.account.fills(0)

    (accepted,) = opened
    assert isinstance(accepted, VenueOrder)
    assert (accepted.client_id, accepted.status, accepted.price, accepted.qty) == (
        "rest-1", OrderStatus.OPEN, Decimal("139.50"), Decimal("1.50"))
    assert order_states(taker) == [("take-1", OrderStatus.OPEN, Decimal(0)),
                                   ("take-1", OrderStatus.FILLED, Decimal("0.25"))]
    fill = taker[1]  # the fill comes before the order state it produced
    assert isinstance(fill, Fill)
    assert (fill.client_id, fill.side, fill.qty, fill.price, fill.liquidity, fill.fee_asset) == (
        "take-1", Side.BUY, Decimal("0.25"), Decimal("140.10"), Liquidity.TAKER, "USDC")
    maker_fill, maker_order = maker
    assert isinstance(maker_fill, Fill) and isinstance(maker_order, VenueOrder)
    assert (maker_fill.client_id, maker_fill.qty, maker_fill.price, maker_fill.liquidity) == (
        "rest-1", Decimal("1.50"), Decimal("139.50"), Liquidity.MAKER)
    assert (maker_order.status, maker_order.filled_qty) == (OrderStatus.FILLED, Decimal("1.50"))
    assert [f.fill_id for f in fills] == [fill.fill_id, maker_fill.fill_id]
    assert [f.liquidity for f in fills] == [Liquidity.TAKER, Liquidity.MAKER]
    assert fill.ts_venue_ns // 1_000_000_000 == venue.sim.now_ms // 1000  # µs → ns
    assert "instruction=subscribe&timestamp=1700000000000&window=5000" in venue.sim.signing_strings


async def test_stream_user_when_cancel_and_cancel_all_then_cancelled_states(
        venue: Venue) -> None:
    with trio.fail_after(BOUND_S):
        async with venue.account.stream_user() as events:
            await venue.sim.wait_subscribed(ORDERS)
            await venue.account.place_order(limit("a", "139.00"))
            await venue.account.place_order(limit("b", "138.00"))
            await venue.account.place_order(limit("c", "141.00", side=Side.SELL))
            await venue.account.cancel_order(SYMBOL, "a")
            await venue.account.cancel_all(SYMBOL)
            seen = await take(events, 6)
    assert order_states(seen) == [
        ("a", OrderStatus.OPEN, Decimal(0)), ("b", OrderStatus.OPEN, Decimal(0)),
        ("c", OrderStatus.OPEN, Decimal(0)), ("a", OrderStatus.CANCELLED, Decimal(0)),
        ("b", OrderStatus.CANCELLED, Decimal(0)), ("c", OrderStatus.CANCELLED, Decimal(0)),
    ]


async def test_stream_user_when_order_expires_then_expired_with_reason(venue: Venue) -> None:
    with trio.fail_after(BOUND_S):
        async with venue.account.stream_user() as events:
            await venue.sim.wait_subscribed(ORDERS)
            placed = await venue.account.place_order(limit("e", "139.00"))
            venue.sim.expire(placed.venue_order_id, "PriceBandExceeded")
            _, expired = await take(events, 2)
    assert isinstance(expired, VenueOrder)
    assert (expired.client_id, expired.status, expired.reason) == (
        "e", OrderStatus.EXPIRED, "PriceBandExceeded")


async def test_stream_user_when_key_is_wrong_then_auth_error_without_secrets(
        venue: Venue, caplog: pytest.LogCaptureFixture) -> None:
    other_key, other_seed = _keys()
    stranger = BackpackAccount(
        BackpackRest(BackpackAuth(other_key, other_seed, clock=lambda: venue.sim.now_ms),
                     transport=httpx.MockTransport(venue.sim.handle)),
        "bp-main", ws_url=venue.ws_url)
    with trio.fail_after(BOUND_S), caplog.at_level(logging.DEBUG):
        with pytest.raises(VenueAuthError, match="subscription refused") as raised:
            async with stranger.stream_user() as events:
                await events.__anext__()
    assert other_seed not in str(raised.value) and other_seed not in caplog.text
    assert "signature" not in str(raised.value).replace("could not verify signature", "")
    assert ORDERS not in {s for c in venue.sim._connections for s in c.streams}


async def test_stream_user_when_timestamp_outside_window_then_transport_error(
        venue: Venue) -> None:
    venue.clock_skew_ms = -60_000
    with trio.fail_after(BOUND_S):
        with pytest.raises(VenueTransportError, match="Request has expired"):
            async with venue.account.stream_user() as events:
                await events.__anext__()


async def test_stream_user_when_dropped_then_transport_error_and_reconnect_works(
        venue: Venue) -> None:
    with trio.fail_after(BOUND_S):
        with pytest.raises(VenueTransportError, match="user stream closed: 1011"):
            async with venue.account.stream_user() as events:
                await venue.sim.wait_subscribed(ORDERS)
                venue.sim.drop_streams(1011)
                await events.__anext__()
        async with venue.account.stream_user() as events:
            await venue.sim.wait_subscribed(ORDERS)
            await venue.account.place_order(limit("again", "139.00"))
            (event,) = await take(events, 1)
    assert isinstance(event, VenueOrder) and event.client_id == "again"


async def test_stream_user_when_funding_paid_then_polled_once_each(venue: Venue) -> None:
    start = venue.sim.now_ms
    venue.sim.add_funding(SYMBOL, "-0.5", "0.0001", ts_ms=start - 3_600_000)  # before: REST's
    with trio.fail_after(BOUND_S):
        async with venue.account.stream_user(funding_poll_s=0.02) as events:
            venue.sim.add_funding(SYMBOL, "-0.12", "0.0001", ts_ms=start + 1000)
            first = await events.__anext__()
            venue.sim.add_funding(SYMBOL, "0.07", "-0.0002", ts_ms=start + 3_601_000)
            second = await events.__anext__()
    assert isinstance(first, FundingPayment) and isinstance(second, FundingPayment)
    assert (first.symbol, first.amount, first.rate) == (SYMBOL, Decimal("-0.12"),
                                                        Decimal("0.0001"))
    assert (second.amount, second.rate) == (Decimal("0.07"), Decimal("-0.0002"))


# ---------------------------------------------------------------------------------------------
# Frames pushed by hand


def frame(e: str, event_us: int, *, z: str = "0", status: str = "New", order_id: str = "9",
          client_id: int | None = None, **extra: object) -> str:
    data: dict[str, object] = {
        "e": e, "E": event_us, "s": SYMBOL, "S": "Bid", "o": "LIMIT", "f": "GTC", "q": "2",
        "p": "100.5", "X": status, "i": order_id, "z": z, "Z": "0", "V": "RejectTaker",
        "T": event_us - 1, "O": "USER", "y": False, **extra}
    if client_id is not None:
        data["c"] = client_id
    return json.dumps({"stream": ORDERS, "data": data})


def fill_frame(event_us: int, trade_id: int, qty: str, z: str, status: str) -> str:
    return frame("orderFill", event_us, z=z, status=status, l=qty, L="100.5", m=True,
                 n="0.01", N="USDC", t=trade_id)


async def test_stream_user_when_frames_out_of_order_then_states_never_regress() -> None:
    v = Venue()
    with trio.fail_after(BOUND_S):
        async with open_ws_sim() as ws, v.rest:
            account = BackpackAccount(v.rest, "bp-main", ws_url=ws.url)
            number = account.client_ids.to_uint32("ours-1")
            async with account.stream_user() as events:
                connection = await ws.next_connection()
                subscribe = json.loads(await connection.next_message())
                for text in [
                    frame("orderAccepted", 10, client_id=number),
                    fill_frame(30, 7, "1", "1.5", "PartiallyFilled"),
                    fill_frame(20, 6, "0.5", "0.5", "PartiallyFilled"),  # late: fill only
                    frame("orderCancelled", 40, z="1.5", status="Cancelled"),
                    frame("orderAccepted", 10),  # a replay: dropped
                    frame("orderExpired", 45, z="1.5", status="Expired", R="x"),  # ended: dropped
                    frame("orderAccepted", 50, order_id="10", client_id=77),  # a marker
                ]:
                    await connection.send(text)
                seen = await take(events, 6)
    assert subscribe["method"] == "SUBSCRIBE" and subscribe["params"] == [ORDERS]
    key, signature, timestamp, window = subscribe["signature"]
    assert (key, timestamp, window) == (v.api_key, str(v.sim.now_ms), "5000")
    VerifyKey(base64.b64decode(key)).verify(
        f"instruction=subscribe&timestamp={timestamp}&window={window}".encode(),
        base64.b64decode(signature))
    assert [type(e).__name__ for e in seen] == [
        "VenueOrder", "Fill", "VenueOrder", "Fill", "VenueOrder", "VenueOrder"]
    states = [(e.venue_order_id, e.status, e.filled_qty) for e in seen
              if isinstance(e, VenueOrder)]
    assert states == [("9", OrderStatus.OPEN, Decimal(0)),
                      ("9", OrderStatus.PARTIALLY_FILLED, Decimal("1.5")),
                      ("9", OrderStatus.CANCELLED, Decimal("1.5")),
                      ("10", OrderStatus.OPEN, Decimal(0))]
    fills = [e for e in seen if isinstance(e, Fill)]
    assert [(f.fill_id, f.qty, f.fee, f.liquidity) for f in fills] == [
        (f"{SYMBOL}:7:9", Decimal("1"), Decimal("0.01"), Liquidity.MAKER),
        (f"{SYMBOL}:6:9", Decimal("0.5"), Decimal("0.01"), Liquidity.MAKER)]
    assert [e.client_id for e in seen if isinstance(e, VenueOrder | Fill)] == [
        "ours-1", "", "", "", "", "backpack:77"]  # `c` only where the frame carried it
    assert seen[1].ts_venue_ns == 29_000  # T (µs) → ns


async def test_stream_user_when_malformed_unneeded_frame_then_logged_once_and_next_event_arrives(
        caplog: pytest.LogCaptureFixture) -> None:
    v = Venue()
    with trio.fail_after(BOUND_S), caplog.at_level(logging.WARNING):
        async with open_ws_sim() as ws, v.rest:
            account = BackpackAccount(v.rest, "bp-main", ws_url=ws.url)
            async with account.stream_user() as events:
                connection = await ws.next_connection()
                # A trigger event we never use, malformed: skipped, the stream stays up.
                await connection.send(frame("triggerFailed", 9, E="x_PAYLOAD"))
                await connection.send(frame("triggerPlaced", 11))
                await connection.send(frame("orderAccepted", 12))
                event = await events.__anext__()
    assert isinstance(event, VenueOrder) and event.status is OrderStatus.OPEN
    malformed = [r for r in caplog.records if "malformed" in r.getMessage()]
    assert len(malformed) == 1
    assert all("x_PAYLOAD" not in r.getMessage() and "\n" not in r.getMessage()
               for r in malformed)


@pytest.mark.parametrize("text", [
    '{"stream":"account.orderUpdate","data":{"e":"orderFill","x_PAYLOAD"',
    frame("orderFill", 30, z="1", status="Filled", l="x_PAYLOAD", L="100.5", t=7),
    frame("orderFill", 30, z="1", status="Filled", l="1", L="NaN", t=7),
    frame("orderFill", 30, z="1", status="Filled", l="1", L="100.5", t=7, S="Sideways"),
    frame("orderAccepted", 10, z="NaN"),
    frame("orderCancelled", 10, status="Cancelled", i=["x_PAYLOAD"]),
], ids=["truncated", "bad-qty", "non-finite", "unknown-side", "non-finite-order", "bad-id"])
async def test_stream_user_when_order_frame_unreadable_then_stream_ends(
        text: str, caplog: pytest.LogCaptureFixture) -> None:
    # Skipping an unreadable fill would lose it until some later reconnect: end the stream,
    # so the gateway reconnects and reconciles over REST now.
    v = Venue()
    with trio.fail_after(BOUND_S):
        async with open_ws_sim() as ws, v.rest:
            account = BackpackAccount(v.rest, "bp-main", ws_url=ws.url)
            with pytest.raises(VenueTransportError, match="user stream: unreadable") as caught:
                async with account.stream_user() as events:
                    connection = await ws.next_connection()
                    await connection.send(text)
                    await connection.send(frame("orderAccepted", 12))
                    await events.__anext__()
    assert "x_PAYLOAD" not in str(caught.value) and "x_PAYLOAD" not in caplog.text


async def test_stream_user_when_trade_id_is_a_string_then_fill_with_rest_fill_id() -> None:
    v = Venue()
    with trio.fail_after(BOUND_S):
        async with open_ws_sim() as ws, v.rest:
            account = BackpackAccount(v.rest, "bp-main", ws_url=ws.url)
            number = account.client_ids.to_uint32("ours-1")
            async with account.stream_user() as events:
                connection = await ws.next_connection()
                await connection.send(frame("orderFill", 30, z="1", status="PartiallyFilled",
                                            l="1", L="100.5", t="567", c=str(number)))
                fill, order = await take(events, 2)
    assert isinstance(fill, Fill) and isinstance(order, VenueOrder)
    assert (fill.fill_id, fill.client_id, fill.qty) == (f"{SYMBOL}:567:9", "ours-1", Decimal(1))


async def test_stream_user_when_error_answer_then_raises_not_silent() -> None:
    v = Venue()
    with trio.fail_after(BOUND_S):
        async with open_ws_sim() as ws, v.rest:
            account = BackpackAccount(v.rest, "bp-main", ws_url=ws.url)
            with pytest.raises(VenueTransportError, match="Too many connections"):
                async with account.stream_user() as events:
                    connection = await ws.next_connection()
                    await connection.send(
                        '{"id":1,"result":null,"error":{"code":4003,'
                        '"message":"Too many connections"}}')
                    await events.__anext__()


async def test_stream_user_when_closed_normally_then_iterator_ends() -> None:
    v = Venue()
    with trio.fail_after(BOUND_S):
        async with open_ws_sim() as ws, v.rest:
            account = BackpackAccount(v.rest, "bp-main", ws_url=ws.url)
            async with account.stream_user() as events:
                connection = await ws.next_connection()
                await connection.close()
                assert [e async for e in events] == []


async def test_stream_user_when_connect_refused_then_transport_error() -> None:
    v = Venue()
    async with v.rest:
        with trio.fail_after(BOUND_S):
            async with open_ws_sim() as ws:
                url = ws.url
            account = BackpackAccount(v.rest, "bp-main", ws_url=url)
            with pytest.raises(VenueTransportError, match="user stream"):
                async with account.stream_user():
                    pass


# ---------------------------------------------------------------------------------------------
# The simulator's public streams


async def test_market_data_when_sim_serves_then_book_top_and_mark_price(venue: Venue) -> None:
    venue.sim.set_mark(SYMBOL, "140.05", "0.0001", next_funding_ms=1_700_003_600_000)
    market = BackpackMarketData(venue.rest, ws_url=venue.ws_url)
    with trio.fail_after(BOUND_S):
        async with market.stream_market([SYMBOL]) as events:
            mark = await events.__anext__()  # sent once after subscribing
            await venue.sim.wait_subscribed(f"bookTicker.{SYMBOL}")
            venue.sim.set_top(SYMBOL, bid="140.20", ask="140.30", bid_qty="3", ask_qty="4")
            top = await events.__anext__()
    assert isinstance(mark, MarkPrice)
    assert (mark.mark_price, mark.funding_rate, mark.next_funding_ns) == (
        Decimal("140.05"), Decimal("0.0001"), 1_700_003_600_000 * 1_000_000)
    assert isinstance(top, BookTop)
    assert (top.bid, top.bid_qty, top.ask, top.ask_qty) == (
        Decimal("140.20"), Decimal("3"), Decimal("140.30"), Decimal("4"))


async def test_sim_depth_when_top_moves_then_sequenced_diffs(venue: Venue) -> None:
    with trio.fail_after(BOUND_S):
        async with open_websocket_url(venue.ws_url) as ws:
            await ws.send_message(json.dumps(
                {"method": "SUBSCRIBE", "params": [f"depth.{SYMBOL}"]}))
            await venue.sim.wait_subscribed(f"depth.{SYMBOL}")
            venue.sim.set_top(SYMBOL, bid="140.00", ask="140.20")
            venue.sim.set_top(SYMBOL, bid="140.10", ask="140.20")
            first = decode_depth(await ws.get_message())
            second = decode_depth(await ws.get_message())
    assert second.first_update_id == first.final_update_id + 1
    assert (Decimal("140.00"), Decimal(0)) in [tuple(level) for level in second.bids]
