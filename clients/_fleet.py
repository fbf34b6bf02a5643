"""A fleet of daemons: `fleet.toml` lists them; `kill_fleet` halts them all in parallel.

```toml
[[hosts]]
name = "ams-1"                       # how outcomes name the host
address = "127.0.0.2:50051"
token_env = "STEWARD_TOKEN_AMS1"     # or token_file = "tokens/ams-1.token" (relative to this file)
# ca_file = "ca.pem"                 # TLS (required beyond loopback); relative to this file
# cert_file = "me.pem"               # mTLS: this client's certificate ...
# key_file = "me.key"                # ... and its key
# server_name = "ams-1.internal"     # when the certificate names another host than `address`
```

A kill switch must still work when part of the fleet is broken, so one host's problem — an
unset token variable, an unreadable token file, a daemon that is down or frozen — becomes that
host's outcome, never an exception that spares the others. Only a fleet file that is itself
wrong (bad TOML, unknown keys, duplicate names) stops everything, before any call is made.

Every host gets the same absolute deadline (default 2 s). Within it a host that answers
UNAVAILABLE (not listening yet, restarting) is retried with a short backoff on a fresh channel
(a channel's own reconnect backoff starts at 1 s); a host that accepts the connection and never
answers (SIGSTOP, a hung box) uses the rest of the deadline and is reported by name. Retrying
EmergencyStop is safe: a second call re-issues cancel-all and says the daemon was already halted.
"""

from __future__ import annotations

import ipaddress
import os
import time
import tomllib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import grpc
import msgspec
from google.protobuf.message import Message

from ._client import ControlClient
from ._exceptions import ControlClientError, DeadlineExceeded, Unavailable
from ._tls import TlsConfigError, TlsOptions

DEFAULT_DEADLINE_S: Final = 2.0
"""For the whole fleet: a kill switch that waits longer on a dead host is not one."""
RETRY_FIRST_S: Final = 0.05  # the first pause after UNAVAILABLE, doubled up to RETRY_MAX_S
RETRY_MAX_S: Final = 0.4

M = TypeVar("M", bound=Message)


class FleetError(Exception):
    """The fleet file cannot be used at all: unreadable, not TOML, or not the right shape."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class FleetHost(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One daemon. Exactly one of `token_env`, `token_file`, `token` says how to authenticate;
    an inline `token` works but is discouraged (the file then is a secret)."""

    name: str
    address: str  # host:port of the daemon's control plane
    token_env: str | None = None  # the name of an environment variable holding the token
    token_file: str | None = None  # a file holding the token; relative to the fleet file
    token: str | None = None  # discouraged: prefer token_env or token_file
    ca_file: str | None = None  # TLS: the CA that signed the daemon's certificate
    cert_file: str | None = None  # mTLS: this client's certificate ...
    key_file: str | None = None  # ... and its key
    server_name: str | None = None  # TLS: the name to check the certificate against

    @property
    def tls(self) -> bool:
        return any((self.ca_file, self.cert_file, self.key_file))


class FleetFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What `fleet.toml` holds."""

    hosts: list[FleetHost]


@dataclass(frozen=True)
class Fleet:
    """A loaded fleet file: its hosts, and where relative token files are read from."""

    path: Path
    hosts: list[FleetHost]

    @property
    def base(self) -> Path:
        return self.path.resolve().parent

    @property
    def warnings(self) -> list[str]:
        return [f"host {host.name!r}: an inline token is discouraged; use token_env or "
                "token_file" for host in self.hosts if host.token is not None]


def load_fleet(path: Path) -> Fleet:
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as exc:
        raise FleetError(path, f"cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise FleetError(path, f"not valid TOML: {exc}") from None
    try:
        fleet = msgspec.convert(raw, FleetFile, strict=True)
    except msgspec.ValidationError as exc:
        raise FleetError(path, str(exc)) from None
    _check(path, fleet)
    return Fleet(path, fleet.hosts)


def _check(path: Path, fleet: FleetFile) -> None:
    if not fleet.hosts:
        raise FleetError(path, "no [[hosts]]")
    seen: set[str] = set()
    for index, host in enumerate(fleet.hosts):
        where = f"hosts[{index}]"
        if not host.name:
            raise FleetError(path, f"{where}.name is empty")
        if host.name in seen:
            raise FleetError(path, f"{where}.name: {host.name!r} appears twice")
        seen.add(host.name)
        _, sep, port = host.address.rpartition(":")
        if not sep or not port.isdigit():
            raise FleetError(path, f"{where}.address must be host:port, got {host.address!r}")
        ways = [key for key in ("token_env", "token_file", "token")
                if getattr(host, key) is not None]
        if len(ways) != 1:
            raise FleetError(path, f"{where} ({host.name}): give exactly one of token_env, "
                             f"token_file, token (got {', '.join(ways) or 'none'})")
        if (host.cert_file is None) != (host.key_file is None):
            raise FleetError(path, f"{where} ({host.name}): cert_file and key_file go together")


# ---- outcomes -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class KillOutcome:
    """One host's answer to EmergencyStop. `halted` only when the daemon confirmed it."""

    name: str
    address: str
    halted: bool = False
    already_halted: bool = False
    orders_cancelled: int = 0
    accounts: list[dict[str, Any]] = field(default_factory=list)  # the reply's, per venue account
    error: str = ""
    attempts: int = 0
    elapsed_ms: float = 0.0


@dataclass(frozen=True, kw_only=True)
class StatusOutcome:
    """One host's trading state; `state` is empty when it did not answer (see `error`)."""

    name: str
    address: str
    state: str = ""
    reason: str = ""
    open_orders: int = 0
    error: str = ""
    attempts: int = 0
    elapsed_ms: float = 0.0


def kill_fleet(fleet: Fleet, reason: str, *, flatten: bool = False,
               deadline_s: float = DEFAULT_DEADLINE_S) -> list[KillOutcome]:
    """EmergencyStop on every host at once; returns in `fleet.hosts` order within
    `deadline_s` (plus thread start-up), whatever the hosts do."""

    def one(host: FleetHost, deadline: float) -> KillOutcome:
        started = time.monotonic()
        reply, error, attempts = _with_retries(
            fleet, host, deadline, lambda client: client.emergency_stop(reason, flatten=flatten))
        elapsed_ms = (time.monotonic() - started) * 1000
        if reply is None:
            return KillOutcome(name=host.name, address=host.address, error=error,
                               attempts=attempts, elapsed_ms=elapsed_ms)
        return KillOutcome(
            name=host.name, address=host.address, halted=True,
            already_halted=bool(reply["already_halted"]),
            orders_cancelled=sum(int(a["orders_cancelled"]) for a in reply["accounts"]),
            accounts=list(reply["accounts"]), attempts=attempts, elapsed_ms=elapsed_ms)

    return _fan_out(fleet, deadline_s, one)


def fleet_status(fleet: Fleet, *, deadline_s: float = DEFAULT_DEADLINE_S) -> list[StatusOutcome]:
    """GetStatus on every host at once, bounded like `kill_fleet`."""

    def one(host: FleetHost, deadline: float) -> StatusOutcome:
        started = time.monotonic()
        reply, error, attempts = _with_retries(fleet, host, deadline,
                                               lambda client: client.status())
        elapsed_ms = (time.monotonic() - started) * 1000
        if reply is None:
            return StatusOutcome(name=host.name, address=host.address, error=error,
                                 attempts=attempts, elapsed_ms=elapsed_ms)
        trading = reply["trading"]
        return StatusOutcome(name=host.name, address=host.address, state=trading["state"],
                             reason=trading["reason"], open_orders=len(reply["open_orders"]),
                             attempts=attempts, elapsed_ms=elapsed_ms)

    return _fan_out(fleet, deadline_s, one)


# ---- the fan-out ----------------------------------------------------------------------------

