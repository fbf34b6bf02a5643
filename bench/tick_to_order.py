"""`tick_to_order`: from a paper book event to the resulting order at the venue's order entry.

The daemon as `steward run` wires it (`supervisor._assembly`: journal → positions → risk →
gateway; one feed; one market maker), under a real Supervisor, on the real clock, with the
journal and the paper venue's state file in a temporary directory under the system temp dir.
One paper venue, one symbol, one account. Only the venue differs from the daemon's: a
subclass that stamps, and the market is stepped by hand instead of by PaperWorld's timer.

Path and hops (4):
    PaperVenue.on_market_step ─(1: market stream channel)→ Feed's stream task
    ─books.publish→ (2: MarketMaker mailbox, conflated lane) ─SubmitOrder→ (3: risk mailbox)
    ─SubmitOrder→ (4: gateway mailbox) ─→ PaperAccount.place_order, a plain call.
The market maker's cancels of its previous quotes go straight to the gateway and are handled
there before the SubmitOrder arrives: they are part of the path, as in the daemon.

Start: perf_counter_ns as the venue hands the BookTop to the market stream (a hook on the
venue's `_publish_market`). Not the BookTop's own `ts_local_ns`: `on_market_step` takes that
from perf_counter_ns as the step *begins*, before the synthetic market builds the 10-level
book and the engine matches it (~25 us of simulation, not daemon); latency from it is
reported too (`from_ts_local_*`). End: perf_counter_ns on entering `place_order`, the first
one after the event (the second quote's order is not counted). Every event moves the fair
price between two levels 12 USDT apart, with `interval_s = 0`, so every event requotes: two
cancels, two new post-only orders. Neither price crosses the other's quotes, and the market
prints no trades: no fills. Limits and rates are generous: nothing is denied or paced.

One event at a time: the next goes out once the order arrived and every task is idle again
(`trio.testing.wait_all_tasks_blocked`), so the latency never includes queueing behind the
previous event's tail (its second order, the accepts, the user stream's order updates).

Floor: four trio memory channels with plain forwarding tasks (bench.hop's FloorChain), fed
with `send_nowait` as the venue does, sampled the same way. Rounds alternate floor and daemon
so machine noise falls on both alike; percentiles pool every round's samples.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any, Final

import msgspec
import trio
import trio.testing

from exchanges import BookTop, MarketEvent, OrderRequest, VenueOrder
from exchanges.paper import PaperAccount, PaperVenue, PaperVenueConfig, SyntheticMarket
from supervisor import Supervisor
from supervisor._assembly import assemble
from supervisor._config import DaemonConfig

from ._stats import percentile_us
from .hop import FloorChain, Hop, Probe

ROUNDS: Final = 5
SAMPLES_PER_ROUND: Final = 2_000
WARMUP_SAMPLES: Final = 500
HOPS: Final = 4
TARGET_P50_US: Final = 100.0
TARGET_P99_US: Final = 400.0
ROUND_TIMEOUT_S: Final = 60.0  # a path that stops producing orders fails, never hangs
STARTUP_TICK_S: Final = 0.01  # books while the tree starts: the feed is ready after its first

VENUE: Final = "paper"
ACCOUNT: Final = "mm"
SYMBOL: Final = "BTC-PERP"
FAIR_PRICES: Final = (60_000.0, 60_012.0)  # 2 bps apart: every event requotes, nothing crosses

CONFIG: Final = {
    "name": "bench-tick-to-order",
    "journal_path": "journal.sqlite",
    "cancel_on_stop": True,
    "paper": {
        "seed": 7,
        "basis_sigma_bps_per_sqrt_s": 0.0,
        "symbols": [{
            "symbol": SYMBOL, "base": "BTC", "start_price": "60000", "tick_size": "0.5",
            "step_size": "0.001", "min_qty": "0.001", "spread_ticks": 4, "level_qty": "0.5",
            "volatility_per_sqrt_s": 0.0, "trade_rate_per_s": 0.0,
        }],
    },
    "venues": [{
        "name": VENUE, "kind": "paper", "accounts": {ACCOUNT: "10000000"},
        "orders_per_s": 1e9, "order_burst": 1_000_000_000,
    }],
    "risk": {"defaults": {
        "max_orders_per_s": 1e9, "order_burst": 1_000_000_000, "max_open_orders": 1_000,
        "price_band_bps": "1000",
    }},
    "strategies": [{
        "name": "mm", "kind": "market_maker", "params": {
            "venue": VENUE, "account": ACCOUNT, "symbol": SYMBOL, "quantity": "0.01",
            "max_position": "1", "spread_bps": "8", "max_orders": 1, "interval_s": 0.0,
            "requote_bps": "0",
        },
    }],
}


# ---- the probing venue -----------------------------------------------------------------------


class OrderEntryProbe:
    """Armed before a book event, started by its publication, fired by the first place_order
    after it. Keeps two latencies per event: from the moment the BookTop is handed to the
    market stream (the primary figure), and from its own `ts_local_ns` stamp."""

    def __init__(self) -> None:
        self.latencies_ns: list[int] = []
        self.from_ts_local_ns: list[int] = []
        self.places = 0
        self.cancels = 0
        self.events = 0
        self.done = trio.Event()
        self._armed = False
        self._published_ns = 0
        self._ts_local_ns = 0

    def arm(self) -> None:
        self._armed = True
        self._published_ns = 0
        self.done = trio.Event()

    def book_published(self, ts_local_ns: int) -> None:
        if self._armed and self._published_ns == 0:
            self._published_ns = time.perf_counter_ns()
            self._ts_local_ns = ts_local_ns
            self.events += 1

    def order_entered(self) -> None:
        now_ns = time.perf_counter_ns()
        self.places += 1
        if self._armed and self._published_ns:
            self.latencies_ns.append(now_ns - self._published_ns)
            self.from_ts_local_ns.append(now_ns - self._ts_local_ns)
            self._armed = False
            self.done.set()

    def reset_counts(self) -> None:
        self.places = self.cancels = self.events = 0
        self.latencies_ns.clear()
        self.from_ts_local_ns.clear()


class ProbeAccount(PaperAccount):
    def __init__(self, venue: PaperVenue, account: str, probe: OrderEntryProbe) -> None:
        super().__init__(venue, account)
        self._probe = probe

    async def place_order(self, request: OrderRequest) -> VenueOrder:
        self._probe.order_entered()  # before the simulated latency: this is the entry
        return await super().place_order(request)

    async def cancel_order(self, symbol: str, client_id: str) -> VenueOrder:
        self._probe.cancels += 1
        return await super().cancel_order(symbol, client_id)


class ProbeVenue(PaperVenue):
    def __init__(
        self, config: PaperVenueConfig, state_dir: Path, probe: OrderEntryProbe
    ) -> None:
        super().__init__(config, state_dir)
        self.probe = probe

    def account(self, name: str) -> PaperAccount:
        super().account(name)  # the same check: unknown accounts raise KeyError
        return ProbeAccount(self, name, self.probe)

    def _publish_market(self, event: MarketEvent) -> None:
        # The one private hook we use: it sees the BookTop as it goes out, with its stamp.
        if isinstance(event, BookTop):
            self.probe.book_published(event.ts_local_ns)
        super()._publish_market(event)


# ---- one round each --------------------------------------------------------------------------


async def _daemon_round(samples: int) -> OrderEntryProbe:
    config = msgspec.convert(CONFIG, DaemonConfig, strict=False)
    probe = OrderEntryProbe()
    with tempfile.TemporaryDirectory(prefix="steward-bench-") as tmp:
        home = Path(tmp)
        assembly = assemble(config, home)
        assert assembly.world is not None
        market: SyntheticMarket = assembly.world.market
        plain = assembly.venues[VENUE]
        venue = ProbeVenue(plain.config, home / "paper", probe)
        assembly = dataclasses.replace(assembly, venues={VENUE: venue}, markets={VENUE: venue},
                                       world=None)
        root = Supervisor(assembly.tree())
        venue.open()
        try:
            with trio.fail_after(ROUND_TIMEOUT_S):
                async with trio.open_nursery() as nursery:
                    ticking = trio.CancelScope()
                    nursery.start_soon(_tick, venue, market, ticking)
                    await nursery.start(root.run)
                    ticking.cancel()
                    await trio.testing.wait_all_tasks_blocked()
                    await _sample_daemon(venue, market, probe, WARMUP_SAMPLES)
                    probe.reset_counts()
                    await _sample_daemon(venue, market, probe, samples)
                    root.request_stop()
        finally:
            venue.close()
    return probe


async def _tick(venue: PaperVenue, market: SyntheticMarket, scope: trio.CancelScope) -> None:
    """Books while the tree starts, as PaperWorld would: the feed is ready at its first."""
    with scope:
        while True:
            venue.on_market_step(market, 0.0)
            await trio.sleep(STARTUP_TICK_S)


async def _sample_daemon(
    venue: PaperVenue, market: SyntheticMarket, probe: OrderEntryProbe, samples: int
) -> None:
    fair = market.fair
    for index in range(samples):
        fair[SYMBOL] = FAIR_PRICES[index % 2]
        probe.arm()
        venue.on_market_step(market, 0.0)  # dt 0: no trades, no marks, no funding
        await probe.done.wait()
        await trio.testing.wait_all_tasks_blocked()


async def _floor_round(samples: int) -> list[int]:
    probe = Probe()
    async with trio.open_nursery() as nursery:
        chain = FloorChain(nursery, HOPS, probe)
        for phase, count in (("warmup", WARMUP_SAMPLES), ("measure", samples)):
            if phase == "measure":
                probe.latencies_ns.clear()
            for _ in range(count):
                probe.expect_next()
                chain.entry.send_nowait(Hop(time.perf_counter_ns()))
                await probe.done.wait()
                await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    return probe.latencies_ns


async def run_tick_to_order() -> dict[str, Any]:
    daemon: list[int] = []
    floor: list[int] = []
    from_ts_local: list[int] = []
    round_p50s: list[float] = []
    places = cancels = events = 0
    for _ in range(ROUNDS):
        floor.extend(await _floor_round(SAMPLES_PER_ROUND))
        probe = await _daemon_round(SAMPLES_PER_ROUND)
        daemon.extend(probe.latencies_ns)
        from_ts_local.extend(probe.from_ts_local_ns)
        round_p50s.append(percentile_us(probe.latencies_ns, 0.50))
        places, cancels, events = (places + probe.places, cancels + probe.cancels,
                                   events + probe.events)
    result: dict[str, Any] = {
        "hops": HOPS,
        "samples": len(daemon),
        "p50_us": percentile_us(daemon, 0.50),
        "p99_us": percentile_us(daemon, 0.99),
        "p999_us": percentile_us(daemon, 0.999),
        "floor_p50_us": percentile_us(floor, 0.50),
        "floor_p99_us": percentile_us(floor, 0.99),
        "p50_rounds_us": round_p50s,
        "from_ts_local_p50_us": percentile_us(from_ts_local, 0.50),
        "from_ts_local_p99_us": percentile_us(from_ts_local, 0.99),
        "place_orders_per_event": round(places / events, 3),
        "cancels_per_event": round(cancels / events, 3),
    }
    result["ratio_p50"] = round(result["p50_us"] / result["floor_p50_us"], 2)
    result["ratio_p99"] = round(result["p99_us"] / result["floor_p99_us"], 2)
    result["meets_targets"] = (
        result["p50_us"] <= TARGET_P50_US and result["p99_us"] <= TARGET_P99_US
    )
    return result
