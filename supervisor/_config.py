"""The daemon's configuration: one TOML file, validated whole before anything starts.

A bad file stops start-up with the file, the key and the reason (`paper.toml: venues[1].kind:
unknown venue kind 'papr'; known: aster, backpack, paper`). Credentials never appear in the
file, only the names of the environment variables that hold them; `assemble` reads those when
the daemon starts. A venue is a tagged union on `kind`: paper (simulated), aster, backpack.
Parameter schemas are msgspec Structs, so the same types give JSON schemas for the control
plane.
"""

from __future__ import annotations

import copy
import re
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, ClassVar, Final, Literal

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


ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
"""What an environment variable's name looks like: a value that does not is probably a pasted
secret, and must be refused without being repeated."""
LOOKS_LIKE_SECRET = re.compile(r"[0-9A-Fa-f]{16,}|[A-Za-z0-9_]{41,}")
"""Names that pass ENV_NAME but are more likely a pasted key: long hex (Aster API keys and
secrets, private keys without 0x) or a long run with no room for a reader's word breaks."""


class PaperVenueConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                       tag="paper", tag_field="kind"):
    """A simulated exchange quoting the `[paper]` market (`kind = "paper"`)."""

    kind: ClassVar[Literal["paper"]] = "paper"
    name: str
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


class AsterAccountConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where one Aster account's credentials are: the NAMES of environment variables, read
    when the daemon starts. Exactly one scheme: V1 HMAC (`api_key_env`, `api_secret_env`) or
    V3 API wallet (`user_env`, `signer_env`, `private_key_env`; Aster issues only these now)."""

    api_key_env: str | None = None
    api_secret_env: str | None = None
    user_env: str | None = None
    """The main wallet address the API wallet trades for."""
    signer_env: str | None = None
    """The API wallet's address; `private_key_env`'s key must derive it."""
    private_key_env: str | None = None


class BackpackAccountConfig(msgspec.Struct, frozen=True, kw_only=True,
                            forbid_unknown_fields=True):
    """Where one Backpack account's credentials are: environment variable NAMES."""

    api_key_env: str
    """Holds the API key: the base64 ED25519 public key."""
    private_key_env: str
    """Holds the base64 32-byte ED25519 seed whose public key is the API key."""


Symbols = Annotated[list[str], msgspec.Meta(min_length=1)]


class AsterVenueConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                       tag="aster", tag_field="kind"):
    """AsterDEX USDⓈ-M perpetual futures (`kind = "aster"`).

    Pacing: Aster counts orders per account (exchangeInfo's `rateLimits`, e.g. `ORDERS
    1200/MINUTE`, and per 10 s), so 10/s with a burst of 20 stays inside the minute's budget
    while leaving room for cancels and queries, which share the IP's request weight.
    """

    kind: ClassVar[Literal["aster"]] = "aster"
    name: str = "aster"
    """Must be "aster": the adapter stamps every order, fill and quote with that venue name."""
    rest_url: str = "https://fapi.asterdex.com"
    ws_url: str = "wss://fstream.asterdex.com"
    symbols: Symbols
    """Traded and streamed, as the venue names them (`BTCUSDT`); each must be listed."""
    accounts: dict[str, AsterAccountConfig] = msgspec.field(default_factory=dict)
    orders_per_s: float = 10.0
    order_burst: int = 20


class BackpackVenueConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                          tag="backpack", tag_field="kind"):
    """Backpack Exchange, spot and perpetuals (`kind = "backpack"`).

    Pacing: Backpack publishes no rate limit; ccxt throttles it at 20 requests/s (50 ms per
    request), so 10 orders/s with a burst of 20 keeps the other half for cancels and queries.
    """

    kind: ClassVar[Literal["backpack"]] = "backpack"
    name: str = "backpack"
    """Must be "backpack": the adapter stamps everything with that venue name."""
    rest_url: str = "https://api.backpack.exchange"
    ws_url: str = "wss://ws.backpack.exchange"
    symbols: Symbols
    """Traded and streamed, as the venue names them (`BTC_USDC_PERP`, `SOL_USDC`)."""
    accounts: dict[str, BackpackAccountConfig] = msgspec.field(default_factory=dict)
    orders_per_s: float = 10.0
    order_burst: int = 20


