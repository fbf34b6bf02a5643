"""The daemon's configuration: one TOML file, validated whole before anything starts.

A bad file stops start-up with the file, the key and the reason (`paper.toml: venues[1].kind:
Expected 'paper', got 'papr'`). Credentials never appear in the file, only the names of the
environment variables that hold them. Parameter schemas are msgspec Structs, so the same types
give JSON schemas for the control plane.
"""

from __future__ import annotations

import re
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import msgspec

from actors.risk import RiskConfig
from actors.strategies import STRATEGY_KINDS, Leg, ParamsError
from actors.strategies._base import check_finite
from exchanges.paper import SymbolSpec

STRATEGY_PARAMS: dict[str, type[msgspec.Struct]] = {
    kind: spec.params_type for kind, spec in STRATEGY_KINDS.items()
}


class ConfigError(ValueError):
    """The file, the key and the reason; raised before anything starts."""

    def __init__(self, path: Path | str, key: str, reason: str) -> None:
        super().__init__(f"{path}: {key}: {reason}" if key else f"{path}: {reason}")
        self.path = str(path)
        self.key = key
        self.reason = reason


class ControlTokenConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One control-plane token. The token itself never goes in the file: `token_env` names the
    environment variable that holds it when the daemon starts."""

    name: str
    """Who the token stands for: journaled as the actor of every control action."""
    role: Literal["viewer", "operator", "admin", "kill"]
    token_env: str


class ControlConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    bind: str = "127.0.0.1:50051"
    """host:port of the gRPC control server; anything but loopback needs TLS."""
    tokens: list[ControlTokenConfig] = []
    """None: the daemon makes an admin token in STEWARD_HOME/control.token (mode 0600)."""
    tls_cert_file: str | None = None
    """PEM certificate chain the server presents (with `tls_key_file`: serve TLS). Relative
    paths are under the config file's directory."""
    tls_key_file: str | None = None
    """PEM private key of `tls_cert_file` (keep it mode 0600). Relative: as above."""
    tls_client_ca_file: str | None = None
    """PEM CA bundle: set, the server requires a client certificate signed by it (mTLS) and
    journals its CN with the token name. Needs `tls_cert_file`. Relative: as above."""


class PaperConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The synthetic market every paper venue quotes (each through its own basis)."""

    seed: int = 7
    step_s: float = 0.1
    symbols: list[SymbolSpec]
    basis_sigma_bps_per_sqrt_s: float = 0.6
    basis_reversion_per_s: float = 0.02


class VenueConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    kind: Literal["paper"]
    accounts: dict[str, Decimal | dict[str, Decimal]]
    """Account name → starting balance in the quote asset, or `{ USDT = "10000", BTC = "0.2" }`
    per asset (spot trading needs the base asset too). Paper venues."""
    quote_asset: str = "USDT"
    maker_fee_rate: Decimal = Decimal("0.0001")
    taker_fee_rate: Decimal = Decimal("0.00035")
    funding_interval_s: float = 3600.0
    max_leverage: Decimal = Decimal(10)
    order_latency_s: float = 0.0
    orders_per_s: float = 20.0
    """The venue's order rate limit, per account: the gateway paces itself to it."""
    order_burst: int = 40


class StrategyConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    kind: str
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    """Validated by the strategy kind's parameter struct (see `steward schema`)."""


class DaemonConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str = "steward"
    control: ControlConfig = msgspec.field(default_factory=ControlConfig)
    journal_path: str = "journal.sqlite"
    """Relative paths are under STEWARD_HOME."""
    cancel_on_stop: bool = True
    """Cancel every order of every account when the daemon stops."""
    paper: PaperConfig | None = None
    venues: list[VenueConfig]
    risk: RiskConfig = msgspec.field(default_factory=RiskConfig)
    strategies: list[StrategyConfig] = msgspec.field(default_factory=list)

    def venue(self, name: str) -> VenueConfig:
        return next(v for v in self.venues if v.name == name)


def config_schema() -> dict[str, object]:
    """JSON schema of the config file, strategy parameter schemas included by kind."""
    schema = msgspec.json.schema(DaemonConfig)
    schema["strategy_params"] = {
        kind: msgspec.json.schema(params) for kind, params in sorted(STRATEGY_PARAMS.items())
    }
    return schema


