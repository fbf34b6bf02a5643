"""Each package's front door: `__all__` is sorted, complete, and names only what exists."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

PACKAGES = [
    "actors",
    "actors.gateway",
    "actors.journal",
    "actors.lowlevel",
    "actors.risk",
    "actors.strategies",
    "actors.strategies.hedge",
    "actors.strategies.spread_arb",
    "clients",
    "exchanges",
    "exchanges.aster",
    "exchanges.backpack",
    "exchanges.paper",
    "supervisor",
]


def public_names(module: ModuleType) -> set[str]:
    """Public non-module attributes (submodules appear as attributes once imported)."""
    return {
        name for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    } - {"annotations"}


@pytest.mark.parametrize("name", PACKAGES)
def test_all_when_read_then_sorted_and_matches_public_names(name: str):
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported, key=lambda n: (not n.isupper(), n))
    assert set(exported) == public_names(module)
