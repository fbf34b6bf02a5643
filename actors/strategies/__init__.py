"""Strategies: one actor per configured strategy, by kind."""

from ._base import OwnOrder as OwnOrder
from ._base import ParamsError as ParamsError
from ._base import Strategy as Strategy
from ._kinds import Leg as Leg
from ._kinds import StrategyContext as StrategyContext
from ._kinds import StrategyKind as StrategyKind
from ._registry import STRATEGY_KINDS as STRATEGY_KINDS
from .hedge import Hedge as Hedge
from .hedge import HedgeParams as HedgeParams
from .inventory_cycle import InventoryCycle as InventoryCycle
from .inventory_cycle import InventoryCycleParams as InventoryCycleParams
from .market_maker import MarketMaker as MarketMaker
from .market_maker import MarketMakerParams as MarketMakerParams
from .market_maker import Quote as Quote
from .market_maker import quotes as quotes
from .spread_arb import SpreadArb as SpreadArb
from .spread_arb import SpreadArbParams as SpreadArbParams

__all__ = [
    "STRATEGY_KINDS",
    "Hedge",
    "HedgeParams",
    "InventoryCycle",
    "InventoryCycleParams",
    "Leg",
    "MarketMaker",
    "MarketMakerParams",
    "OwnOrder",
    "ParamsError",
    "Quote",
    "SpreadArb",
    "SpreadArbParams",
    "Strategy",
    "StrategyContext",
    "StrategyKind",
    "quotes",
]
