"""Suite-wide rules: loopback only, MockClock instead of sleeps, a bound on every test.

`STEWARD_HOME` points at a per-test temporary directory so no test touches a real home.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def steward_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "steward-home"
    monkeypatch.setenv("STEWARD_HOME", str(home))
    yield home
