"""Live venues: a config's Aster or Backpack venue as the adapters the daemon runs on.

Built in two steps, because they fail differently. `aster_venue` / `backpack_venue` run in
`assemble`, before anything starts: they read every account's credentials from the
environment (a missing variable is a ConfigError naming the variable and its key, never a
value) and make the clients, which do no I/O yet. `LiveVenue.open` runs once the daemon
starts: it measures the venue's clock (signed requests carry a timestamp the venue checks
against a window of a few seconds) and fetches the configured symbols' instruments, which the
strategies need before the tree is built.

One REST client, with its own auth, per account, so one account's credentials never sign
another's requests; one unsigned client for market data.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

import trio

from exchanges import AccountClient, Instrument, MarketDataClient, VenueError
from exchanges.aster import AsterAccount, AsterHmacAuth, AsterMarketData, AsterRest, AsterWalletAuth
from exchanges.backpack import (
    BackpackAccount,
    BackpackAuth,
    BackpackMarketData,
    BackpackRest,
    wall_clock_ms,
)

from ._config import (
    AsterAccountConfig,
    AsterVenueConfig,
    BackpackAccountConfig,
    BackpackVenueConfig,
    ConfigError,
)

CLOSE_S: Final = 5.0  # closing idle HTTP connections; never worth holding up a stop for
CLOCK_RESYNC_S: Final = 300.0

logger = logging.getLogger(__name__)


class _Closable(Protocol):
    async def aclose(self) -> None: ...


@dataclass
class LiveVenue:
    """A live venue's clients: market data for its feed, one account client per gateway."""

    name: str
    key: str
    """Its place in the config (`venues[2]`), for errors."""
    source: str
    """The config file, for errors."""
    symbols: list[str]
    market: MarketDataClient
    accounts: dict[str, AccountClient]
    clock_syncs: list[Callable[[], Awaitable[object]]] = field(default_factory=list)
    closables: list[_Closable] = field(default_factory=list)

    async def open(self) -> list[Instrument]:
        """Sync the clocks, then the configured symbols' instruments, in config order.

        A configured symbol the venue does not list (or not as trading) is a ConfigError
        naming it: quoting a symbol we cannot price or size would be a guess.
        """
        for sync in self.clock_syncs:
            await sync()
        listed = {instrument.symbol: instrument for instrument in await self.market.instruments()}
        for index, symbol in enumerate(self.symbols):
            if symbol not in listed:
                raise ConfigError(self.source, f"{self.key}.symbols[{index}]",
                                  f"{self.name} lists no trading symbol {symbol!r}")
        return [listed[symbol] for symbol in self.symbols]

    async def keep_clocks_synced(self) -> None:
        """Measure the venue's clock again every CLOCK_RESYNC_S while the daemon runs: after
        an NTP step or drift every signed request (cancels too) would be refused for its
        timestamp. A failed measurement keeps the last offset and is logged."""
        while True:
            await trio.sleep(CLOCK_RESYNC_S)
            for sync in self.clock_syncs:
                try:
                    await sync()
                except VenueError as exc:
                    logger.warning("%s: clock resync failed: %s", self.name, exc)

    async def aclose(self) -> None:
        """Close every client, shielded and bounded: this runs while the daemon stops."""
        with trio.move_on_after(CLOSE_S) as scope:
            scope.shield = True
            for closable in self.closables:
                await closable.aclose()


def aster_venue(config: AsterVenueConfig, environ: Mapping[str, str], *,
                key: str = "venues[0]", source: str = "config") -> LiveVenue:
    """Every account's auth first (all credentials checked before any client exists)."""
    auths = {account: _aster_auth(credentials, environ, f"{key}.accounts.{account}", source)
             for account, credentials in config.accounts.items()}
    public = AsterRest(None, base_url=config.rest_url)
    venue = LiveVenue(name=config.name, key=key, source=source, symbols=list(config.symbols),
                      market=AsterMarketData(public, ws_url=config.ws_url), accounts={},
                      closables=[public])
    for account, auth in auths.items():
        rest = AsterRest(auth, base_url=config.rest_url)
        venue.closables.append(rest)
        venue.clock_syncs.append(rest.sync_clock)  # the offset lives in this account's auth
        venue.accounts[account] = AsterAccount(rest, account=account, symbols=config.symbols,
                                               ws_url=config.ws_url)
    return venue


