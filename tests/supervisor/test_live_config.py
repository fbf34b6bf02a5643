"""Live venues in the config: credentials by variable name only, read when the daemon starts,
refused with the file, the key and the variable, and never shown."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import trio
from eth_keys.datatypes import PrivateKey

from exchanges import Instrument, VenueTransportError
from exchanges.backpack import public_key_b64
from supervisor._assembly import assemble
from supervisor._config import ConfigError, load_config
from supervisor._live import CLOCK_RESYNC_S, LiveVenue

LIVE = Path(__file__).resolve().parents[2] / "examples" / "live.toml"

ASTER_KEY = "0x" + "4c" * 32
BACKPACK_SEED = base64.b64encode(bytes(range(32))).decode()


def live_environ() -> dict[str, str]:
    """Every variable live.toml names, with values that pass the adapters' own checks."""
    signer = PrivateKey(bytes.fromhex(ASTER_KEY[2:])).public_key.to_checksum_address()
    environ: dict[str, str] = {}
    for account in ("MM", "HEDGE", "ARB"):
        environ[f"ASTER_{account}_USER"] = "0x" + "ab" * 20
        environ[f"ASTER_{account}_SIGNER"] = signer
        environ[f"ASTER_{account}_PRIVATE_KEY"] = ASTER_KEY
        environ[f"BACKPACK_{account}_API_KEY"] = public_key_b64(BACKPACK_SEED)
        environ[f"BACKPACK_{account}_PRIVATE_KEY"] = BACKPACK_SEED
    return environ


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "live.toml"
    path.write_text(text)
    return path


def live_with(old: str, new: str) -> str:
    text = LIVE.read_text()
    assert old in text, old
    return text.replace(old, new, 1)


def test_assemble_when_no_credentials_are_set_then_names_the_first_variable_and_key(
    tmp_path: Path,
):
    with pytest.raises(ConfigError) as info:
        assemble(load_config(LIVE), tmp_path / "home", environ={}, source=LIVE)
    assert info.value.path == str(LIVE)
    assert info.value.key == "venues[0].accounts.mm.user_env"
    assert info.value.reason == "environment variable ASTER_MM_USER is not set"
    assert not (tmp_path / "home").exists()  # nothing written: no journal, no state


@pytest.mark.parametrize(
    ("missing", "key"),
    [
        ("ASTER_HEDGE_PRIVATE_KEY", "venues[0].accounts.hedge.private_key_env"),
        ("BACKPACK_ARB_PRIVATE_KEY", "venues[1].accounts.arb.private_key_env"),
        ("BACKPACK_MM_API_KEY", "venues[1].accounts.mm.api_key_env"),
    ],
)
def test_assemble_when_one_variable_is_unset_then_names_it_and_shows_no_value(
    tmp_path: Path, missing: str, key: str
):
    environ = live_environ()
    del environ[missing]
    with pytest.raises(ConfigError) as info:
        assemble(load_config(LIVE), tmp_path, environ=environ)
    assert info.value.key == key
    assert missing in info.value.reason
    for value in environ.values():
        assert value not in str(info.value)


def test_assemble_when_a_key_does_not_match_its_public_half_then_refuses_without_the_value(
    tmp_path: Path,
):
    environ = live_environ()
    environ["BACKPACK_HEDGE_PRIVATE_KEY"] = base64.b64encode(bytes(32)).decode()
    environ["ASTER_ARB_PRIVATE_KEY"] = "0x" + "5d" * 32
    with pytest.raises(ConfigError) as info:
        assemble(load_config(LIVE), tmp_path, environ=environ)
    assert info.value.key == "venues[0].accounts.arb.private_key_env"
    assert "ASTER_ARB_PRIVATE_KEY" in info.value.reason
    assert "5d5d" not in str(info.value)


def test_assemble_when_every_variable_is_set_then_every_venue_has_a_market_and_accounts(
    tmp_path: Path,
):
    assembly = assemble(load_config(LIVE), tmp_path, environ=live_environ())
    assert list(assembly.markets) == ["aster", "backpack"]
    assert assembly.venues == {}  # paper venues only
    assert assembly.live["aster"].symbols == ["BTCUSDT"]
    client = assembly.account_client("backpack", "hedge")
    assert (client.venue, client.account) == ("backpack", "hedge")
    assert assembly.account_client("aster", "mm").venue == "aster"
    names = [child.name for branch in assembly.tree().children
             for child in getattr(branch, "children", ())]
    assert {"gateway.aster.mm", "feed.aster", "feed.backpack", "arb-btc"} <= set(names)


async def test_open_when_the_venue_does_not_list_a_symbol_then_names_venue_and_symbol():
    venue = LiveVenue(name="aster", key="venues[0]", source="live.toml",
                      symbols=["BTCUSDT", "NOPEUSDT"], market=_Market(["BTCUSDT"]), accounts={})
    with pytest.raises(ConfigError) as info:
        await venue.open()
    assert str(info.value) == ("live.toml: venues[0].symbols[1]: "
                               "aster lists no trading symbol 'NOPEUSDT'")


