"""Risk limits, as the config file states them. Frozen; unknown keys are errors."""

from __future__ import annotations

from decimal import Decimal

import msgspec


class AccountLimits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    max_order_qty: Decimal | None = None
    """Per order, in the base asset; None: only the notional limit applies."""
    max_order_notional: Decimal = Decimal(25_000)
    """Per order, in the quote asset, at the reference price."""
    max_position_notional: Decimal = Decimal(50_000)
    """Per account and symbol, at the reference price."""
    max_open_orders: int = 40
    max_orders_per_s: float = 20.0
    order_burst: int = 40
    price_band_bps: Decimal = Decimal(200)
    """A limit price further than this from the reference mid is denied (fat fingers)."""
    max_reference_age_s: float = 5.0


class HedgeGroup(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Accounts that trade together: their net exposure is capped, and they never cross each
    other (self-trade prevention covers the whole group)."""

    name: str
    accounts: list[str]
    """`venue/account` names."""
    max_net_exposure_notional: Decimal = Decimal(25_000)


class RiskConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    defaults: AccountLimits = msgspec.field(default_factory=AccountLimits)
    accounts: dict[str, AccountLimits] = msgspec.field(default_factory=dict)
    """`venue/account` → limits replacing the defaults for that account."""
    groups: list[HedgeGroup] = msgspec.field(default_factory=list)
    daily_loss_limit: Decimal = Decimal(2_000)
    """Realized PnL minus fees plus funding since 00:00 UTC below -this halts trading."""

    def limits(self, venue: str, account: str) -> AccountLimits:
        return self.accounts.get(f"{venue}/{account}", self.defaults)

    def group_of(self, venue: str, account: str) -> HedgeGroup | None:
        member = f"{venue}/{account}"
        for group in self.groups:
            if member in group.accounts:
                return group
        return None
