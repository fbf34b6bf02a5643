"""`decode`: WebSocket market-data frames decoded into normalized types per second.

`aster_book_ticker_per_s` runs `exchanges.aster.decode_book_ticker` on the documented Aster
`bookTicker` sample (venues.md §1.7): JSON parse, four decimal strings to `Decimal`, the
finite check and the `BookTop`. `backpack_depth_per_s` runs `exchanges.backpack.decode_depth`
on a wrapped Backpack `depth` frame (§2.5) with 10 levels a side (40 decimals).

Floors, on the same bytes in the same run: `stdlib_json_*` is `json.loads` alone (dicts of
strings, no Decimal), `msgspec_raw_*` is `msgspec.json.decode` into untyped Python objects.
Breakdown: `*_wire_only_per_s` is the decoder's private msgspec Decoder into its wire Struct
(Decimals included), so the rest of the full figure is checks plus building the public type.
Each figure times N decodes of one message with `perf_counter_ns` after a warm-up; rounds
alternate the decoders so machine noise falls on all alike, and rates are medians over rounds.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from typing import Any, Final

import msgspec

from exchanges.aster import decode_book_ticker
from exchanges.aster._streams import _BOOK_TICKER
from exchanges.backpack import decode_depth
from exchanges.backpack._streams import _DEPTH

ROUNDS: Final = 3
WARMUP: Final = 2_000
BOOK_TICKER_MESSAGES: Final = 200_000
DEPTH_MESSAGES: Final = 50_000
DEPTH_LEVELS: Final = 10
TARGET_ASTER_BOOK_TICKER_PER_S: Final = 300_000
TARGET_BACKPACK_DEPTH_PER_S: Final = 100_000

ASTER_BOOK_TICKER: Final = (
    b'{"e":"bookTicker","u":400900217,"E":1568014460893,"T":1568014460891,"s":"BNBUSDT",'
    b'"b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}'
)


def _backpack_depth_frame(levels: int) -> bytes:
    bids = [[f"{18.67 - i / 100:.2f}", f"{0.832 + i:.3f}"] for i in range(levels)]
    asks = [[f"{18.70 + i / 100:.2f}", f"{0.5 + i:.3f}"] for i in range(levels)]
    data = {"e": "depth", "E": 1694687965941000, "s": "SOL_USDC", "a": asks, "b": bids,
            "U": 94978271, "u": 94978271 + levels, "T": 1694687965940999}
    return json.dumps({"stream": "depth.SOL_USDC", "data": data},
                      separators=(",", ":")).encode()


def _rate(decode: Callable[[bytes], object], raw: bytes, count: int) -> float:
    for _ in range(WARMUP):
        decode(raw)
    start_ns = time.perf_counter_ns()
    for _ in range(count):
        decode(raw)
    return count * 1e9 / (time.perf_counter_ns() - start_ns)


def _medians(cases: dict[str, tuple[Callable[[bytes], object], bytes, int]]) -> dict[str, int]:
    rates: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(ROUNDS):
        for name, (decode, raw, count) in cases.items():
            rates[name].append(_rate(decode, raw, count))
    return {name: round(statistics.median(values)) for name, values in rates.items()}


async def run_decode() -> dict[str, Any]:
    """Decoding is synchronous CPU work; the async signature fits the bench runner."""
    depth = _backpack_depth_frame(DEPTH_LEVELS)
    assert len(decode_depth(depth).bids) == DEPTH_LEVELS
    ticker = (ASTER_BOOK_TICKER, BOOK_TICKER_MESSAGES)
    book = (depth, DEPTH_MESSAGES)
    result: dict[str, Any] = _medians({
        "aster_book_ticker_per_s": (decode_book_ticker, *ticker),
        "aster_book_ticker_wire_only_per_s": (_BOOK_TICKER.decode, *ticker),
        "stdlib_json_book_ticker_per_s": (json.loads, *ticker),
        "msgspec_raw_book_ticker_per_s": (msgspec.json.decode, *ticker),
        "backpack_depth_per_s": (decode_depth, *book),
        "backpack_depth_wire_only_per_s": (_DEPTH.decode, *book),
        "stdlib_json_depth_per_s": (json.loads, *book),
        "msgspec_raw_depth_per_s": (msgspec.json.decode, *book),
    })
    result |= {
        "depth_levels_per_side": DEPTH_LEVELS,
        "book_ticker_bytes": len(ASTER_BOOK_TICKER),
        "depth_bytes": len(depth),
        "target_aster_book_ticker_per_s": TARGET_ASTER_BOOK_TICKER_PER_S,
        "target_backpack_depth_per_s": TARGET_BACKPACK_DEPTH_PER_S,
        "aster_book_ticker_meets_target":
            result["aster_book_ticker_per_s"] >= TARGET_ASTER_BOOK_TICKER_PER_S,
        "backpack_depth_meets_target":
            result["backpack_depth_per_s"] >= TARGET_BACKPACK_DEPTH_PER_S,
    }
    return result
