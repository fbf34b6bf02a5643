"""Aster exchangeInfo → Instrument, and newClientOrderId mapping (venues.md §1.5, §1.6)."""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from typing import Any

import pytest

from exchanges import Instrument, MalformedMessageError
from exchanges.aster import (
    AsterLotSize,
    check_client_id,
    instruments_from_exchange_info,
    market_lot_sizes_from_exchange_info,
    venue_client_id,
)

# The futures doc's exchangeInfo symbol (AF1 §Exchange Information), verbatim but for
# dropped non-filter fields. Note pricePrecision 5 vs tick 0.0001, quantityPrecision 0 vs step 1.
FUTURES_SYMBOL: dict[str, Any] = {
    "symbol": "BLZUSDT", "pair": "BLZUSDT", "contractType": "PERPETUAL", "status": "TRADING",
    "baseAsset": "BLZ", "quoteAsset": "USDT", "marginAsset": "USDT",
    "pricePrecision": 5, "quantityPrecision": 0, "baseAssetPrecision": 8, "quotePrecision": 8,
    "filters": [
        {"filterType": "PRICE_FILTER", "maxPrice": "300", "minPrice": "0.0001",
         "tickSize": "0.0001"},
        {"filterType": "LOT_SIZE", "maxQty": "10000000", "minQty": "1", "stepSize": "1"},
        {"filterType": "MARKET_LOT_SIZE", "maxQty": "590119", "minQty": "1", "stepSize": "1"},
        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
        {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
        {"filterType": "MIN_NOTIONAL", "notional": "5.0"},
        {"filterType": "PERCENT_PRICE", "multiplierUp": "1.1500", "multiplierDown": "0.8500",
         "multiplierDecimal": 4},
    ],
}

# The spot doc's exchangeInfo symbol (AS1 §Trading specification information), verbatim but for
# dropped PERCENT_PRICE_BY_SIDE: MIN_NOTIONAL says `minNotional`; pricePrecision 8 vs tick 0.01.
SPOT_SYMBOL: dict[str, Any] = {
    "status": "TRADING", "baseAsset": "BNB", "quoteAsset": "USDT",
    "pricePrecision": 8, "quantityPrecision": 8, "baseAssetPrecision": 8, "quotePrecision": 8,
    "filters": [
        {"minPrice": "0.01000000", "maxPrice": "100000", "filterType": "PRICE_FILTER",
         "tickSize": "0.01000000"},
        {"stepSize": "0.00100000", "filterType": "LOT_SIZE", "maxQty": "1000", "minQty": "1"},
        {"stepSize": "0.00100000", "filterType": "MARKET_LOT_SIZE", "maxQty": "900000",
         "minQty": "0.00100000"},
        {"limit": 200, "filterType": "MAX_NUM_ORDERS"},
        {"minNotional": "5", "filterType": "MIN_NOTIONAL"},
        {"maxNotional": "100", "filterType": "MAX_NOTIONAL"},
        {"maxNotional": "100", "minNotional": "5", "avgPriceMins": 5, "applyMinToMarket": True,
         "filterType": "NOTIONAL", "applyMaxToMarket": True},
        {"multiplierDown": "0", "multiplierUp": "5", "multiplierDecimal": "0",
         "filterType": "PERCENT_PRICE"},
    ],
    "orderTypes": ["LIMIT", "MARKET"], "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
    "symbol": "BNBUSDT", "ocoAllowed": False,
}


def exchange_info(*symbols: dict[str, Any]) -> str:
    return json.dumps({"timezone": "UTC", "serverTime": 1756197279679, "rateLimits": [],
                       "exchangeFilters": [], "symbols": list(symbols)})


def variant(base: dict[str, Any], symbol: str, **changes: Any) -> dict[str, Any]:
    return {**base, "symbol": symbol, **changes}


def without_filter(base: dict[str, Any], symbol: str, filter_type: str) -> dict[str, Any]:
    filters = [f for f in base["filters"] if f["filterType"] != filter_type]
    return variant(base, symbol, filters=filters)


def with_tick(base: dict[str, Any], symbol: str, tick: str) -> dict[str, Any]:
    filters = [{**f, "tickSize": tick} if f["filterType"] == "PRICE_FILTER" else f
               for f in base["filters"]]
    return variant(base, symbol, filters=filters)


# ---------------------------------------------------------------------------------------------
# Instruments


def test_instruments_when_futures_doc_example_then_filters_not_precision():
    [instrument] = instruments_from_exchange_info(exchange_info(FUTURES_SYMBOL), kind="perp")

    assert instrument == Instrument(
        venue="aster", symbol="BLZUSDT", base="BLZ", quote="USDT", tick_size=Decimal("0.0001"),
        step_size=Decimal("1"), min_qty=Decimal("1"), min_notional=Decimal("5.0"), kind="perp")


def test_instruments_when_spot_doc_example_then_min_notional_from_min_notional_field():
    [instrument] = instruments_from_exchange_info(exchange_info(SPOT_SYMBOL).encode(), kind="spot")

    assert instrument.venue == "aster"
    assert instrument.symbol == "BNBUSDT"
    assert (instrument.base, instrument.quote) == ("BNB", "USDT")
    assert instrument.tick_size == Decimal("0.01")
    assert instrument.step_size == Decimal("0.001")
    assert instrument.min_qty == Decimal("1")
    assert instrument.min_notional == Decimal("5")
    assert instrument.kind == "spot"


def test_instruments_when_precision_disagrees_with_filters_then_precision_ignored():
    odd = variant(FUTURES_SYMBOL, "ODDUSDT", pricePrecision=1, quantityPrecision=7)

    [instrument] = instruments_from_exchange_info(exchange_info(odd), kind="perp")

    assert instrument.tick_size == Decimal("0.0001")
    assert instrument.step_size == Decimal("1")


@pytest.mark.parametrize("status", ["PENDING_TRADING", "SETTLING", "CLOSE", "BREAK"])
def test_instruments_when_status_not_trading_then_skipped_quietly(
        status: str, caplog: pytest.LogCaptureFixture):
    halted = variant(FUTURES_SYMBOL, "HALTUSDT", status=status)

    with caplog.at_level(logging.WARNING):
        instruments = instruments_from_exchange_info(exchange_info(halted, FUTURES_SYMBOL),
                                                     kind="perp")

    assert [i.symbol for i in instruments] == ["BLZUSDT"]
    assert caplog.records == []


@pytest.mark.parametrize("filter_type", ["PRICE_FILTER", "LOT_SIZE", "MIN_NOTIONAL"])
def test_instruments_when_filter_missing_then_symbol_skipped_with_warning(
        filter_type: str, caplog: pytest.LogCaptureFixture):
    broken = without_filter(FUTURES_SYMBOL, "BROKENUSDT", filter_type)

    with caplog.at_level(logging.WARNING):
        instruments = instruments_from_exchange_info(exchange_info(broken, FUTURES_SYMBOL),
                                                     kind="perp")

    assert [i.symbol for i in instruments] == ["BLZUSDT"]
    assert "BROKENUSDT" in caplog.text
    assert filter_type in caplog.text


@pytest.mark.parametrize("tick", ["0", "-0.01", "NaN"])
def test_instruments_when_tick_not_positive_then_symbol_skipped_with_warning(
        tick: str, caplog: pytest.LogCaptureFixture):
    broken = with_tick(FUTURES_SYMBOL, "ZEROUSDT", tick)

    with caplog.at_level(logging.WARNING):
        instruments = instruments_from_exchange_info(exchange_info(broken), kind="perp")

    assert instruments == []
    assert "ZEROUSDT" in caplog.text
    assert "tickSize" in caplog.text


def test_instruments_when_symbol_entry_undecodable_then_skipped_with_warning(
        caplog: pytest.LogCaptureFixture):
    broken = variant(FUTURES_SYMBOL, "BADUSDT", baseAsset=None)

    with caplog.at_level(logging.WARNING):
        instruments = instruments_from_exchange_info(exchange_info(broken, FUTURES_SYMBOL),
                                                     kind="perp")

    assert [i.symbol for i in instruments] == ["BLZUSDT"]
    assert "BADUSDT" in caplog.text


@pytest.mark.parametrize("raw", ["not json", "[]", '{"timezone":"UTC"}', '{"symbols":{}}', ""])
def test_instruments_when_document_garbage_then_malformed(raw: str):
    with pytest.raises(MalformedMessageError) as info:
        instruments_from_exchange_info(raw, kind="perp")

    assert info.value.venue == "aster"
    assert info.value.stream == "exchangeInfo"


# ---------------------------------------------------------------------------------------------
# MARKET_LOT_SIZE


def test_market_lot_sizes_when_doc_examples_then_market_lot_size_per_symbol():
    sizes = market_lot_sizes_from_exchange_info(exchange_info(FUTURES_SYMBOL, SPOT_SYMBOL))

    assert sizes == {
        "BLZUSDT": AsterLotSize(step_size=Decimal("1"), min_qty=Decimal("1"),
                                max_qty=Decimal("590119")),
        "BNBUSDT": AsterLotSize(step_size=Decimal("0.001"), min_qty=Decimal("0.001"),
                                max_qty=Decimal("900000")),
    }


def test_market_lot_sizes_when_filter_missing_then_symbol_left_out_with_warning(
        caplog: pytest.LogCaptureFixture):
    broken = without_filter(FUTURES_SYMBOL, "NOMKTUSDT", "MARKET_LOT_SIZE")

    with caplog.at_level(logging.WARNING):
        sizes = market_lot_sizes_from_exchange_info(exchange_info(broken))

    assert sizes == {}
    assert "NOMKTUSDT" in caplog.text


# ---------------------------------------------------------------------------------------------
# newClientOrderId


@pytest.mark.parametrize("client_id", ["mm-1", "a", "A.b:c/d_e-9", "x" * 36])
def test_client_id_when_valid_then_kept(client_id: str):
    assert check_client_id(client_id) == client_id
    assert venue_client_id(client_id) == client_id


@pytest.mark.parametrize("client_id", ["", "x" * 37, "has space", "ü", "a+b", "mm-1\n"])
def test_check_client_id_when_invalid_then_value_error_names_id_and_rule(client_id: str):
    with pytest.raises(ValueError) as info:
        check_client_id(client_id)

    assert repr(client_id) in str(info.value)
    assert "{1,36}" in str(info.value)


@pytest.mark.parametrize("client_id", ["", "x" * 37, "has space", "ü", "a+b", "mm-1\n"])
def test_venue_client_id_when_invalid_then_mapped_deterministically_and_valid(client_id: str):
    mapped = venue_client_id(client_id)

    assert check_client_id(mapped) == mapped
    assert len(mapped) <= 36
    assert mapped == venue_client_id(client_id)
    assert mapped.startswith("h-")


def test_venue_client_id_when_different_invalid_ids_then_different_mappings():
    assert venue_client_id("x" * 37) != venue_client_id("x" * 38)


def test_venue_client_id_when_invalid_then_stable_across_processes():
    # Pinned so a change of hash or prefix (which would orphan live orders) fails loudly.
    assert venue_client_id("has space") == "h-40c04b7d560afef1133839fdb1625133"