LiveVenueConfig = AsterVenueConfig | BackpackVenueConfig
VenueConfig = PaperVenueConfig | AsterVenueConfig | BackpackVenueConfig
"""Any venue: `name`, `kind`, `accounts`, `orders_per_s` and `order_burst` are common; the rest
depends on the kind (test `isinstance` before reading a paper venue's fees)."""
VENUE_KINDS: Final = ("aster", "backpack", "paper")


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
        key = _name_dict_keys(raw, key, reason)
        raise ConfigError(path, key, _unknown_kind(raw, key) or reason) from None
    _check_live_venues(path, config)
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
            if not isinstance(venue, PaperVenueConfig) and leg.symbol not in venue.symbols:
                raise ConfigError(path, f"{key}.symbol",
                                  f"{leg.symbol!r} is not one of venue {venue.name}'s symbols "
                                  f"({', '.join(venue.symbols)})")
        reference_venues: list[str] = params.reference_venues()  # type: ignore[attr-defined]
        for reference in reference_venues:
            if reference not in venues:
                raise ConfigError(path, f"{key}.follow_venue", f"no venue named {reference!r}")


def _check_live_venues(path: Path, config: DaemonConfig) -> None:
    """A live venue's name is its kind, and each account names its credentials' variables in
    exactly one complete scheme. Names only: the variables are read by `assemble`."""
    for index, venue in enumerate(config.venues):
        if isinstance(venue, PaperVenueConfig):
            continue
        key = f"venues[{index}]"
        if venue.name != venue.kind:
            raise ConfigError(path, f"{key}.name",
                              f"a {venue.kind} venue must be named {venue.kind!r}: the adapter "
                              f"reports everything as venue {venue.kind!r}")
        for symbol_index, symbol in enumerate(venue.symbols):
            if symbol in venue.symbols[:symbol_index]:
                raise ConfigError(path, f"{key}.symbols[{symbol_index}]",
                                  f"duplicate symbol {symbol!r}")
        for account, credentials in venue.accounts.items():
            account_key = f"{key}.accounts.{account}"
            if isinstance(credentials, AsterAccountConfig):
                _check_aster_account(path, account_key, credentials)
            for field in credentials.__struct_fields__:
                name = getattr(credentials, field)
                if name is not None and (ENV_NAME.fullmatch(name) is None
                                         or LOOKS_LIKE_SECRET.fullmatch(name) is not None):
                    # Never repeat the value: it may be the secret itself, pasted by mistake.
                    raise ConfigError(path, f"{account_key}.{field}",
                                      "must be the NAME of an environment variable (letters, "
                                      "digits, _), not a credential")


ASTER_SCHEMES: Final = {
    "V1 HMAC": ("api_key_env", "api_secret_env"),
    "V3 API wallet": ("user_env", "signer_env", "private_key_env"),
}


def _check_aster_account(path: Path, key: str, credentials: AsterAccountConfig) -> None:
    used = {scheme: [f for f in fields if getattr(credentials, f) is not None]
            for scheme, fields in ASTER_SCHEMES.items()}
    either = " or ".join(f"{' + '.join(fields)} ({scheme})"
                         for scheme, fields in ASTER_SCHEMES.items())
    started = [scheme for scheme, fields in used.items() if fields]
    if len(started) != 1:
        reason = "both credential schemes are set" if started else "no credentials"
        raise ConfigError(path, key, f"{reason}: set exactly one of {either}")
    scheme = started[0]
    missing = [f for f in ASTER_SCHEMES[scheme] if f not in used[scheme]]
    if missing:
        raise ConfigError(path, f"{key}.{missing[0]}",
                          f"{scheme} credentials need {' + '.join(ASTER_SCHEMES[scheme])}")


def _name_dict_keys(raw: dict[str, Any], key: str, reason: str) -> str:
    """msgspec says `venues[1].accounts[...]` for a bad value in a table; we find which entry
    by converting the file with that table cut down to one entry at a time."""
    while "[...]" in key:
        prefix = key[:key.index("[...]")]
        steps: list[str | int] = [int(part) if part.isdigit() else part
                                  for part in re.findall(r"[^.\[\]]+", prefix)]
        try:
            table = _walk(raw, steps)
        except (KeyError, IndexError, TypeError):
            return key
        if not isinstance(table, dict):
            return key
        for name, value in table.items():
            trial = copy.deepcopy(raw)
            _walk(trial, steps[:-1])[steps[-1]] = {name: value}
            try:
                msgspec.convert(trial, DaemonConfig, strict=False)
            except msgspec.ValidationError as exc:
                if _split_validation_error(str(exc))[1] == reason:
                    key = key.replace("[...]", f".{name}", 1)
                    break
        else:
            return key
    return key


def _walk(node: Any, steps: list[str | int]) -> Any:
    for step in steps:
        node = node[step]
    return node


def _unknown_kind(raw: object, key: str) -> str | None:
    """msgspec says `Invalid value 'papr'`; we say which kinds there are."""
    match = re.fullmatch(r"venues\[(\d+)\]\.kind", key)
    if match is None or not isinstance(raw, dict):
        return None
    try:
        kind = raw["venues"][int(match.group(1))]["kind"]
    except (KeyError, IndexError, TypeError):
        return None
    return f"unknown venue kind {kind!r}; known: {', '.join(VENUE_KINDS)}"


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

