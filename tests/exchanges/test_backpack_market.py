"""`BackpackMarketData` against a real loopback WebSocket server (venues.md §2.5)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
import trio

from exchanges import BookTop, MarketEvent, MarkPrice, VenueTransportError
from exchanges.backpack import BackpackMarketData, BackpackRest

from .backpack_sim import BackpackSimulator
from .ws_sim import open_ws_sim

# The documented samples (§2.5), wrapped as every Backpack frame is.
BOOK_TICKER = (
    '{"stream":"bookTicker.SOL_USDC","data":{"e":"bookTicker","E":1694687965941000,'
    '"s":"SOL_USDC","a":"18.70","A":"1.000","b":"18.67","B":"2.000",'
    '"u":"111063070525358080","T":1694687965940999}}'
)
MARK_PRICE = (
    '{"stream":"markPrice.SOL_USDC","data":{"e":"markPrice","E":1694687965941000,'
    '"s":"SOL_USDC","p":"18.70","f":"1.70","i":"19.70","n":1694687965941,'
    '"T":1694687965940999}}'
)
MALFORMED = '{"stream":"bookTicker.SOL_USDC","data":{"e":"bookTicker","s":"SOL_USDC","a":"x"}}'


def make_client(ws_url: str) -> BackpackMarketData:
    sim = BackpackSimulator(api_key_b64="unused")
    sim.add_market("SOL_USDC_PERP")
    return BackpackMarketData(BackpackRest(transport=httpx.MockTransport(sim.handle)),
                              ws_url=ws_url)


async def next_event(events: AsyncIterator[MarketEvent]) -> MarketEvent:
    return await events.__anext__()


async def test_stream_market_when_two_symbols_then_one_subscribe_as_documented():
    with trio.fail_after(5):
        async with open_ws_sim() as sim:
            async with make_client(sim.url).stream_market(["SOL_USDC_PERP", "ETH_USDC_PERP"]):
                connection = await sim.next_connection()
                message = await connection.next_message()
    assert connection.path == "/"
    assert isinstance(message, str)  # a text frame
    assert json.loads(message) == {
        "method": "SUBSCRIBE",
        "params": ["bookTicker.SOL_USDC_PERP", "markPrice.SOL_USDC_PERP",
                   "bookTicker.ETH_USDC_PERP", "markPrice.ETH_USDC_PERP"],
    }
    assert connection.received == [message]


async def test_stream_market_when_book_ticker_frame_then_yields_book_top():
    with trio.fail_after(5):
        async with open_ws_sim() as sim:
            async with make_client(sim.url).stream_market(["SOL_USDC"]) as events:
                connection = await sim.next_connection()
                await connection.send(BOOK_TICKER)
                event = await next_event(events)
    assert isinstance(event, BookTop)
    assert (event.venue, event.symbol) == ("backpack", "SOL_USDC")
    assert (event.bid, event.bid_qty) == (Decimal("18.67"), Decimal("2.000"))
    assert (event.ask, event.ask_qty) == (Decimal("18.70"), Decimal("1.000"))
    assert event.ts_venue_ns == 1694687965940999 * 1_000  # µs on the wire
    assert event.ts_local_ns > 0


async def test_stream_market_when_mark_price_frame_then_yields_mark_price():
    with trio.fail_after(5):
        async with open_ws_sim() as sim:
            async with make_client(sim.url).stream_market(["SOL_USDC"]) as events:
                connection = await sim.next_connection()
                await connection.send(MARK_PRICE)
                event = await next_event(events)
    assert event == MarkPrice(
        venue="backpack", symbol="SOL_USDC", mark_price=Decimal("18.70"),
        funding_rate=Decimal("1.70"), next_funding_ns=1694687965941 * 1_000_000,  # n is ms
        ts_venue_ns=1694687965941000 * 1_000, ts_local_ns=event.ts_local_ns,
    )


async def test_stream_market_when_malformed_frame_between_good_ones_then_logged_and_skipped(
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.WARNING, logger="exchanges.backpack")
    with trio.fail_after(5):
        async with open_ws_sim() as sim:
            async with make_client(sim.url).stream_market(["SOL_USDC"]) as events:
                connection = await sim.next_connection()
                await connection.send(BOOK_TICKER)
                await connection.send(MALFORMED)
                await connection.send(MARK_PRICE)
                first = await next_event(events)
                second = await next_event(events)
    assert isinstance(first, BookTop)
    assert isinstance(second, MarkPrice)
    lines = [r.getMessage() for r in caplog.records if r.name == "exchanges.backpack"]
    assert len(lines) == 1
    assert "malformed" in lines[0] and "market" in lines[0]
    assert '"a":"x"' not in lines[0]  # the reason, not the payload


async def test_stream_market_when_server_closes_normally_then_iterator_ends():
    with trio.fail_after(5):
        async with open_ws_sim() as sim:
            async with make_client(sim.url).stream_market(["SOL_USDC"]) as events:
                connection = await sim.next_connection()
                await connection.send(BOOK_TICKER)
                await connection.close()
                received = [event async for event in events]
    assert [type(e) for e in received] == [BookTop]


async def test_stream_market_when_server_drops_abnormally_then_raises_transport_error():
    with trio.fail_after(5):
        async with open_ws_sim() as sim:
            with pytest.raises(VenueTransportError, match="1011"):
                async with make_client(sim.url).stream_market(["SOL_USDC"]) as events:
                    connection = await sim.next_connection()
                    await connection.drop(1011)
                    await next_event(events)


async def test_stream_market_when_connect_refused_then_raises_transport_error():
    with trio.fail_after(5):
        async with open_ws_sim() as sim:
            url = sim.url
        with pytest.raises(VenueTransportError):
            async with make_client(url).stream_market(["SOL_USDC"]):
                pass


async def test_stream_market_when_called_again_after_drop_then_reconnects_and_resubscribes():
    with trio.fail_after(5):
        async with open_ws_sim() as sim:
            client = make_client(sim.url)
            async with client.stream_market(["SOL_USDC"]) as events:
                first = await sim.next_connection()
                await first.drop(1011)
                with pytest.raises(VenueTransportError):
                    await next_event(events)
            async with client.stream_market(["SOL_USDC"]) as events:
                second = await sim.next_connection()
                subscribe = await second.next_message()
                await second.send(MARK_PRICE)
                event = await next_event(events)
    assert json.loads(subscribe)["params"] == ["bookTicker.SOL_USDC", "markPrice.SOL_USDC"]
    assert isinstance(event, MarkPrice)


async def test_rest_calls_when_asked_then_delegate_to_rest():
    client = make_client("ws://127.0.0.1:1")
    with trio.fail_after(5):
        assert client.venue == "backpack"
        assert await client.server_time_ns() == 1_700_000_000_000 * 1_000_000
        assert [i.symbol for i in await client.instruments()] == ["SOL_USDC_PERP"]


async def test_stream_market_when_no_symbols_then_value_error():
    with trio.fail_after(5), pytest.raises(ValueError, match="at least one symbol"):
        async with make_client("ws://127.0.0.1:1").stream_market([]):
            pass
