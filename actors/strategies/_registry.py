"""Every strategy kind the config may name. A new strategy adds one line here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ._kinds import StrategyKind
from .market_maker import MarketMakerParams, build_market_maker

STRATEGY_KINDS: Final[Mapping[str, StrategyKind]] = {
    "market_maker": StrategyKind(MarketMakerParams, build_market_maker),
}
