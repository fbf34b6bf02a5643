"""Backpack /api/v1/markets → Instrument (venues.md §2.1, §2.4)."""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from typing import Any

import pytest

from exchanges import Instrument, MalformedMessageError
from exchanges.backpack import instruments_from_markets

# venues.md has no sample markets payload. These are realistic entries shaped as §2.4 and the
# BPO Market schema describe (filters.price / filters.quantity, fundingInterval in ms), not
# copies of a live response.
SPOT: dict[str, Any] = {
    "symbol": "SOL_USDC", "baseSymbol": "SOL", "quoteSymbol": "USDC", "marketType": "SPOT",
    "filters": {
        "price": {"minPrice": "0.01", "maxPrice": "10000", "tickSize": "0.01"},
        "quantity": {"minQuantity": "0.01", "maxQuantity": None, "stepSize": "0.01"},
    },
    "imfFunction": None, "mmfFunction": None, "fundingInterval": None,
    "fundingRateUpperBound": None, "fundingRateLowerBound": None, "openInterestLimit": None,
    "orderBookState": "Open", "createdAt": "2024-01-01T00:00:00",
}
PERP: dict[str, Any] = {
    "symbol": "SOL_USDC_PERP", "baseSymbol": "SOL", "quoteSymbol": "USDC", "marketType": "PERP",
    "filters": {
        "price": {"minPrice": "0.01", "maxPrice": "1000", "tickSize": "0.001",
                  "maxMultiplier": "1.25", "minMultiplier": "0.75"},
        "quantity": {"minQuantity": "0.05", "maxQuantity": "100000", "stepSize": "0.01"},
    },
    "fundingInterval": 3600000, "fundingRateUpperBound": "100", "fundingRateLowerBound": "-100",
    "openInterestLimit": "2000000", "orderBookState": "Open",
}


def markets(*entries: dict[str, Any]) -> str:
    return json.dumps(list(entries))


def variant(base: dict[str, Any], symbol: str, **changes: Any) -> dict[str, Any]:
    return {**base, "symbol": symbol, **changes}


def with_price_filter(base: dict[str, Any], symbol: str, **price: Any) -> dict[str, Any]:
    filters = {**base["filters"], "price": {**base["filters"]["price"], **price}}
    return variant(base, symbol, filters=filters)


def test_instruments_when_spot_and_perp_then_every_field_from_filters():
    spot, perp = instruments_from_markets(markets(SPOT, PERP).encode())

    assert spot == Instrument(
        venue="backpack", symbol="SOL_USDC", base="SOL", quote="USDC",
        tick_size=Decimal("0.01"), step_size=Decimal("0.01"), min_qty=Decimal("0.01"),
        min_notional=Decimal(0), kind="spot")
    assert perp == Instrument(
        venue="backpack", symbol="SOL_USDC_PERP", base="SOL", quote="USDC",
        tick_size=Decimal("0.001"), step_size=Decimal("0.01"), min_qty=Decimal("0.05"),
        min_notional=Decimal(0), kind="perp")


@pytest.mark.parametrize("market_type", ["IPERP", "DATED", "PREDICTION", "RFQ"])
def test_instruments_when_market_type_unsupported_then_skipped_quietly(
        market_type: str, caplog: pytest.LogCaptureFixture):
    other = variant(PERP, "X_USDC", marketType=market_type, filters={})

    with caplog.at_level(logging.WARNING):
        instruments = instruments_from_markets(markets(other, SPOT))

    assert [i.symbol for i in instruments] == ["SOL_USDC"]
    assert caplog.records == []


@pytest.mark.parametrize("state", ["Closed", "CancelOnly", "LimitOnly", "PostOnly"])
def test_instruments_when_order_book_not_open_then_skipped(state: str):
    closed = variant(PERP, "ETH_USDC_PERP", orderBookState=state)

    instruments = instruments_from_markets(markets(closed, SPOT))

    assert [i.symbol for i in instruments] == ["SOL_USDC"]


@pytest.mark.parametrize("part,field", [("price", "tickSize"), ("quantity", "stepSize"),
                                        ("quantity", "minQuantity")])
def test_instruments_when_filter_field_missing_then_skipped_with_warning(
        part: str, field: str, caplog: pytest.LogCaptureFixture):
    filters = {**PERP["filters"]}
    filters[part] = {k: v for k, v in filters[part].items() if k != field}
    broken = variant(PERP, "BROKEN_USDC_PERP", filters=filters)

    with caplog.at_level(logging.WARNING):
        instruments = instruments_from_markets(markets(broken, SPOT))

    assert [i.symbol for i in instruments] == ["SOL_USDC"]
    assert "BROKEN_USDC_PERP" in caplog.text
    assert field in caplog.text


def test_instruments_when_filters_missing_then_skipped_with_warning(
        caplog: pytest.LogCaptureFixture):
    broken = {k: v for k, v in PERP.items() if k != "filters"} | {"symbol": "NOFILT_USDC_PERP"}

    with caplog.at_level(logging.WARNING):
        instruments = instruments_from_markets(markets(broken))

    assert instruments == []
    assert "NOFILT_USDC_PERP" in caplog.text


@pytest.mark.parametrize("tick", ["0", "-0.01", "Infinity"])
def test_instruments_when_tick_not_positive_then_skipped_with_warning(
        tick: str, caplog: pytest.LogCaptureFixture):
    broken = with_price_filter(PERP, "ZERO_USDC_PERP", tickSize=tick)

    with caplog.at_level(logging.WARNING):
        instruments = instruments_from_markets(markets(broken, SPOT))

    assert [i.symbol for i in instruments] == ["SOL_USDC"]
    assert "ZERO_USDC_PERP" in caplog.text
    assert "tickSize" in caplog.text


def test_instruments_when_entry_not_an_object_then_skipped_with_warning(
        caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.WARNING):
        instruments = instruments_from_markets(f"[42, {json.dumps(SPOT)}]")

    assert [i.symbol for i in instruments] == ["SOL_USDC"]
    assert "undecodable" in caplog.text


@pytest.mark.parametrize("raw", ["not json", '{"symbols": []}', "", "null"])
def test_instruments_when_document_garbage_then_malformed(raw: str):
    with pytest.raises(MalformedMessageError) as info:
        instruments_from_markets(raw)

    assert info.value.venue == "backpack"
    assert info.value.stream == "markets"
