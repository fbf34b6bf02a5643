"""Strategy kinds: what the config's `kind = "..."` names, and how to build one.

Each kind has a parameter struct (validated whole from the config and on live updates) whose
`legs()` say which venue, account and symbol it trades, so the config can be checked before
anything starts, and a builder that makes a fresh actor from parameters and market context.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import msgspec

from actors import Actor
from exchanges import Instrument

from ..feed import MarketTopics


class Leg(msgspec.Struct, frozen=True, kw_only=True):
    """Where a strategy trades: one account on one venue, one symbol."""

    venue: str
    account: str
    symbol: str


class StrategyParams(Protocol):
    def legs(self) -> list[Leg]: ...

    def reference_venues(self) -> list[str]:
        """Venues read for prices only (follow mode), not traded."""
        ...


@dataclass(frozen=True)
class StrategyContext:
    topics: MarketTopics
    instruments: Mapping[tuple[str, str], Instrument]
    """(venue, symbol) → the instrument, for tick and step rounding."""


@dataclass(frozen=True)
class StrategyKind:
    params_type: type[msgspec.Struct]
    build: Callable[[msgspec.Struct, StrategyContext], Actor]
    """A fresh strategy actor for every start (the supervisor's factory)."""
