"""From a DaemonConfig to running parts: venues, the journal, topics, and the tree's specs.

```
root (one_for_one)
├── core (rest_for_one): journal → positions → risk → gateways (one per venue account)
├── feeds (one_for_one): one feed per venue
└── strategies (one_for_one): one actor per configured strategy
```
Venues are not actors: they run beside the tree, start before it and stop after it, the way a
real exchange outlives the daemon. Paper venues are simulated exchanges; live ones (Aster,
Backpack) are the adapters' clients, whose credentials `assemble` reads and whose clocks and
instruments `running_venues` fetches, so the tree (whose strategies need instruments) is built
inside `running_venues`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import trio

from actors.feed import Feed, MarketTopics
from actors.gateway import Gateway
from actors.journal import DEFAULT_JOURNAL_CONFIG, JournalConfig
from actors.journal._service import JournalActor, JournalService
from actors.messages import JOURNAL, POSITIONS, RISK, gateway_name
from actors.positions import Positions
from actors.risk import Risk
from actors.strategies import STRATEGY_KINDS, StrategyContext
from exchanges import AccountClient, Instrument, MarketDataClient, paper
from exchanges.paper import BasisSpec, FeeSchedule, PaperVenue, PaperWorld, SyntheticMarket

from ._config import (
    AsterVenueConfig,
    BackpackVenueConfig,
    DaemonConfig,
    PaperVenueConfig,
    VenueConfig,
    strategy_params,
)
from ._live import LiveVenue, aster_venue, backpack_venue
from ._spec import Backoff, ChildSpec, Intensity, Strategy, SupervisorSpec

# Branch supervisors absorb a few crashes a minute; the root, which restarts whole branches,
# absorbs fewer. A crash loop beyond that ends in the give-up hook, which halts trading.
BRANCH_INTENSITY: Final = Intensity(max_restarts=5, max_seconds=60)
ROOT_INTENSITY: Final = Intensity(max_restarts=3, max_seconds=300)
ACTOR_BACKOFF: Final = Backoff(initial_s=0.2, max_s=10.0, jitter=0.2, reset_after_s=60.0)


def daemon_tree(
    core: Sequence[ChildSpec | SupervisorSpec] = (),
    feeds: Sequence[ChildSpec | SupervisorSpec] = (),
    strategies: Sequence[ChildSpec | SupervisorSpec] = (),
) -> SupervisorSpec:
    """The daemon's tree with the given children in each branch."""
    return SupervisorSpec(
        "root",
        [
            SupervisorSpec("core", core, strategy=Strategy.REST_FOR_ONE,
                           intensity=BRANCH_INTENSITY, backoff=ACTOR_BACKOFF),
            SupervisorSpec("feeds", feeds, intensity=BRANCH_INTENSITY, backoff=ACTOR_BACKOFF),
            SupervisorSpec("strategies", strategies, intensity=BRANCH_INTENSITY,
                           backoff=ACTOR_BACKOFF),
        ],
        intensity=ROOT_INTENSITY,
        backoff=ACTOR_BACKOFF,
    )



@dataclass
class Assembly:
    config: DaemonConfig
    home: Path
    venues: dict[str, PaperVenue]
    """The paper venues only."""
    world: PaperWorld | None
    journal: JournalService
    topics: MarketTopics
    instruments: dict[tuple[str, str], Instrument]
    """Paper venues' at once; live venues' once `running_venues` has opened them."""
    live: dict[str, LiveVenue] = field(default_factory=dict)
    markets: dict[str, MarketDataClient] = field(default_factory=dict)
    """Every venue's market data, paper and live, in config order: one feed each."""
    account_clients: dict[tuple[str, str], AccountClient] = field(default_factory=dict)
    """(venue, account) → the client its gateway uses; built by `account_client`."""

    def account_client(self, venue: str, account: str) -> AccountClient:
        """One client per account, made once: tests wrap it to inject faults."""
        key = (venue, account)
        client = self.account_clients.get(key)
        if client is None:
            live = self.live.get(venue)
            client = (live.accounts[account] if live is not None
                      else self.venues[venue].account(account))
            self.account_clients[key] = client
        return client

    def tree(self) -> SupervisorSpec:
        return daemon_tree(core=self._core(), feeds=self._feeds(),
                           strategies=self._strategies())

    def _core(self) -> list[ChildSpec | SupervisorSpec]:
        bases = {key: instrument.base for key, instrument in self.instruments.items()}
        core: list[ChildSpec | SupervisorSpec] = [
            ChildSpec(JOURNAL, lambda: JournalActor(self.journal)),
            ChildSpec(POSITIONS, lambda: Positions(self.journal, self.topics)),
            ChildSpec(RISK, lambda: Risk(self.config.risk, self.journal, self.topics, bases)),
        ]
        for venue_config in self.config.venues:
            symbols = self._symbols(venue_config.name)
            for account in venue_config.accounts:
                core.append(ChildSpec(
                    gateway_name(venue_config.name, account),
                    _gateway_factory(self, venue_config, account, symbols),
                ))
        return core

    def _feeds(self) -> list[ChildSpec | SupervisorSpec]:
        feeds: list[ChildSpec | SupervisorSpec] = []
        for name, market in self.markets.items():
            feeds.append(ChildSpec(f"feed.{name}",
                                   _feed_factory(market, self._symbols(name), self.topics)))
        return feeds

    def _symbols(self, venue: str) -> list[str]:
        """A live venue's configured symbols (the gateway arms Aster's countdownCancelAll for
        each); a paper venue's every instrument."""
        live = self.live.get(venue)
        if live is not None:
            return list(live.symbols)
        return [i.symbol for (v, _), i in self.instruments.items() if v == venue]

    def _strategies(self) -> list[ChildSpec | SupervisorSpec]:
        context = StrategyContext(topics=self.topics, instruments=self.instruments)
        specs: list[ChildSpec | SupervisorSpec] = []
        for index, strategy in enumerate(self.config.strategies):
            params = strategy_params("config", index, strategy)
            build = STRATEGY_KINDS[strategy.kind].build
            specs.append(ChildSpec(strategy.name, functools.partial(build, params, context)))
        return specs


