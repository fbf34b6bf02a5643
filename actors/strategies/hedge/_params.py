"""Hedge parameters, as the config file and UpdateParams state them. Frozen; unknown keys
are errors, and so are values out of range (checked on decoding, so the config file is held to
them too). What may not change live is the actor's check, in `_actor`."""

from __future__ import annotations

import math
from decimal import Decimal

import msgspec

from exchanges import Side

from .._kinds import Leg


class HedgeParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    maker_venue: str
    maker_account: str
    hedge_venue: str
    hedge_account: str
    symbol: str
    """Quoted on the maker venue; also hedged, unless `hedge_symbol` says otherwise."""
    quantity: Decimal
    """Base asset held on each venue at the end of leg 1."""
    max_unhedged_qty: Decimal
    """Base asset: the largest maker order, so the most one fill leaves unhedged."""
    hedge_symbol: str | None = None
    """The hedge venue's symbol for the same base asset, if it is named differently."""
    first_side: Side = Side.BUY
    """Leg 1's side on the maker venue; leg 2 takes the other."""
    offset_percent: Decimal = Decimal("0.02")
    """Maker price distance from the maker venue's mid, in percent of it."""
    first_wait_s: float = 30.0
    """A maker order unfilled this long is cancelled and requoted."""
    between_legs_sleep_s: float = 10.0
    cycle_sleep_s: float = 60.0
    stop_before_funding_minutes: float = 10.0
    """No cycle starts this close to either venue's next funding time."""
    hedge_retry_s: float = 1.0
    """Wait after a hedge that filled nothing (a partial one is retried at once)."""
    hedge_max_attempts: int = 3
    """Hedges filling nothing before the exposure is unwound on the maker venue instead."""

    def __post_init__(self) -> None:
        # Here rather than in validate_params, so the config file is held to it too.
        for name in self.__struct_fields__:
            value = getattr(self, name)
            # "NaN" and "Infinity" parse as Decimal; NaN would raise below, not compare.
            if (isinstance(value, Decimal) and not value.is_finite()) or (
                isinstance(value, float) and not math.isfinite(value)
            ):
                raise ValueError(f"{name} must be a finite number - at `$.{name}`")
        for name in ("quantity", "max_unhedged_qty"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0 - at `$.{name}`")
        if not 0 <= self.offset_percent < 10:
            raise ValueError("offset_percent must be within [0, 10) - at `$.offset_percent`")
        if not self.first_wait_s > 0:
            raise ValueError("first_wait_s must be > 0 - at `$.first_wait_s`")
        for name in ("between_legs_sleep_s", "cycle_sleep_s", "stop_before_funding_minutes",
                     "hedge_retry_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0 - at `$.{name}`")
        if self.hedge_max_attempts < 1:
            raise ValueError("hedge_max_attempts must be >= 1 - at `$.hedge_max_attempts`")
        if self.hedge_venue == self.maker_venue:
            raise ValueError("hedge_venue must differ from maker_venue - at `$.hedge_venue`")

    @property
    def hedged_symbol(self) -> str:
        return self.symbol if self.hedge_symbol is None else self.hedge_symbol

    def legs(self) -> list[Leg]:
        return [Leg(venue=self.maker_venue, account=self.maker_account, symbol=self.symbol),
                Leg(venue=self.hedge_venue, account=self.hedge_account,
                    symbol=self.hedged_symbol)]

    def reference_venues(self) -> list[str]:
        return []
