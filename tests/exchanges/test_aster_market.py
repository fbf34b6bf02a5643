"""`AsterMarketData` against a real loopback WebSocket server (venues.md §1.7)."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
import trio

from exchanges import BookTop, Instrument, MarketEvent, MarkPrice, VenueTransportError
from exchanges.aster import AsterHmacAuth, AsterMarketData, AsterRest

from .aster_sim import AsterSimulator
from .ws_sim import open_ws_sim

T0_MS = 1_700_000_000_000
BTC = Instrument(venue="aster", symbol="BTCUSDT", base="BTC", quote="USDT",
                 tick_size=Decimal("0.1"), step_size=Decimal("0.001"), min_qty=Decimal("0.001"),
                 min_notional=Decimal(5))

# The documented samples (§1.7), wrapped as combined-stream frames.
BOOK_TICKER = (
    '{"stream":"bnbusdt@bookTicker","data":{"e":"bookTicker","u":400900217,"E":1568014460893,'
    '"T":1568014460891,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000",'
    '"A":"40.66000000"}}'
)
MARK_PRICE = (
    '{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":1562305380000,'
    '"s":"BTCUSDT","p":"11794.15000000","i":"11784.62659091","P":"11784.25641265",'
    '"r":"0.00038167","T":1562306400000}}'
)
MALFORMED = '{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","s":"BTCUSDT","b":"abc"}}'


def make_client(ws_url: str) -> AsterMarketData:
    api_key, secret = os.urandom(32).hex(), os.urandom(32).hex()
    sim = AsterSimulator(api_key=api_key, secret=secret, instruments=[BTC],
                         clock_ms=lambda: T0_MS)
    rest = AsterRest(AsterHmacAuth(api_key, secret), base_url="https://fapi.test",
                     transport=httpx.MockTransport(sim.handle))
    return AsterMarketData(rest, ws_url=ws_url)


async def next_event(events: AsyncIterator[MarketEvent]) -> MarketEvent:
    return await events.__anext__()


async def test_stream_market_when_two_symbols_then_one_combined_url_as_documented():
    with trio.fail_after(5):
        async with open_ws_sim() as sim:
            client = make_client(sim.url)
            async with client.stream_market(["BTCUSDT", "ETHUSDT"]):
                connection = await sim.next_connection()
            assert connection.path == (
                "/stream?streams=btcusdt@bookTicker/btcusdt@markPrice@1s"
                "/ethusdt@bookTicker/ethusdt@markPrice@1s"
            )
            assert connection.received == []  # combined streams need no SUBSCRIBE


async def test_stream_market_when_book_ticker_frame_then_yields_book_top():
    with trio.fail_after(5):
        async with open_ws_sim() as sim:
            async with make_client(sim.url).stream_market(["BNBUSDT"]) as events:
                connection = await sim.next_connection()
                await connection.send(BOOK_TICKER)
                event = await next_event(events)
    assert isinstance(event, BookTop)
    assert (event.venue, event.symbol) == ("aster", "BNBUSDT")
    assert (event.bid, event.bid_qty) == (Decimal("25.35190000"), Decimal("31.21000000"))
    assert (event.ask, event.ask_qty) == (Decimal("25.36520000"), Decimal("40.66000000"))
    assert event.ts_venue_ns == 1568014460891 * 1_000_000
    assert event.ts_local_ns > 0


async def test_stream_market_when_mark_price_frame_then_yields_mark_price():
    with trio.fail_after(5):
        async with open_ws_sim() as sim:
            async with make_client(sim.url).stream_market(["BTCUSDT"]) as events:
                connection = await sim.next_connection()
                await connection.send(MARK_PRICE)
                event = await next_event(events)
    assert event == MarkPrice(
        venue="aster", symbol="BTCUSDT", mark_price=Decimal("11794.15000000"),
        funding_rate=Decimal("0.00038167"), next_funding_ns=1562306400000 * 1_000_000,
        ts_venue_ns=1562305380000 * 1_000_000, ts_local_ns=event.ts_local_ns,
    )


async def test_stream_market_when_malformed_frame_between_good_ones_then_logged_and_skipped(
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.WARNING, logger="exchanges.aster")
    with trio.fail_after(5):
        async with open_ws_sim() as sim:
            async with make_client(sim.url).stream_market(["BTCUSDT"]) as events:
                connection = await sim.next_connection()
                await connection.send(MARK_PRICE)
                await connection.send(MALFORMED)
                await connection.send(BOOK_TICKER)
                first = await next_event(events)
                second = await next_event(events)
    assert isinstance(first, MarkPrice)
    assert isinstance(second, BookTop)
    lines = [r.getMessage() for r in caplog.records if r.name == "exchanges.aster"]
    assert len(lines) == 1
    assert "malformed" in lines[0] and "combined" in lines[0]
    assert "abc" not in lines[0]  # the reason, not the payload


async def test_stream_market_when_server_closes_normally_then_iterator_ends():
    with trio.fail_after(5):
        async with open_ws_sim() as sim:
            async with make_client(sim.url).stream_market(["BTCUSDT"]) as events:
                connection = await sim.next_connection()
                await connection.send(MARK_PRICE)
                await connection.close()
                received = [event async for event in events]
    assert [type(e) for e in received] == [MarkPrice]


async def test_stream_market_when_server_drops_abnormally_then_raises_transport_error():
    with trio.fail_after(5):
        async with open_ws_sim() as sim:
            with pytest.raises(VenueTransportError, match="1011"):
                async with make_client(sim.url).stream_market(["BTCUSDT"]) as events:
                    connection = await sim.next_connection()
                    await connection.drop(1011)
                    await next_event(events)


async def test_stream_market_when_connect_refused_then_raises_transport_error():
    with trio.fail_after(5):
        async with open_ws_sim() as sim:
            url = sim.url
        # The server is gone: nothing listens on its port any more.
        with pytest.raises(VenueTransportError):
            async with make_client(url).stream_market(["BTCUSDT"]):
                pass


async def test_stream_market_when_called_again_after_drop_then_reconnects():
    with trio.fail_after(5):
        async with open_ws_sim() as sim:
            client = make_client(sim.url)
            async with client.stream_market(["BTCUSDT"]) as events:
                first = await sim.next_connection()
                await first.close()
                assert [event async for event in events] == []
            async with client.stream_market(["BTCUSDT"]) as events:
                second = await sim.next_connection()
                await second.send(BOOK_TICKER)
                event = await next_event(events)
    assert second is not first
    assert isinstance(event, BookTop)


async def test_stream_market_when_context_exits_then_server_sees_close():
    with trio.fail_after(5):
        async with open_ws_sim() as sim:
            async with make_client(sim.url).stream_market(["BTCUSDT"]):
                connection = await sim.next_connection()
            await connection.closed.wait()


async def test_rest_calls_when_asked_then_delegate_to_rest():
    client = make_client("ws://127.0.0.1:1")
    with trio.fail_after(5):
        assert client.venue == "aster"
        assert await client.server_time_ns() == T0_MS * 1_000_000
        assert [i.symbol for i in await client.instruments()] == ["BTCUSDT"]


async def test_stream_market_when_no_symbols_then_value_error():
    with trio.fail_after(5), pytest.raises(ValueError, match="at least one symbol"):
        async with make_client("ws://127.0.0.1:1").stream_market([]):
            pass
