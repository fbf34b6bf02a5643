"""From a DaemonConfig to running parts: venues, the journal, topics, and the tree's specs.

```
root (one_for_one)
├── core (rest_for_one): journal → positions → risk → gateways (one per venue account)
├── feeds (one_for_one): one feed per venue
└── strategies (one_for_one): one actor per configured strategy
```
Paper venues are simulated exchanges, not actors: they run beside the tree, start before it
and stop after it, the way a real exchange outlives the daemon.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Sequence
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
from exchanges import AccountClient, Instrument
from exchanges.paper import (
    BasisSpec,
    FeeSchedule,
    PaperVenue,
    PaperVenueConfig,
    PaperWorld,
    SyntheticMarket,
)

from ._config import DaemonConfig, strategy_params
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
    world: PaperWorld | None
    journal: JournalService
    topics: MarketTopics
    instruments: dict[tuple[str, str], Instrument]
    account_clients: dict[tuple[str, str], AccountClient] = field(default_factory=dict)
    """(venue, account) → the client its gateway uses; built by `account_client`."""

    def account_client(self, venue: str, account: str) -> AccountClient:
        """One client per account, made once: tests wrap it to inject faults."""
        key = (venue, account)
        client = self.account_clients.get(key)
        if client is None:
            client = self.account_clients[key] = self.venues[venue].account(account)
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
            venue = self.venues[venue_config.name]
            symbols = [i.symbol for (v, _), i in self.instruments.items() if v == venue.name]
            for account in venue_config.accounts:
                core.append(ChildSpec(
                    gateway_name(venue.name, account),
                    _gateway_factory(self, venue, account, symbols),
                ))
        return core

    def _feeds(self) -> list[ChildSpec | SupervisorSpec]:
        feeds: list[ChildSpec | SupervisorSpec] = []
        for name, venue in self.venues.items():
            symbols = [i.symbol for (v, _), i in self.instruments.items() if v == name]
            feeds.append(ChildSpec(f"feed.{name}", _feed_factory(venue, symbols, self.topics)))
        return feeds

    def _strategies(self) -> list[ChildSpec | SupervisorSpec]:
        context = StrategyContext(topics=self.topics, instruments=self.instruments)
        specs: list[ChildSpec | SupervisorSpec] = []
        for index, strategy in enumerate(self.config.strategies):
            params = strategy_params("config", index, strategy)
            build = STRATEGY_KINDS[strategy.kind].build
            specs.append(ChildSpec(strategy.name, functools.partial(build, params, context)))
        return specs


def _gateway_factory(assembly: Assembly, venue: PaperVenue, account: str,
                     symbols: list[str]) -> Callable[[], Gateway]:
    venue_config = assembly.config.venue(venue.name)

    def make() -> Gateway:
        return Gateway(assembly.account_client(venue.name, account), assembly.journal, symbols,
                       orders_per_s=venue_config.orders_per_s,
                       order_burst=venue_config.order_burst,
                       cancel_on_stop=assembly.config.cancel_on_stop)

    return make


def _feed_factory(
    venue: PaperVenue, symbols: list[str], topics: MarketTopics
) -> Callable[[], Feed]:
    return lambda: Feed(venue, symbols, topics)


def assemble(
    config: DaemonConfig, home: Path, journal_config: JournalConfig = DEFAULT_JOURNAL_CONFIG
) -> Assembly:
    venues: dict[str, PaperVenue] = {}
    instruments: dict[tuple[str, str], Instrument] = {}
    world = None
    if config.paper is not None:
        symbols = list(config.paper.symbols)
        for venue_config in config.venues:
            venue = PaperVenue(
                PaperVenueConfig(
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
    return Assembly(config=config, home=home, venues=venues, world=world,
                    journal=JournalService(journal_path, journal_config), topics=MarketTopics(),
                    instruments=instruments)


@asynccontextmanager
async def running_venues(assembly: Assembly) -> AsyncIterator[None]:
    """Paper venues run for the body: started before the tree, stopped after it."""
    async with trio.open_nursery() as nursery:
        if assembly.world is not None:
            await nursery.start(assembly.world.run)
        yield
        nursery.cancel_scope.cancel()


def _last_prices(venues: dict[str, PaperVenue]) -> dict[str, float]:
    """Where the market was when the venues last ran: the last fill price of each symbol."""
    prices: dict[str, float] = {}
    for venue in venues.values():
        for fill in venue.ledger.fills:
            prices[fill.symbol] = float(fill.price)
    return prices


