"""Aster `exchangeInfo` to `Instrument`s (venues.md §1.5): futures `/fapi/v1/exchangeInfo`, spot
`/api/v1/exchangeInfo`.

Sizes come from the symbol filters only: `PRICE_FILTER.tickSize`, `LOT_SIZE.stepSize` and
`.minQty`, `MIN_NOTIONAL`. The doc itself warns that `pricePrecision` / `quantityPrecision` are
not tick or step sizes (a symbol with tick 0.5 has pricePrecision 1), so they are never read.

`MIN_NOTIONAL` names its threshold `notional` on futures and `minNotional` on spot (the spot
doc's example); each kind reads its own name and falls back to the other.

MARKET orders are checked against `MARKET_LOT_SIZE`, not `LOT_SIZE` (§1.5), and `Instrument`
has no room for it: `market_lot_sizes_from_exchange_info` returns it per symbol.

Error handling: one bad symbol (missing filter, zero tick, undecodable entry) is skipped with a
warning naming it, so a venue glitch in one listing cannot take the adapter down. A document
that is not an exchangeInfo at all raises `MalformedMessageError`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal
from typing import Final, Literal, NoReturn

import msgspec

from .._models import Instrument
from .._stream_errors import MalformedMessageError

VENUE: Final = "aster"
TRADING: Final = "TRADING"
"""The only status we list; the doc also shows PENDING_TRADING, SETTLING, CLOSE and others."""

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Public types


class AsterLotSize(msgspec.Struct, frozen=True, kw_only=True):
    """A `LOT_SIZE`-shaped filter; here, `MARKET_LOT_SIZE`, which MARKET orders must satisfy."""

    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal


# ---------------------------------------------------------------------------------------------
# Wire types: symbols are kept raw so one bad entry fails only itself


class _ExchangeInfo(msgspec.Struct):
    symbols: list[msgspec.Raw]


class _Filter(msgspec.Struct):
    """Every filter type in one shape; only the fields we read are declared."""

    filterType: str
    tickSize: Decimal | None = None
    stepSize: Decimal | None = None
    minQty: Decimal | None = None
    maxQty: Decimal | None = None
    notional: Decimal | None = None
    minNotional: Decimal | None = None


class _Symbol(msgspec.Struct):
    symbol: str
    status: str
    baseAsset: str
    quoteAsset: str
    filters: list[_Filter]


_EXCHANGE_INFO: Final = msgspec.json.Decoder(_ExchangeInfo)
_SYMBOL: Final = msgspec.json.Decoder(_Symbol)


# ---------------------------------------------------------------------------------------------
# Private helpers


class _Skip(Exception):
    """Why one symbol is left out; caught per symbol and logged."""


def _malformed(reason: object, raw: bytes | str) -> NoReturn:
    raise MalformedMessageError(VENUE, "exchangeInfo", str(reason), raw)


def _trading_symbols(raw: bytes | str) -> Iterator[_Symbol]:
    try:
        info = _EXCHANGE_INFO.decode(raw)
    except msgspec.DecodeError as exc:
        _malformed(exc, raw)
    for entry in info.symbols:
        try:
            symbol = _SYMBOL.decode(entry)
        except msgspec.DecodeError as exc:
            log.warning("aster exchangeInfo: skipping undecodable symbol entry (%s): %.200s",
                        exc, bytes(entry).decode("utf-8", "replace"))
            continue
        if symbol.status == TRADING:
            yield symbol


def _filter(symbol: _Symbol, filter_type: str) -> _Filter:
    for item in symbol.filters:
        if item.filterType == filter_type:
            return item
    raise _Skip(f"no {filter_type} filter")


def _field(item: _Filter, name: str, value: Decimal | None, *, positive: bool) -> Decimal:
    if value is None:
        raise _Skip(f"{item.filterType}.{name} missing")
    if not value.is_finite() or value < 0 or (positive and value == 0):
        raise _Skip(f"{item.filterType}.{name} is {value}")
    return value


def _instrument(symbol: _Symbol, kind: Literal["perp", "spot"]) -> Instrument:
    price = _filter(symbol, "PRICE_FILTER")
    lot = _filter(symbol, "LOT_SIZE")
    notional = _filter(symbol, "MIN_NOTIONAL")
    documented, other = ((notional.notional, notional.minNotional) if kind == "perp"
                         else (notional.minNotional, notional.notional))
    return Instrument(
        venue=VENUE, symbol=symbol.symbol, base=symbol.baseAsset, quote=symbol.quoteAsset,
        tick_size=_field(price, "tickSize", price.tickSize, positive=True),
        step_size=_field(lot, "stepSize", lot.stepSize, positive=True),
        min_qty=_field(lot, "minQty", lot.minQty, positive=False),
        min_notional=_field(notional, "notional",
                            documented if documented is not None else other, positive=False),
        kind=kind)


# ---------------------------------------------------------------------------------------------
# Public functions


def instruments_from_exchange_info(raw: bytes | str, *,
                                   kind: Literal["perp", "spot"]) -> list[Instrument]:
    """The TRADING symbols of an exchangeInfo response, in the venue's order.

    `kind` says which endpoint it came from: "perp" for `/fapi/v1/exchangeInfo` (every futures
    symbol is treated as a perpetual; the doc lists no other contract type), "spot" for
    `/api/v1/exchangeInfo`.

    Symbols whose `status` is not TRADING are left out silently (halted or delisted is normal).
    A TRADING symbol lacking PRICE_FILTER, LOT_SIZE or MIN_NOTIONAL, or with a zero, negative or
    non-finite size, is left out with a warning: quoting it without its filters would only earn
    rejections. Raises `MalformedMessageError` if the document has no `symbols` list.
    """
    instruments = []
    for symbol in _trading_symbols(raw):
        try:
            instruments.append(_instrument(symbol, kind))
        except _Skip as why:
            log.warning("aster exchangeInfo: skipping %s: %s", symbol.symbol, why)
    return instruments


def market_lot_sizes_from_exchange_info(raw: bytes | str) -> dict[str, AsterLotSize]:
    """`MARKET_LOT_SIZE` per TRADING symbol: what a MARKET order's quantity must satisfy.

    Symbols without a usable MARKET_LOT_SIZE are left out with a warning (use `LOT_SIZE`, i.e.
    the `Instrument`, for limit orders only). Same `MalformedMessageError` as above.
    """
    sizes = {}
    for symbol in _trading_symbols(raw):
        try:
            lot = _filter(symbol, "MARKET_LOT_SIZE")
            sizes[symbol.symbol] = AsterLotSize(
                step_size=_field(lot, "stepSize", lot.stepSize, positive=True),
                min_qty=_field(lot, "minQty", lot.minQty, positive=False),
                max_qty=_field(lot, "maxQty", lot.maxQty, positive=True))
        except _Skip as why:
            log.warning("aster exchangeInfo: no market lot size for %s: %s", symbol.symbol, why)
    return sizes
