"""Spread arbitrage parameters and their checks. No trio.

`SpreadArbParams` is checked whole on every conversion, from the config file and on live
updates; `params_problem` says what is wrong, naming the field the way msgspec does.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Final

import msgspec

from .._kinds import Leg

ZERO: Final = Decimal(0)


class SpreadArbParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Checked whole on every conversion (config file and live updates): an error names the
    field in msgspec's words (`... - at `$.trade_amount``)."""

    venue_a: str
    account_a: str
    symbol_a: str
    venue_b: str
    account_b: str
    symbol_b: str
    """Venues may name one market differently (BTCUSDT, BTC_USDC_PERP): a symbol per venue."""
    trade_amount: Decimal
    """Per leg, in the base asset; rounded down to both venues' step."""
    open_threshold_bps: Decimal
    """Open when (rich bid - cheap ask) / cheap ask, less both taker fees, is at least this."""
    close_threshold_bps: Decimal
    """Close when (rich ask - cheap bid) / cheap bid, plus both taker fees, is at most this."""
    taker_fee_bps_a: Decimal = Decimal("3.5")
    taker_fee_bps_b: Decimal = Decimal("3.5")
    max_slippage_bps: Decimal | None = Decimal(5)
    """Entry legs are IOC limits this far past the touch; None sends market orders."""
    max_hold_s: float = 600.0
    max_price_age_s: float = 2.0
    """Seconds since a book was received; older books are not acted on."""
    min_trade_interval_s: float = 5.0
    """Between two opens. Closes and unwinds never wait for it."""
    max_positions: int = 1
    """Arbitrages open at once, counting those still opening or closing."""

    def __post_init__(self) -> None:
        problem = params_problem(self)
        if problem is not None:
            raise ValueError(problem)

    def legs(self) -> list[Leg]:
        return [Leg(venue=self.venue_a, account=self.account_a, symbol=self.symbol_a),
                Leg(venue=self.venue_b, account=self.account_b, symbol=self.symbol_b)]

    def reference_venues(self) -> list[str]:
        return []


def params_problem(params: SpreadArbParams) -> str | None:
    """What is wrong with a parameter set, naming the field; None if nothing."""
    slippage = ZERO if params.max_slippage_bps is None else params.max_slippage_bps
    decimals = {
        "trade_amount": params.trade_amount, "open_threshold_bps": params.open_threshold_bps,
        "close_threshold_bps": params.close_threshold_bps,
        "taker_fee_bps_a": params.taker_fee_bps_a, "taker_fee_bps_b": params.taker_fee_bps_b,
        "max_slippage_bps": slippage,
    }
    floats = {"max_hold_s": params.max_hold_s, "max_price_age_s": params.max_price_age_s,
              "min_trade_interval_s": params.min_trade_interval_s}
    # Checked first: comparing a Decimal NaN raises instead of answering.
    for name, number in decimals.items():
        if not number.is_finite():
            return f"{name} must be a finite number - at `$.{name}`"
    for name, seconds in floats.items():
        if not math.isfinite(seconds):
            return f"{name} must be a finite number - at `$.{name}`"
    checks = [
        ("trade_amount", params.trade_amount > 0, "must be > 0"),
        ("open_threshold_bps", params.open_threshold_bps > 0,
         "must be > 0: below it an open pays more in fees than the spread gives"),
        ("close_threshold_bps", params.close_threshold_bps < params.open_threshold_bps,
         "must be below open_threshold_bps, or a round trip can lose by design"),
        ("taker_fee_bps_a", params.taker_fee_bps_a >= 0, "must be >= 0"),
        ("taker_fee_bps_b", params.taker_fee_bps_b >= 0, "must be >= 0"),
        ("max_slippage_bps", slippage >= 0, "must be >= 0"),
        ("max_hold_s", params.max_hold_s > 0, "must be > 0"),
        ("max_price_age_s", params.max_price_age_s > 0, "must be > 0"),
        ("min_trade_interval_s", params.min_trade_interval_s >= 0, "must be >= 0"),
        ("max_positions", params.max_positions >= 1, "must be >= 1"),
        ("symbol_b", (params.venue_a, params.symbol_a) != (params.venue_b, params.symbol_b),
         "leg b must be another venue or symbol than leg a"),
    ]
    for name, ok, reason in checks:
        if not ok:
            return f"{name} {reason} - at `$.{name}`"
    return None
