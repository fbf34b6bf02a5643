"""A bad config stops start-up with the file, the key and the reason; nothing starts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from clients import load_fleet
from supervisor._config import ConfigError, config_schema, load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "paper.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return path


def example_with(old: str, new: str) -> str:
    text = EXAMPLE.read_text()
    assert old in text, old
    return text.replace(old, new, 1)


def test_every_example_config_loads():
    """Daemon configs with `load_config`; `examples/fleet/` holds the kill switch's host lists
    (`steward kill --fleet`), which are not daemon configs and load with `load_fleet`."""
    paths = sorted(EXAMPLE.parent.rglob("*.toml"))
    assert EXAMPLE.parent / "live.toml" in paths
    for path in paths:
        if "fleet" in path.relative_to(EXAMPLE.parent).parts:
            load_fleet(path)
        else:
            load_config(path)


@pytest.mark.parametrize(
    ("old", "new", "key", "reason"),
    [
        ('kind = "paper"', 'kind = "papr"', "venues[0].kind",
         "unknown venue kind 'papr'; known: aster, backpack, paper"),
        ("seed = 7", 'seed = "seven"', "paper.seed", "Expected `int`"),
        ("step_s = 0.1", "step_s = 0.1\nstep_ms = 100", "paper", "unknown field `step_ms`"),
        ('quantity = "0.01"', 'quantity = "lots"', "strategies[0].params.quantity",
         "Invalid decimal"),
        ('venue = "paper-a"', 'venue = "paper-z"', "strategies[0].params.venue",
         "no venue named 'paper-z'"),
        ('account = "mm"', 'account = "nobody"', "strategies[0].params.account",
         "has no account 'nobody'"),
        ('kind = "market_maker"', 'kind = "grid"', "strategies[0].kind",
         "unknown strategy kind 'grid'"),
        ('name = "paper-b"', 'name = "paper-a"', "venues[1].name", "duplicate name 'paper-a'"),
    ],
)
def test_load_config_when_a_key_is_wrong_then_error_names_file_key_and_reason(
    tmp_path: Path, old: str, new: str, key: str, reason: str
):
    path = write(tmp_path, example_with(old, new))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.path == str(path)
    assert info.value.key == key
    assert reason in info.value.reason
    assert str(info.value).startswith(f"{path}: {key}: ")


def test_load_config_when_not_toml_then_error_names_the_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "venues = [\n"))


def test_run_when_config_is_bad_then_exits_2_with_the_reason_and_starts_nothing(
    tmp_path: Path, steward_home: Path
):
    path = write(tmp_path, example_with('kind = "paper"', 'kind = "papr"'))
    result = subprocess.run([sys.executable, "-m", "supervisor.cli", "run", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"{path}: venues[0].kind:" in result.stderr
    assert not (steward_home / "journal.sqlite").exists()


def test_config_schema_when_exported_then_describes_every_section():
    schema = config_schema()
    text = json.dumps(schema)
    for section in ("venues", "strategies", "risk", "paper", "control"):
        assert section in text


def test_schema_verb_when_run_then_prints_the_json_schema():
    result = subprocess.run([sys.executable, "-m", "supervisor.cli", "schema"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "market_maker" in json.loads(result.stdout)["strategy_params"]
