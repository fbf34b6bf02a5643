"""Backpack `GET /api/v1/markets` to `Instrument`s (venues.md §2.1, §2.4).

Sizes come from `filters.price.tickSize`, `filters.quantity.stepSize` and `.minQuantity`.
The markets schema has **no min-notional filter** (venues.md §2.4, §4 pitfall 3: unknown whether
one is enforced), so `min_notional` is always 0 here: a too-small order will be caught by the
venue, not by us.

Only `marketType` SPOT ("spot") and PERP ("perp") are listed; IPERP, DATED, PREDICTION and RFQ
are left out silently. So are markets whose `orderBookState` is present and not "Open" (the
BPO schema's other states, Closed/CancelOnly/LimitOnly/PostOnly, would reject some of our
orders; this field is not in venues.md).

Error handling: one bad market (missing filter, zero tick, undecodable entry) is skipped with a
warning naming it. A document that is not a JSON array raises `MalformedMessageError`.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Final, Literal, NoReturn

import msgspec

from .._models import Instrument
from .._stream_errors import MalformedMessageError

VENUE: Final = "backpack"
OPEN: Final = "Open"
_KINDS: Final[dict[str, Literal["perp", "spot"]]] = {"PERP": "perp", "SPOT": "spot"}

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Wire types: markets are kept raw so one bad entry fails only itself


class _PriceFilter(msgspec.Struct):
    tickSize: Decimal


class _QuantityFilter(msgspec.Struct):
    stepSize: Decimal
    minQuantity: Decimal


class _Filters(msgspec.Struct):
    price: _PriceFilter
    quantity: _QuantityFilter


class _Market(msgspec.Struct):
    symbol: str
    baseSymbol: str
    quoteSymbol: str
    marketType: str
    filters: _Filters


class _Head(msgspec.Struct):
    """Enough of a market to choose it (and name it in a warning) before decoding the rest,
    so a market type we skip anyway cannot produce warnings by having other filters."""

    symbol: str = "?"
    marketType: str = ""
    orderBookState: str | None = None


_MARKETS: Final = msgspec.json.Decoder(list[msgspec.Raw])
_MARKET: Final = msgspec.json.Decoder(_Market)
_HEAD: Final = msgspec.json.Decoder(_Head)


# ---------------------------------------------------------------------------------------------
# Private helpers


def _malformed(reason: object, raw: bytes | str) -> NoReturn:
    raise MalformedMessageError(VENUE, "markets", str(reason), raw)


def _bad_size(tick: Decimal, step: Decimal, min_qty: Decimal) -> str | None:
    for name, value, positive in (("tickSize", tick, True), ("stepSize", step, True),
                                  ("minQuantity", min_qty, False)):
        if not value.is_finite() or value < 0 or (positive and value == 0):
            return f"{name} is {value}"
    return None


# ---------------------------------------------------------------------------------------------
# Public function


def instruments_from_markets(raw: bytes | str) -> list[Instrument]:
    """The open SPOT and PERP markets of a `/api/v1/markets` response, in the venue's order.

    `min_notional` is 0 (no such filter in the schema). A market whose entry does not decode
    (a missing `filters.price.tickSize`, say) or whose tick/step is zero, negative or not
    finite is left out with a warning naming it. Raises `MalformedMessageError` if the
    document is not a JSON array.
    """
    try:
        entries = _MARKETS.decode(raw)
    except msgspec.DecodeError as exc:
        _malformed(exc, raw)
    instruments = []
    for entry in entries:
        try:
            head = _HEAD.decode(entry)
        except msgspec.DecodeError as exc:
            log.warning("backpack markets: skipping undecodable entry (%s): %.200s",
                        exc, bytes(entry).decode("utf-8", "replace"))
            continue
        kind = _KINDS.get(head.marketType)
        if kind is None or (head.orderBookState is not None and head.orderBookState != OPEN):
            continue
        try:
            market = _MARKET.decode(entry)
        except msgspec.DecodeError as exc:
            log.warning("backpack markets: skipping %s: %s", head.symbol, exc)
            continue
        price, quantity = market.filters.price, market.filters.quantity
        bad = _bad_size(price.tickSize, quantity.stepSize, quantity.minQuantity)
        if bad is not None:
            log.warning("backpack markets: skipping %s: %s", market.symbol, bad)
            continue
        instruments.append(Instrument(
            venue=VENUE, symbol=market.symbol, base=market.baseSymbol, quote=market.quoteSymbol,
            tick_size=price.tickSize, step_size=quantity.stepSize,
            min_qty=quantity.minQuantity, min_notional=Decimal(0), kind=kind))
    return instruments