async def test_open_when_every_symbol_is_listed_then_returns_them_in_config_order():
    market = _Market(["ETHUSDT", "BTCUSDT", "SOLUSDT"])
    venue = LiveVenue(name="aster", key="venues[0]", source="live.toml",
                      symbols=["SOLUSDT", "BTCUSDT"], market=market, accounts={})
    assert [i.symbol for i in await venue.open()] == ["SOLUSDT", "BTCUSDT"]


async def test_keep_clocks_synced_when_running_then_measures_again_and_survives_a_failure(
    autojump_clock, caplog: pytest.LogCaptureFixture
):
    calls: list[float] = []

    async def sync() -> int:
        calls.append(trio.current_time())
        if len(calls) == 1:
            raise VenueTransportError("aster", "GET /fapi/v1/time: no response")
        return 0

    venue = LiveVenue(name="aster", key="venues[0]", source="live.toml", symbols=["BTCUSDT"],
                      market=_Market(["BTCUSDT"]), accounts={}, clock_syncs=[sync])
    with trio.move_on_after(2 * CLOCK_RESYNC_S + 1):
        await venue.keep_clocks_synced()
    assert calls == [CLOCK_RESYNC_S, 2 * CLOCK_RESYNC_S]
    assert "aster: clock resync failed" in caplog.text


@pytest.mark.parametrize(
    ("old", "new", "key", "reason"),
    [
        ('symbol = "BTCUSDT"', 'symbol = "ETHUSDT"', "strategies[0].params.symbol",
         "'ETHUSDT' is not one of venue aster's symbols (BTCUSDT)"),
        ('signer_env = "ASTER_MM_SIGNER"', 'api_key_env = "ASTER_MM_API_KEY"',
         "venues[0].accounts.mm", "both credential schemes are set"),
        ('signer_env = "ASTER_MM_SIGNER"\n', "", "venues[0].accounts.mm.signer_env",
         "V3 API wallet credentials need user_env + signer_env + private_key_env"),
        ('api_key_env = "BACKPACK_MM_API_KEY"', 'api_key_env = "BACKPACK_MM_API_KEY"\nx = 1',
         "venues[1].accounts.mm", "unknown field `x`"),
        ('name = "aster"            #', 'name = "aster-main" #', "venues[0].name",
         "must be named 'aster'"),
        ('symbols = ["BTC_USDC_PERP"]', "symbols = []", "venues[1].symbols", "length >= 1"),
        ('kind = "backpack"', 'kind = "binance"', "venues[1].kind",
         "unknown venue kind 'binance'; known: aster, backpack, paper"),
    ],
)
def test_load_config_when_a_live_venue_is_wrong_then_error_names_file_key_and_reason(
    tmp_path: Path, old: str, new: str, key: str, reason: str
):
    path = write(tmp_path, live_with(old, new))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert (info.value.path, info.value.key) == (str(path), key)
    assert reason in info.value.reason


@pytest.mark.parametrize("secret", [
    "c2VjcmV0LXNlZWQtdmFsdWU=+/",  # base64
    "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83",  # an HMAC secret
    "Xk2PqL9vN3mR7tY1wZ8aB4cD6eF0gH5jK2lM9nO3pQ7",  # base64 of 32 bytes, no padding
])
def test_load_config_when_a_credential_is_pasted_in_place_of_its_name_then_never_repeats_it(
    tmp_path: Path, secret: str,
):
    path = write(tmp_path, live_with('private_key_env = "BACKPACK_MM_PRIVATE_KEY"',
                                     f'private_key_env = "{secret}"'))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == "venues[1].accounts.mm.private_key_env"
    assert secret not in str(info.value)


def test_run_when_a_credential_is_unset_then_exits_2_naming_it_and_starts_nothing(
    steward_home: Path,
):
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith(("ASTER_", "BACKPACK_"))}
    result = subprocess.run([sys.executable, "-m", "supervisor.cli", "run", "--plain",
                             str(LIVE)], capture_output=True, text=True, timeout=60, env=environ)
    assert result.returncode == 2, result.stderr
    assert (f"{LIVE}: venues[0].accounts.mm.user_env: environment variable ASTER_MM_USER "
            f"is not set") in result.stderr
    assert not (steward_home / "journal.sqlite").exists()


class _Market:
    """A venue listing `symbols`; nothing else is asked of it here."""

    venue = "aster"

    def __init__(self, symbols: list[str]) -> None:
        self.symbols = symbols

    async def instruments(self) -> list[Instrument]:
        return [_instrument(symbol) for symbol in self.symbols]

    async def server_time_ns(self) -> int:
        return 0

    def stream_market(self, symbols: object) -> object:
        raise NotImplementedError


def _instrument(symbol: str) -> Instrument:
    return Instrument(venue="aster", symbol=symbol, base=symbol[:3], quote="USDT",
                      tick_size=Decimal("0.1"), step_size=Decimal("0.001"),
                      min_qty=Decimal("0.001"), min_notional=Decimal(5), kind="perp")