R = TypeVar("R")


def _fan_out(fleet: Fleet, deadline_s: float,
             one: Callable[[FleetHost, float], R]) -> list[R]:
    if not deadline_s > 0:
        raise ValueError(f"deadline_s must be positive, got {deadline_s!r}")
    deadline = time.monotonic() + deadline_s
    # Every call is bounded by `deadline` (gRPC deadlines), so waiting for the threads is too.
    with ThreadPoolExecutor(max_workers=len(fleet.hosts),
                            thread_name_prefix="steward-fleet") as pool:
        futures = [pool.submit(one, host, deadline) for host in fleet.hosts]
        return [future.result() for future in futures]


def _with_retries(fleet: Fleet, host: FleetHost, deadline: float,
                  call: Callable[[ControlClient], dict[str, Any]]
                  ) -> tuple[dict[str, Any] | None, str, int]:
    """(reply, "", attempts), or (None, why not, attempts). Never raises for the host's sake."""
    try:
        token = _token(fleet, host)
        tls = _tls(fleet, host)
    except _HostError as exc:
        return None, str(exc), 0
    attempts = 0
    pause = RETRY_FIRST_S
    error = ""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None, error or "no time left before the deadline", attempts
        attempts += 1
        try:
            with _DeadlineClient(host.address, token=token, tls=tls,
                                 deadline=deadline) as client:
                return call(client), "", attempts
        except TlsConfigError as exc:  # a file missing or not PEM: no retry will fix it
            return None, f"tls: {exc}", attempts
        except DeadlineExceeded:
            return None, "no answer within the deadline", attempts
        except Unavailable as exc:  # not listening (yet): retry while there is time
            error = f"unavailable: {exc.details}"
        except ControlClientError as exc:  # refused as asked: retrying would not help
            return None, f"{exc.code.name.lower()}: {exc.details}", attempts
        time.sleep(max(0.0, min(pause, deadline - time.monotonic())))
        pause = min(pause * 2, RETRY_MAX_S)


class _DeadlineClient(ControlClient):
    """A ControlClient whose every call also ends by one absolute (monotonic) deadline, so
    EmergencyStop's own generous timeout cannot outlast the fleet's."""

    def __init__(self, address: str, *, token: str, tls: TlsOptions | None,
                 deadline: float) -> None:
        super().__init__(address, token=token, tls=tls)
        self._deadline = deadline

    def _call(self, method: Callable[..., M], request: Message,
              timeout_s: float | None = None) -> M:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlineExceeded(grpc.StatusCode.DEADLINE_EXCEEDED, "fleet deadline passed")
        return super()._call(method, request, min(timeout_s or self.timeout_s, remaining))


class _HostError(Exception):
    """This host cannot be called as configured; the others still are."""


def _token(fleet: Fleet, host: FleetHost) -> str:
    if host.token is not None:
        return host.token
    if host.token_env is not None:
        token = os.environ.get(host.token_env, "").strip()
        if not token:
            raise _HostError(f"token variable ${host.token_env} is not set")
        return token
    assert host.token_file is not None  # load_fleet checked that exactly one is given
    path = fleet.base / Path(host.token_file).expanduser()
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise _HostError(f"cannot read token_file {str(path)!r}: "
                         f"{exc.strerror or exc}") from None
    if not token:
        raise _HostError(f"token_file {str(path)!r} is empty")
    return token


def _tls(fleet: Fleet, host: FleetHost) -> TlsOptions | None:
    if host.tls:
        def resolve(name: str | None) -> Path | None:
            return None if name is None else fleet.base / Path(name).expanduser()

        return TlsOptions(resolve(host.ca_file), resolve(host.cert_file),
                          resolve(host.key_file), host.server_name)
    hostname = host.address.rpartition(":")[0].strip("[]")
    try:
        loopback = hostname == "localhost" or ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise _HostError(f"{host.address} is not a loopback address and no TLS is configured; "
                         "refusing to send the token in clear text")
    return None