def backpack_venue(config: BackpackVenueConfig, environ: Mapping[str, str], *,
                   key: str = "venues[0]", source: str = "config") -> LiveVenue:
    """Every account's auth first; all of them sign with one clock synced to the venue's."""
    clock = VenueClock()
    auths = {account: _backpack_auth(credentials, environ, f"{key}.accounts.{account}",
                                     source, clock)
             for account, credentials in config.accounts.items()}
    public = BackpackRest(None, base_url=config.rest_url)
    venue = LiveVenue(name=config.name, key=key, source=source, symbols=list(config.symbols),
                      market=BackpackMarketData(public, ws_url=config.ws_url), accounts={},
                      closables=[public])
    if auths:
        venue.clock_syncs.append(lambda: clock.sync(public.server_time_ms))
    for account, auth in auths.items():
        rest = BackpackRest(auth, base_url=config.rest_url)
        venue.closables.append(rest)
        venue.accounts[account] = BackpackAccount(rest, account, ws_url=config.ws_url)
    return venue


class VenueClock:
    """Our wall clock in ms plus the measured offset to the venue's: what Backpack's auth
    stamps requests with (its `clock` hook), since the adapter keeps no offset itself."""

    def __init__(self) -> None:
        self.offset_ms = 0

    def __call__(self) -> int:
        return wall_clock_ms() + self.offset_ms

    async def sync(self, server_time_ms: Callable[[], Awaitable[int]]) -> int:
        """Server time − local time, against the midpoint of the round trip; returns it."""
        sent = wall_clock_ms()
        server = await server_time_ms()
        received = wall_clock_ms()
        self.offset_ms = server - (sent + received) // 2
        return self.offset_ms


def _aster_auth(credentials: AsterAccountConfig, environ: Mapping[str, str], key: str,
                source: str) -> AsterHmacAuth | AsterWalletAuth:
    read = _reader(credentials, environ, key, source)
    if credentials.api_key_env is not None:  # load_config made sure the scheme is complete
        return AsterHmacAuth(read("api_key_env"), read("api_secret_env"))
    user, signer, private_key = read("user_env"), read("signer_env"), read("private_key_env")
    try:
        return AsterWalletAuth(user, signer, private_key)
    except Exception:  # VenueAuthError or a key library's error; its text may quote the key
        raise ConfigError(source, f"{key}.private_key_env",
                          f"{credentials.private_key_env} does not hold the private key of the "
                          f"API wallet in {credentials.signer_env}") from None


def _backpack_auth(credentials: BackpackAccountConfig, environ: Mapping[str, str], key: str,
                   source: str, clock: Callable[[], int]) -> BackpackAuth:
    read = _reader(credentials, environ, key, source)
    api_key, seed = read("api_key_env"), read("private_key_env")
    try:
        return BackpackAuth(api_key, seed, clock=clock)
    except Exception:  # ValueError (bad seed, key mismatch); the text is not ours to vet
        raise ConfigError(source, f"{key}.private_key_env",
                          f"{credentials.private_key_env} must hold the base64 ED25519 seed "
                          f"whose public key is the API key in {credentials.api_key_env}"
                          ) from None


def _reader(credentials: AsterAccountConfig | BackpackAccountConfig,
            environ: Mapping[str, str], key: str, source: str) -> Callable[[str], str]:
    """`read(field)`: the value of the variable `field` names; a missing or empty one is a
    ConfigError naming the variable and the key, never showing any value."""

    def read(field_name: str) -> str:
        name: str | None = getattr(credentials, field_name)
        assert name is not None
        value = environ.get(name)
        if not value:
            raise ConfigError(source, f"{key}.{field_name}",
                              f"environment variable {name} is not set")
        return value

    return read
