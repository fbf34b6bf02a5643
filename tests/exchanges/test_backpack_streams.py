"""Backpack WebSocket market-stream decoders (venues.md §2.5)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from exchanges import BookTop, MalformedMessageError
from exchanges.backpack import (
    BackpackDepthUpdate,
    BackpackMarkPrice,
    decode_book_ticker,
    decode_depth,
    decode_mark_price,
    decode_market_message,
)

# The documented samples (the `data` part), verbatim; every frame arrives wrapped.
BOOK_TICKER = (
    '{"e":"bookTicker","E":1694687965941000,"s":"SOL_USDC","a":"18.70","A":"1.000",'
    '"b":"18.67","B":"2.000","u":"111063070525358080","T":1694687965940999}'
)
DEPTH = (
    '{"e":"depth","E":1694687965941000,"s":"SOL_USDC","a":[["18.70","0.000"]],'
    '"b":[["18.67","0.832"]],"U":94978271,"u":94978271,"T":1694687965940999}'
)
MARK_PRICE = (
    '{"e":"markPrice","E":1694687965941000,"s":"SOL_USDC","p":"18.70","f":"1.70","i":"19.70",'
    '"n":1694687965941,"T":1694687965940999}'
)


def wrap(stream: str, data: str) -> bytes:
    return f'{{"stream":"{stream}","data":{data}}}'.encode()


def d(text: str) -> Decimal:
    return Decimal(text)


def depth_with_levels(count: int) -> bytes:
    bids = [[f"{18.67 - i / 100:.2f}", f"{0.832 + i:.3f}"] for i in range(count)]
    asks = [[f"{18.70 + i / 100:.2f}", f"{0.5 + i:.3f}"] for i in range(count)]
    data = json.loads(DEPTH) | {"b": bids, "a": asks}
    return wrap("depth.SOL_USDC", json.dumps(data, separators=(",", ":")))


def test_decode_book_ticker_when_doc_sample_then_every_field_normalized():
    top = decode_book_ticker(wrap("bookTicker.SOL_USDC", BOOK_TICKER), ts_local_ns=42)

    assert top == BookTop(venue="backpack", symbol="SOL_USDC", bid=d("18.67"), bid_qty=d("2.000"),
                          ask=d("18.70"), ask_qty=d("1.000"),
                          ts_venue_ns=1694687965940999_000, ts_local_ns=42)


def test_decode_book_ticker_when_str_and_no_local_stamp_then_stamps_receipt():
    top = decode_book_ticker(wrap("bookTicker.SOL_USDC", BOOK_TICKER).decode())

    assert top.ask == d("18.70")
    assert top.ts_local_ns > 0


def test_decode_depth_when_doc_sample_then_every_field_normalized():
    update = decode_depth(wrap("depth.SOL_USDC", DEPTH))

    assert update == BackpackDepthUpdate(
        symbol="SOL_USDC", first_update_id=94978271, final_update_id=94978271,
        bids=((d("18.67"), d("0.832")),), asks=((d("18.70"), d("0.000")),),
        ts_event_us=1694687965941000, ts_engine_us=1694687965940999)


def test_decode_depth_when_ten_levels_then_keeps_order_and_exact_decimals():
    update = decode_depth(depth_with_levels(10))

    assert len(update.bids) == len(update.asks) == 10
    assert update.bids[0] == (d("18.67"), d("0.832"))
    assert update.bids[9] == (d("18.58"), d("9.832"))
    assert update.asks[9] == (d("18.79"), d("9.500"))


def test_decode_mark_price_when_doc_sample_then_every_field_normalized():
    mark = decode_mark_price(wrap("markPrice.SOL_USDC", MARK_PRICE))

    assert mark == BackpackMarkPrice(symbol="SOL_USDC", mark_price=d("18.70"),
                                     funding_rate=d("1.70"), index_price=d("19.70"),
                                     next_funding_time_ms=1694687965941,
                                     ts_event_us=1694687965941000)


@pytest.mark.parametrize(("stream", "data", "expected_type"), [
    ("bookTicker.SOL_USDC", BOOK_TICKER, BookTop),
    ("depth.SOL_USDC", DEPTH, BackpackDepthUpdate),
    ("markPrice.SOL_USDC", MARK_PRICE, BackpackMarkPrice),
])
def test_decode_market_message_when_any_stream_then_dispatches_on_event_type(
        stream: str, data: str, expected_type: type):
    assert isinstance(decode_market_message(wrap(stream, data)), expected_type)


@pytest.mark.parametrize(("raw", "reason"), [
    (wrap("depth.SOL_USDC", DEPTH)[:-1], "truncated"),
    (b"not json", "malformed"),
    (DEPTH.encode(), "`stream`"),
    (wrap("depth.SOL_USDC", DEPTH.replace('"U":94978271,', "")), "`U`"),
    (wrap("depth.SOL_USDC", DEPTH.replace('"18.67"', '"abc"')), "$.data.b[0][0]"),
    (wrap("depth.SOL_USDC", DEPTH.replace('"0.832"', '"Infinity"')), "non-finite"),
    (wrap("bookTicker.SOL_USDC", BOOK_TICKER), "$.data.e"),
])
def test_decode_depth_when_malformed_then_raises_naming_stream(raw: bytes, reason: str):
    with pytest.raises(MalformedMessageError) as caught:
        decode_depth(raw)

    assert caught.value.venue == "backpack"
    assert caught.value.stream == "depth"
    assert "backpack depth" in str(caught.value)
    assert reason in str(caught.value).lower() or reason in str(caught.value)


def test_decode_book_ticker_when_price_not_numeric_then_raises_naming_stream():
    raw = wrap("bookTicker.SOL_USDC", BOOK_TICKER.replace('"18.70"', '"abc"'))

    with pytest.raises(MalformedMessageError, match=r"backpack bookTicker.*\$\.data\.a"):
        decode_book_ticker(raw)


def test_decode_mark_price_when_missing_field_then_raises_naming_stream():
    raw = wrap("markPrice.SOL_USDC", MARK_PRICE.replace('"n":1694687965941,', ""))

    with pytest.raises(MalformedMessageError, match=r"backpack markPrice.*`n`"):
        decode_mark_price(raw)


def test_decode_market_message_when_unknown_event_then_raises():
    raw = wrap("trade.SOL_USDC", '{"e":"trade","s":"SOL_USDC"}')

    with pytest.raises(MalformedMessageError, match="backpack market"):
        decode_market_message(raw)


def test_malformed_message_error_when_payload_long_then_quotes_only_an_excerpt():
    raw = depth_with_levels(200).replace(b'"U"', b'"X"')

    with pytest.raises(MalformedMessageError) as caught:
        decode_depth(raw)

    assert len(caught.value.excerpt) < 230
    assert f"({len(raw)} chars)" in str(caught.value)