def load_config(path: Path) -> DaemonConfig:
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(path, "", "no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "", f"not valid TOML: {exc}") from None
    try:
        config = msgspec.convert(raw, DaemonConfig, strict=False)
    except msgspec.ValidationError as exc:
        key, reason = _split_validation_error(str(exc))
        raise ConfigError(path, key, reason) from None
    _check_references(path, config)
    return _with_tls_paths(path, config)


def strategy_params(path: Path | str, index: int, strategy: StrategyConfig) -> msgspec.Struct:
    params_type = STRATEGY_PARAMS.get(strategy.kind)
    key = f"strategies[{index}]"
    if params_type is None:
        raise ConfigError(path, f"{key}.kind", f"unknown strategy kind {strategy.kind!r}; "
                          f"known: {', '.join(sorted(STRATEGY_PARAMS))}")
    try:
        params = msgspec.convert(strategy.params, params_type, strict=False)
        check_finite(params)
    except msgspec.ValidationError as exc:
        inner, reason = _split_validation_error(str(exc))
        raise ConfigError(path, f"{key}.params.{inner}".rstrip("."), reason) from None
    except ParamsError as exc:
        raise ConfigError(path, f"{key}.params", str(exc)) from None
    return params


def _check_references(path: Path, config: DaemonConfig) -> None:
    _unique(path, "venues", [v.name for v in config.venues])
    _unique(path, "strategies", [s.name for s in config.strategies])
    if any(v.kind == "paper" for v in config.venues) and config.paper is None:
        raise ConfigError(path, "paper", "paper venues need a [paper] section with symbols")
    paper_symbols = {s.symbol for s in config.paper.symbols} if config.paper else set()
    venues = {v.name: v for v in config.venues}
    for index, strategy in enumerate(config.strategies):
        params = strategy_params(path, index, strategy)
        key = f"strategies[{index}].params"
        legs: list[Leg] = params.legs()  # type: ignore[attr-defined]
        for leg in legs:
            venue = venues.get(leg.venue)
            if venue is None:
                raise ConfigError(path, f"{key}.venue", f"no venue named {leg.venue!r}")
            if leg.account not in venue.accounts:
                raise ConfigError(path, f"{key}.account",
                                  f"venue {venue.name} has no account {leg.account!r}")
            if venue.kind == "paper" and leg.symbol not in paper_symbols:
                raise ConfigError(path, f"{key}.symbol", f"no paper symbol {leg.symbol!r}")
        reference_venues: list[str] = params.reference_venues()  # type: ignore[attr-defined]
        for reference in reference_venues:
            if reference not in venues:
                raise ConfigError(path, f"{key}.follow_venue", f"no venue named {reference!r}")


def _with_tls_paths(path: Path, config: DaemonConfig) -> DaemonConfig:
    """Check the control TLS files go together, and make relative ones absolute (under the
    config file's directory)."""
    control = config.control
    if (control.tls_cert_file is None) != (control.tls_key_file is None):
        raise ConfigError(path, "control.tls_key_file" if control.tls_key_file is None
                          else "control.tls_cert_file",
                          "tls_cert_file and tls_key_file go together")
    if control.tls_client_ca_file is not None and control.tls_cert_file is None:
        raise ConfigError(path, "control.tls_client_ca_file",
                          "mTLS needs the server's own tls_cert_file and tls_key_file")
    base = path.resolve().parent
    changes = {}
    for key in ("tls_cert_file", "tls_key_file", "tls_client_ca_file"):
        value: str | None = getattr(control, key)
        if value is None:
            continue
        file = base / Path(value).expanduser()  # an absolute value stays as it is
        if not file.is_file():
            raise ConfigError(path, f"control.{key}", f"no such file: {file}")
        changes[key] = str(file)
    if not changes:
        return config
    return msgspec.structs.replace(config,
                                   control=msgspec.structs.replace(control, **changes))


def _unique(path: Path, key: str, names: list[str]) -> None:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            raise ConfigError(path, f"{key}[{index}].name", f"duplicate name {name!r}")
        seen.add(name)


def _split_validation_error(message: str) -> tuple[str, str]:
    """msgspec says `Expected int, got str - at $.paper.seed`; we say `paper.seed`."""
    match = re.match(r"^(?P<reason>.*?)(?: - at `(?P<key>[^`]*)`)?$", message, re.DOTALL)
    assert match is not None
    key = (match.group("key") or "").removeprefix("$").removeprefix(".")
    return key, match.group("reason")

