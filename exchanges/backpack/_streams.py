"""Backpack WebSocket market streams: raw frames to normalized types (venues.md §2.5).

Every Backpack frame is wrapped as `{"stream": "<name>", "data": {...}}`. Each stream has a
private wire Struct mirroring the venue's one-letter fields, decoded (wrapper included) by a
`msgspec.json.Decoder` built once at import; msgspec parses the decimal strings straight into
`Decimal`. The wire Struct is then copied into the public type with names and units spelled
out. Backpack's event clocks (`E`, `T`) are in **microseconds**; the next funding time `n` is
in milliseconds.

Error handling: anything unreadable (not JSON, a missing field, `"abc"` or `"NaN"` for a
price, the wrong event type for the stream) raises `MalformedMessageError` naming the stream.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Final, NoReturn

import msgspec

from .._local_book import Level, levels_finite
from .._models import BookTop
from .._stream_errors import MalformedMessageError

VENUE: Final = "backpack"
_NS_PER_US: Final = 1_000


# ---------------------------------------------------------------------------------------------
# Public types


class BackpackDepthUpdate(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """One `depth` event. Quantities are absolute. Apply it only when `first_update_id` is
    the previous event's `final_update_id + 1`; otherwise re-query REST `/depth` (§2.5)."""

    symbol: str
    first_update_id: int
    """`U`."""
    final_update_id: int
    """`u`."""
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    ts_event_us: int
    """`E`: when the venue emitted the event, µs."""
    ts_engine_us: int
    """`T`: when the matching engine changed the book, µs."""


class BackpackMarkPrice(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """One `markPrice` event."""

    symbol: str
    mark_price: Decimal
    """`p`."""
    funding_rate: Decimal
    """`f`: the *estimated* rate for the next funding, as a fraction."""
    index_price: Decimal
    """`i`."""
    next_funding_time_ms: int
    """`n`: venue clock, **ms** (unlike the µs event clocks)."""
    ts_event_us: int
    """`E`, µs."""


# ---------------------------------------------------------------------------------------------
# Wire types: the venue's field names, tagged by the event type `e`


class _BookTicker(msgspec.Struct, tag_field="e", tag="bookTicker"):
    # `u` (the update id) is a *string* here but an int in `depth`; BookTop does not carry it.
    s: str
    b: Decimal
    B: Decimal
    a: Decimal
    A: Decimal
    T: int


class _Depth(msgspec.Struct, tag_field="e", tag="depth"):
    E: int
    T: int
    s: str
    U: int
    u: int
    b: tuple[Level, ...]
    a: tuple[Level, ...]


class _MarkPrice(msgspec.Struct, tag_field="e", tag="markPrice"):
    E: int
    s: str
    p: Decimal
    f: Decimal
    i: Decimal
    n: int


class _BookTickerFrame(msgspec.Struct):
    stream: str
    data: _BookTicker


class _DepthFrame(msgspec.Struct):
    stream: str
    data: _Depth


class _MarkPriceFrame(msgspec.Struct):
    stream: str
    data: _MarkPrice


class _AnyFrame(msgspec.Struct):
    stream: str
    data: _BookTicker | _Depth | _MarkPrice


_BOOK_TICKER: Final = msgspec.json.Decoder(_BookTickerFrame)
_DEPTH: Final = msgspec.json.Decoder(_DepthFrame)
_MARK_PRICE: Final = msgspec.json.Decoder(_MarkPriceFrame)
_ANY: Final = msgspec.json.Decoder(_AnyFrame)


# ---------------------------------------------------------------------------------------------
# Private helpers


def _malformed(stream: str, reason: object, raw: bytes | str) -> NoReturn:
    raise MalformedMessageError(VENUE, stream, str(reason), raw)


def _book_top(wire: _BookTicker, ts_local_ns: int | None, raw: bytes | str) -> BookTop:
    # msgspec accepts "NaN" and "Infinity" as decimals; a book cannot hold them.
    if not (wire.b.is_finite() and wire.a.is_finite()
            and wire.B.is_finite() and wire.A.is_finite()):
        _malformed("bookTicker", "non-finite price or quantity", raw)
    return BookTop(venue=VENUE, symbol=wire.s, bid=wire.b, bid_qty=wire.B, ask=wire.a,
                   ask_qty=wire.A, ts_venue_ns=wire.T * _NS_PER_US,
                   ts_local_ns=time.perf_counter_ns() if ts_local_ns is None else ts_local_ns)


def _depth(wire: _Depth, raw: bytes | str) -> BackpackDepthUpdate:
    if not (levels_finite(wire.b) and levels_finite(wire.a)):
        _malformed("depth", "non-finite price or quantity", raw)
    return BackpackDepthUpdate(symbol=wire.s, first_update_id=wire.U, final_update_id=wire.u,
                               bids=wire.b, asks=wire.a, ts_event_us=wire.E,
                               ts_engine_us=wire.T)


def _mark(wire: _MarkPrice, raw: bytes | str) -> BackpackMarkPrice:
    if not (wire.p.is_finite() and wire.f.is_finite() and wire.i.is_finite()):
        _malformed("markPrice", "non-finite price or funding rate", raw)
    return BackpackMarkPrice(symbol=wire.s, mark_price=wire.p, funding_rate=wire.f,
                             index_price=wire.i, next_funding_time_ms=wire.n,
                             ts_event_us=wire.E)


# ---------------------------------------------------------------------------------------------
# Public decoders


def decode_book_ticker(raw: bytes | str, *, ts_local_ns: int | None = None) -> BookTop:
    """A `bookTicker.<symbol>` frame. `ts_venue_ns` is the engine time `T` (µs × 1000).

    Pass `ts_local_ns` (perf_counter_ns, as the paper venue does) taken when the frame arrived;
    without it the decoder stamps its own, a little later.
    """
    try:
        wire = _BOOK_TICKER.decode(raw).data
    except msgspec.DecodeError as exc:
        _malformed("bookTicker", exc, raw)
    return _book_top(wire, ts_local_ns, raw)


def decode_depth(raw: bytes | str) -> BackpackDepthUpdate:
    """A `depth[.<speed>].<symbol>` frame."""
    try:
        wire = _DEPTH.decode(raw).data
    except msgspec.DecodeError as exc:
        _malformed("depth", exc, raw)
    return _depth(wire, raw)


def decode_mark_price(raw: bytes | str) -> BackpackMarkPrice:
    """A `markPrice.<symbol>` frame."""
    try:
        wire = _MARK_PRICE.decode(raw).data
    except msgspec.DecodeError as exc:
        _malformed("markPrice", exc, raw)
    return _mark(wire, raw)


def decode_market_message(
    raw: bytes | str, *, ts_local_ns: int | None = None,
) -> BookTop | BackpackDepthUpdate | BackpackMarkPrice:
    """A frame from any of the three streams above, told apart by `data.e`, for a connection
    subscribed to several; any other event type is malformed here."""
    try:
        wire = _ANY.decode(raw).data
    except msgspec.DecodeError as exc:
        _malformed("market", exc, raw)
    if isinstance(wire, _BookTicker):
        return _book_top(wire, ts_local_ns, raw)
    if isinstance(wire, _Depth):
        return _depth(wire, raw)
    return _mark(wire, raw)
