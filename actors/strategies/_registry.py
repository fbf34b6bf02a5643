"""Every strategy kind the config may name. A new strategy adds one line here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ._kinds import StrategyKind
from .hedge import HedgeParams, build_hedge
from .inventory_cycle import InventoryCycleParams, build_inventory_cycle
from .market_maker import MarketMakerParams, build_market_maker
from .spread_arb import SpreadArbParams, build_spread_arb

STRATEGY_KINDS: Final[Mapping[str, StrategyKind]] = {
    "market_maker": StrategyKind(MarketMakerParams, build_market_maker),
    "hedge": StrategyKind(HedgeParams, build_hedge),
    "inventory_cycle": StrategyKind(InventoryCycleParams, build_inventory_cycle),
    "spread_arb": StrategyKind(SpreadArbParams, build_spread_arb),
}