def _gateway_factory(assembly: Assembly, venue_config: VenueConfig, account: str,
                     symbols: list[str]) -> Callable[[], Gateway]:
    def make() -> Gateway:
        return Gateway(assembly.account_client(venue_config.name, account), assembly.journal,
                       symbols,
                       orders_per_s=venue_config.orders_per_s,
                       order_burst=venue_config.order_burst,
                       cancel_on_stop=assembly.config.cancel_on_stop)

    return make


def _feed_factory(
    market: MarketDataClient, symbols: list[str], topics: MarketTopics
) -> Callable[[], Feed]:
    return lambda: Feed(market, symbols, topics)


def assemble(
    config: DaemonConfig, home: Path, journal_config: JournalConfig = DEFAULT_JOURNAL_CONFIG,
    *, environ: Mapping[str, str] | None = None, source: Path | str = "config",
) -> Assembly:
    """The daemon's parts, nothing started. Live venues come first: their credentials are
    read from `environ` (default: the process's) and a missing one is a ConfigError naming
    `source`, the key and the variable, before anything touches the disk."""
    live = _live_venues(config, os.environ if environ is None else environ, str(source))
    venues: dict[str, PaperVenue] = {}
    instruments: dict[tuple[str, str], Instrument] = {}
    world = None
    paper_configs = [v for v in config.venues if isinstance(v, PaperVenueConfig)]
    if config.paper is not None and paper_configs:
        symbols = list(config.paper.symbols)
        for venue_config in paper_configs:
            venue = PaperVenue(
                paper.PaperVenueConfig(
                    name=venue_config.name, symbols=symbols,
                    accounts=dict(venue_config.accounts), quote_asset=venue_config.quote_asset,
                    fees=FeeSchedule(venue_config.maker_fee_rate, venue_config.taker_fee_rate),
                    max_leverage=venue_config.max_leverage,
                    funding_interval_s=venue_config.funding_interval_s,
                    order_latency_s=venue_config.order_latency_s,
                ),
                state_dir=home / "paper",
            )
            venues[venue.name] = venue
            for instrument in venue.instrument_list:
                instruments[(venue.name, instrument.symbol)] = instrument
        market = SyntheticMarket(
            config.paper.seed, symbols, list(venues),
            BasisSpec(config.paper.basis_sigma_bps_per_sqrt_s,
                      config.paper.basis_reversion_per_s),
            start_prices=_last_prices(venues),
        )
        world = PaperWorld(market, list(venues.values()), step_s=config.paper.step_s)
    journal_path = Path(config.journal_path)
    if not journal_path.is_absolute():
        journal_path = home / journal_path
    markets: dict[str, MarketDataClient] = {}
    for name in (v.name for v in config.venues):
        live_venue = live.get(name)
        markets[name] = live_venue.market if live_venue is not None else venues[name]
    return Assembly(config=config, home=home, venues=venues, world=world,
                    journal=JournalService(journal_path, journal_config), topics=MarketTopics(),
                    instruments=instruments, live=live, markets=markets)


def _live_venues(config: DaemonConfig, environ: Mapping[str, str],
                 source: str) -> dict[str, LiveVenue]:
    live: dict[str, LiveVenue] = {}
    for index, venue_config in enumerate(config.venues):
        key = f"venues[{index}]"
        if isinstance(venue_config, AsterVenueConfig):
            live[venue_config.name] = aster_venue(venue_config, environ, key=key, source=source)
        elif isinstance(venue_config, BackpackVenueConfig):
            live[venue_config.name] = backpack_venue(venue_config, environ, key=key,
                                                     source=source)
    return live


@asynccontextmanager
async def running_venues(assembly: Assembly) -> AsyncIterator[None]:
    """Venues run for the body: opened before the tree is built, closed after it stops.

    Live venues open first, one after another (a clock sync and an instruments call each, a
    start-up cost only), their instruments going into `assembly.instruments`; an error here
    (a symbol the venue does not list, the venue unreachable) stops start-up before the tree
    exists, unwrapped by any nursery. Then the paper world starts, and live venues' clocks
    are measured again every few minutes.
    """
    try:
        for name, venue in assembly.live.items():
            for instrument in await venue.open():
                assembly.instruments[(name, instrument.symbol)] = instrument
        async with trio.open_nursery() as nursery:
            for venue in assembly.live.values():
                nursery.start_soon(venue.keep_clocks_synced)
            if assembly.world is not None:
                await nursery.start(assembly.world.run)
            yield
            nursery.cancel_scope.cancel()
    finally:
        for venue in assembly.live.values():
            await venue.aclose()


def _last_prices(venues: dict[str, PaperVenue]) -> dict[str, float]:
    """Where the market was when the venues last ran: the last fill price of each symbol."""
    prices: dict[str, float] = {}
    for venue in venues.values():
        for fill in venue.ledger.fills:
            prices[fill.symbol] = float(fill.price)
    return prices


