"""Aster futures WebSocket market streams: raw frames to normalized types (venues.md §1.7).

Each stream has a private wire Struct that mirrors the venue's one-letter fields and is decoded
by a `msgspec.json.Decoder` built once at import. msgspec parses the venue's decimal strings
straight into `Decimal`, so no float ever touches a price. The wire Struct is then copied into
the public type with names and units spelled out (`ts_venue_ns`, `next_funding_time_ms`).

Raw streams (`/ws/<name>`) send the bare event; combined streams (`/stream?streams=...`) wrap it
as `{"stream": "<name>", "data": {...}}` and go through `decode_combined`, which dispatches on
the event type `e`.

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

VENUE: Final = "aster"
_NS_PER_MS: Final = 1_000_000


# ---------------------------------------------------------------------------------------------
# Public types


class AsterDepthUpdate(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """One `depthUpdate` event. Quantities are absolute; apply it when `prev_final_update_id`
    equals the previous event's `final_update_id`, else resync from REST (venues.md §1.7)."""

    symbol: str
    first_update_id: int
    """`U`."""
    final_update_id: int
    """`u`."""
    prev_final_update_id: int
    """`pu`: the previous event's `u`."""
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    ts_event_ms: int
    """`E`: when the venue emitted the event."""
    ts_transaction_ms: int
    """`T`: when the matching engine changed the book."""


class AsterMarkPrice(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """One `markPriceUpdate` event (every 3 s, or 1 s on `@markPrice@1s`)."""

    symbol: str
    mark_price: Decimal
    funding_rate: Decimal
    """`r`: the rate for the next funding, as a fraction (0.0001 = 1 bp)."""
    next_funding_time_ms: int
    """`T`: venue clock, ms."""
    ts_event_ms: int


# ---------------------------------------------------------------------------------------------
# Wire types: the venue's field names, tagged by the event type `e`


class _BookTicker(msgspec.Struct, tag_field="e", tag="bookTicker"):
    s: str
    b: Decimal
    B: Decimal
    a: Decimal
    A: Decimal
    T: int


class _DepthUpdate(msgspec.Struct, tag_field="e", tag="depthUpdate"):
    E: int
    T: int
    s: str
    U: int
    u: int
    pu: int
    b: tuple[Level, ...]
    a: tuple[Level, ...]


class _MarkPrice(msgspec.Struct, tag_field="e", tag="markPriceUpdate"):
    E: int
    s: str
    p: Decimal
    r: Decimal
    T: int


class _Combined(msgspec.Struct):
    stream: str
    data: _BookTicker | _DepthUpdate | _MarkPrice


_BOOK_TICKER: Final = msgspec.json.Decoder(_BookTicker)
_DEPTH_UPDATE: Final = msgspec.json.Decoder(_DepthUpdate)
_MARK_PRICE: Final = msgspec.json.Decoder(_MarkPrice)
_COMBINED: Final = msgspec.json.Decoder(_Combined)


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
                   ask_qty=wire.A, ts_venue_ns=wire.T * _NS_PER_MS,
                   ts_local_ns=time.perf_counter_ns() if ts_local_ns is None else ts_local_ns)


def _depth(wire: _DepthUpdate, raw: bytes | str) -> AsterDepthUpdate:
    if not (levels_finite(wire.b) and levels_finite(wire.a)):
        _malformed("depthUpdate", "non-finite price or quantity", raw)
    return AsterDepthUpdate(symbol=wire.s, first_update_id=wire.U, final_update_id=wire.u,
                            prev_final_update_id=wire.pu, bids=wire.b, asks=wire.a,
                            ts_event_ms=wire.E, ts_transaction_ms=wire.T)


def _mark(wire: _MarkPrice, raw: bytes | str) -> AsterMarkPrice:
    if not (wire.p.is_finite() and wire.r.is_finite()):
        _malformed("markPriceUpdate", "non-finite mark price or funding rate", raw)
    return AsterMarkPrice(symbol=wire.s, mark_price=wire.p, funding_rate=wire.r,
                          next_funding_time_ms=wire.T, ts_event_ms=wire.E)


# ---------------------------------------------------------------------------------------------
# Public decoders


def decode_book_ticker(raw: bytes | str, *, ts_local_ns: int | None = None) -> BookTop:
    """A raw `<symbol>@bookTicker` event. `ts_venue_ns` is the transaction time `T`.

    Pass `ts_local_ns` (perf_counter_ns, as the paper venue does) taken when the frame arrived;
    without it the decoder stamps its own, a little later.
    """
    try:
        wire = _BOOK_TICKER.decode(raw)
    except msgspec.DecodeError as exc:
        _malformed("bookTicker", exc, raw)
    return _book_top(wire, ts_local_ns, raw)


def decode_depth_update(raw: bytes | str) -> AsterDepthUpdate:
    """A raw `<symbol>@depth[N][@speed]` event."""
    try:
        wire = _DEPTH_UPDATE.decode(raw)
    except msgspec.DecodeError as exc:
        _malformed("depthUpdate", exc, raw)
    return _depth(wire, raw)


def decode_mark_price(raw: bytes | str) -> AsterMarkPrice:
    """A raw `<symbol>@markPrice[@1s]` event."""
    try:
        wire = _MARK_PRICE.decode(raw)
    except msgspec.DecodeError as exc:
        _malformed("markPriceUpdate", exc, raw)
    return _mark(wire, raw)


def decode_combined(raw: bytes | str, *,
                    ts_local_ns: int | None = None) -> BookTop | AsterDepthUpdate | AsterMarkPrice:
    """A combined-stream frame `{"stream": ..., "data": {...}}` carrying any of the three events
    above, told apart by `data.e`; any other event type is malformed here."""
    try:
        wire = _COMBINED.decode(raw).data
    except msgspec.DecodeError as exc:
        _malformed("combined", exc, raw)
    if isinstance(wire, _BookTicker):
        return _book_top(wire, ts_local_ns, raw)
    if isinstance(wire, _DepthUpdate):
        return _depth(wire, raw)
    return _mark(wire, raw)
