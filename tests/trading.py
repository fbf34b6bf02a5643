"""Running the configured daemon in-process, on the test's clock.

The same assembly `steward run` uses (paper venues beside the tree, journal, topics), minus
signals and the terminal view, so tests can drive virtual hours and inspect every part.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import trio

from actors.journal import JournalConfig, JournalStore
from exchanges import AccountClient
from exchanges.paper import PaperVenue
from supervisor import SupervisionEvent, Supervisor
from supervisor._assembly import Assembly, assemble, running_venues
from supervisor._config import DaemonConfig, load_config
from supervisor._daemon import halt_trading_hook
from supervisor._status import DaemonStatus, collect_status

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def paper_config() -> DaemonConfig:
    return load_config(EXAMPLES / "paper.toml")


@dataclass
class RunningDaemon:
    root: Supervisor
    assembly: Assembly
    events: list[SupervisionEvent] = field(default_factory=list)

    async def status(self) -> DaemonStatus:
        return await collect_status(self.root, self.assembly)


@asynccontextmanager
async def running_daemon(
    home: Path,
    config: DaemonConfig | None = None,
    *,
    wrap: Callable[[AccountClient], AccountClient] | None = None,
) -> AsyncIterator[RunningDaemon]:
    """The daemon for the body of the `async with`; `wrap` wraps every account client (to
    inject faults)."""
    # Inline SQLite: under MockClock a worker thread lets autojump race the clock ahead.
    assembly = assemble(config or paper_config(), home, JournalConfig(offload_to_thread=False))
    if wrap is not None:
        for venue_config in assembly.config.venues:
            for account in venue_config.accounts:
                client = assembly.account_client(venue_config.name, account)
                assembly.account_clients[(venue_config.name, account)] = wrap(client)
    events: list[SupervisionEvent] = []
    async with running_venues(assembly):
        # As `run_daemon` does: the tree is built once the venues are open.
        root = Supervisor(assembly.tree(), on_event=events.append,
                          on_give_up=halt_trading_hook(assembly, lambda: root))
        async with trio.open_nursery() as nursery:
            await nursery.start(root.run)
            yield RunningDaemon(root, assembly, events)
            root.request_stop()


@asynccontextmanager
async def venue_between_runs(
    home: Path, venue_name: str, config: DaemonConfig | None = None
) -> AsyncIterator[PaperVenue]:
    """A paper venue opened on its state file while no daemon runs: what happens to an
    exchange account overnight (someone trades by hand, an order gets cancelled)."""
    assembly = assemble(config or paper_config(), home, JournalConfig(offload_to_thread=False))
    venue = assembly.venues[venue_name]
    assert assembly.world is not None
    venue.open()
    for spec in venue.config.symbols:
        bids, asks = assembly.world.market.book(venue_name, spec.symbol)
        venue.engine.on_book(spec.symbol, bids, asks, venue.now_ns())
    try:
        yield venue
    finally:
        venue.close()


def journal_store(home: Path, config: DaemonConfig | None = None) -> JournalStore:
    config = config or paper_config()
    return JournalStore(home / config.journal_path)
