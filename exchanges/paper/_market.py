"""Synthetic markets: fair prices shared by every paper venue, each seen through its own basis.

The fair price of each symbol follows a seeded geometric random walk. Each venue quotes it
with a basis that mean-reverts (an Ornstein-Uhlenbeck process) around zero, so the venues'
mids stay correlated while the spread between them opens and closes: what the hedge and the
arbitrage strategies live on. Deterministic for a seed: floats inside, Decimal (rounded to the
tick) at the edge.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

import msgspec

from .._models import Side
from ._engine import Level

LEVELS_PER_SIDE = 10


class SymbolSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A synthetic symbol: its filters and how its market behaves. Also the config's
    `[[paper.symbols]]` table, so unknown keys are refused."""

    symbol: str
    base: str
    quote: str = "USDT"
    start_price: Decimal
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    min_notional: Decimal = Decimal(5)
    volatility_per_sqrt_s: float = 0.00015
    """Std. dev. of the log return over one second: 0.00015 is about 4.4 % a day."""
    spread_ticks: int = 2
    level_qty: Decimal = Decimal(1)
    trade_rate_per_s: float = 4.0
    kind: Literal["perp", "spot"] = "perp"


@dataclass(frozen=True, slots=True)
class BasisSpec:
    sigma_bps_per_sqrt_s: float = 0.6
    reversion_per_s: float = 0.02
    """The basis halves in about ln 2 / 0.02 ≈ 35 s."""


@dataclass(frozen=True, slots=True)
class MarketTrade:
    price: Decimal
    qty: Decimal
    aggressor: Side


class SyntheticMarket:
    def __init__(
        self,
        seed: int,
        symbols: Sequence[SymbolSpec],
        venues: Sequence[str],
        basis: BasisSpec = BasisSpec(),
        start_prices: dict[str, float] | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.symbols = {spec.symbol: spec for spec in symbols}
        self.venues = list(venues)
        self.basis_spec = basis
        self.fair: dict[str, float] = {
            spec.symbol: (start_prices or {}).get(spec.symbol, float(spec.start_price))
            for spec in symbols
        }
        self.basis_bps: dict[tuple[str, str], float] = {
            (venue, symbol): 0.0 for venue in venues for symbol in self.fair
        }

    def step(self, dt_s: float) -> None:
        """Advance every fair price and every basis by dt_s seconds."""
        sqrt_dt = math.sqrt(dt_s)
        for symbol, price in self.fair.items():
            sigma = self.symbols[symbol].volatility_per_sqrt_s
            self.fair[symbol] = price * math.exp(sigma * sqrt_dt * self.rng.gauss(0, 1))
        decay = math.exp(-self.basis_spec.reversion_per_s * dt_s)
        for key, basis in self.basis_bps.items():
            noise = self.basis_spec.sigma_bps_per_sqrt_s * sqrt_dt * self.rng.gauss(0, 1)
            self.basis_bps[key] = basis * decay + noise

    def mid(self, venue: str, symbol: str) -> float:
        return self.fair[symbol] * (1 + self.basis_bps[(venue, symbol)] / 10_000)

    def book(self, venue: str, symbol: str) -> tuple[list[Level], list[Level]]:
        """Levels around the venue's mid, a tick apart, sizes growing with depth."""
        spec = self.symbols[symbol]
        tick = spec.tick_size
        mid_ticks = Decimal(self.mid(venue, symbol)) / tick
        half = Decimal(spec.spread_ticks) / 2
        best_bid_ticks = (mid_ticks - half).to_integral_value(rounding="ROUND_FLOOR")
        best_ask_ticks = max(best_bid_ticks + 1, best_bid_ticks + spec.spread_ticks)
        bids, asks = [], []
        for depth in range(LEVELS_PER_SIDE):
            size = spec.level_qty * (1 + Decimal(depth) / 2)
            size = (size * Decimal(0.5 + self.rng.random())).quantize(spec.step_size)
            size = max(size, spec.min_qty)
            bids.append(Level((best_bid_ticks - depth) * tick, size))
            asks.append(Level((best_ask_ticks + depth) * tick, size))
        return bids, asks

    def trades(
        self, symbol: str, dt_s: float, bids: list[Level], asks: list[Level]
    ) -> list[MarketTrade]:
        """Other traders' market orders over dt_s: each sweeps one or more levels and prints
        at the deepest price it reached."""
        spec = self.symbols[symbol]
        count = _poisson(self.rng, spec.trade_rate_per_s * dt_s)
        trades = []
        for _ in range(count):
            aggressor = Side.BUY if self.rng.random() < 0.5 else Side.SELL
            levels = asks if aggressor is Side.BUY else bids
            depth = min(len(levels) - 1, int(self.rng.expovariate(1.5)))
            qty = sum((level.qty for level in levels[: depth + 1]), Decimal(0))
            trades.append(MarketTrade(levels[depth].price, qty, aggressor))
        return trades


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method: fine for the small means of one market step.
    threshold, count, product = math.exp(-mean), 0, rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count
