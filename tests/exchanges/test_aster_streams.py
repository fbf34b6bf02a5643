"""Aster futures WebSocket market-stream decoders (venues.md §1.7)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from exchanges import BookTop, MalformedMessageError
from exchanges.aster import (
    AsterDepthUpdate,
    AsterMarkPrice,
    decode_book_ticker,
    decode_combined,
    decode_depth_update,
    decode_mark_price,
)

# The documented samples, verbatim.
BOOK_TICKER = (
    '{"e":"bookTicker","u":400900217,"E":1568014460893,"T":1568014460891,"s":"BNBUSDT",'
    '"b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}'
)
DEPTH_UPDATE = (
    '{"e":"depthUpdate","E":1571889248277,"T":1571889248276,"s":"BTCUSDT","U":390497796,'
    '"u":390497878,"pu":390497794,"b":[["7403.89","0.002"]],"a":[["7405.96","3.340"]]}'
)
MARK_PRICE = (
    '{"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT","p":"11794.15000000",'
    '"i":"11784.62659091","P":"11784.25641265","r":"0.00038167","T":1562306400000}'
)


def d(text: str) -> Decimal:
    return Decimal(text)


def depth_with_levels(count: int) -> bytes:
    bids = [[f"{7403.89 - i:.2f}", f"{0.002 + i:.3f}"] for i in range(count)]
    asks = [[f"{7405.96 + i:.2f}", f"{3.340 + i:.3f}"] for i in range(count)]
    message = json.loads(DEPTH_UPDATE) | {"b": bids, "a": asks}
    return json.dumps(message, separators=(",", ":")).encode()


def test_decode_book_ticker_when_doc_sample_then_every_field_normalized():
    top = decode_book_ticker(BOOK_TICKER.encode(), ts_local_ns=42)

    assert top == BookTop(venue="aster", symbol="BNBUSDT", bid=d("25.35190000"),
                          bid_qty=d("31.21000000"), ask=d("25.36520000"),
                          ask_qty=d("40.66000000"), ts_venue_ns=1568014460891_000_000,
                          ts_local_ns=42)


def test_decode_book_ticker_when_str_and_no_local_stamp_then_stamps_receipt():
    top = decode_book_ticker(BOOK_TICKER)

    assert top.bid == d("25.35190000")
    assert top.ts_local_ns > 0


def test_decode_depth_update_when_doc_sample_then_every_field_normalized():
    update = decode_depth_update(DEPTH_UPDATE.encode())

    assert update == AsterDepthUpdate(
        symbol="BTCUSDT", first_update_id=390497796, final_update_id=390497878,
        prev_final_update_id=390497794, bids=((d("7403.89"), d("0.002")),),
        asks=((d("7405.96"), d("3.340")),), ts_event_ms=1571889248277,
        ts_transaction_ms=1571889248276)


def test_decode_depth_update_when_ten_levels_then_keeps_order_and_exact_decimals():
    update = decode_depth_update(depth_with_levels(10))

    assert len(update.bids) == len(update.asks) == 10
    assert update.bids[0] == (d("7403.89"), d("0.002"))
    assert update.bids[9] == (d("7394.89"), d("9.002"))
    assert update.asks[9] == (d("7414.96"), d("12.340"))


def test_decode_mark_price_when_doc_sample_then_every_field_normalized():
    mark = decode_mark_price(MARK_PRICE.encode())

    assert mark == AsterMarkPrice(symbol="BTCUSDT", mark_price=d("11794.15000000"),
                                  funding_rate=d("0.00038167"),
                                  next_funding_time_ms=1562306400000, ts_event_ms=1562305380000)


@pytest.mark.parametrize(("stream", "data", "expected_type"), [
    ("bnbusdt@bookTicker", BOOK_TICKER, BookTop),
    ("btcusdt@depth5@100ms", DEPTH_UPDATE, AsterDepthUpdate),
    ("btcusdt@markPrice", MARK_PRICE, AsterMarkPrice),
])
def test_decode_combined_when_wrapped_then_dispatches_on_event_type(
        stream: str, data: str, expected_type: type):
    raw = f'{{"stream":"{stream}","data":{data}}}'

    assert isinstance(decode_combined(raw), expected_type)


def test_decode_combined_when_wrapped_book_ticker_then_same_as_raw_stream():
    raw = f'{{"stream":"bnbusdt@bookTicker","data":{BOOK_TICKER}}}'

    assert decode_combined(raw, ts_local_ns=7) == decode_book_ticker(BOOK_TICKER, ts_local_ns=7)


@pytest.mark.parametrize(("raw", "reason"), [
    (BOOK_TICKER[:-1], "truncated"),
    ("not json", "malformed"),
    (BOOK_TICKER.replace('"s":"BNBUSDT",', ""), "`s`"),
    (BOOK_TICKER.replace('"25.35190000"', '"abc"'), "$.b"),
    (BOOK_TICKER.replace('"25.36520000"', '"NaN"'), "non-finite"),
    (BOOK_TICKER.replace('"bookTicker"', '"aggTrade"'), "$.e"),
])
def test_decode_book_ticker_when_malformed_then_raises_naming_stream(raw: str, reason: str):
    with pytest.raises(MalformedMessageError) as caught:
        decode_book_ticker(raw)

    assert caught.value.venue == "aster"
    assert caught.value.stream == "bookTicker"
    assert "aster bookTicker" in str(caught.value)
    assert reason in str(caught.value).lower() or reason in str(caught.value)


def test_decode_depth_update_when_price_not_numeric_then_raises_naming_stream():
    raw = DEPTH_UPDATE.replace('"7405.96"', '"abc"')

    with pytest.raises(MalformedMessageError, match=r"aster depthUpdate.*\$\.a\[0\]\[0\]"):
        decode_depth_update(raw)


def test_decode_depth_update_when_missing_field_then_raises_naming_stream():
    with pytest.raises(MalformedMessageError, match=r"aster depthUpdate.*`pu`"):
        decode_depth_update(DEPTH_UPDATE.replace('"pu":390497794,', ""))


def test_decode_mark_price_when_bad_json_then_raises_naming_stream():
    with pytest.raises(MalformedMessageError, match="aster markPriceUpdate"):
        decode_mark_price(b"\x00garbage")


def test_decode_combined_when_unknown_event_then_raises():
    raw = '{"stream":"btcusdt@miniTicker","data":{"e":"24hrMiniTicker","s":"BTCUSDT"}}'

    with pytest.raises(MalformedMessageError, match="aster combined"):
        decode_combined(raw)


def test_malformed_message_error_when_payload_long_then_quotes_only_an_excerpt():
    raw = depth_with_levels(200).replace(b'"pu"', b'"xx"')

    with pytest.raises(MalformedMessageError) as caught:
        decode_depth_update(raw)

    assert len(caught.value.excerpt) < 230
    assert f"({len(raw)} chars)" in str(caught.value)
    assert isinstance(caught.value, ValueError)
