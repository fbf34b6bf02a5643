"""`kill`: from the EmergencyStop RPC to every open order confirmed cancelled at the venues.

One daemon (bench.control.running_daemon: the tree, the paper venues on the real clock, the
control server on a free loopback port, a temporary STEWARD_HOME) with two paper venues, one
account each, and no strategies, so nothing replaces what is cancelled. Each round places 200
resting post-only orders (100 per venue, far from the market: nothing fills) directly on the
venue accounts, then a worker thread calls `ControlClient.emergency_stop` and times the call.

`ControlService.emergency_stop` answers only after `cancel_all` returned on every account (in
parallel, on the venues directly), so the reply *is* the client's confirmation: `p50_ms` /
`p99_ms` are the client-side round trip of the RPC, verified after each round by reading both
venues' ledgers (zero open orders) and the reply (200 cancelled). The reply also waits for the
halt and the control action to be journaled (durable commits); `confirmed_*_ms` is the tighter
figure, from the call until the last venue's `cancel_all` returned (stamped in trio by an
instrumented paper account; perf_counter is one clock across threads), and `server_*_ms` the
daemon's own `elapsed_ms`. Between rounds: Resume over RPC, then the orders are placed again.

`fleet_p99_ms`: three such daemons in this one process (three assemblies, trees and servers on
three ports, one trio run), EmergencyStop called on all three at once from three threads
(released by a barrier); a sample is from the first call until the last reply. Three daemons
share one trio thread and one GIL here, which is harsher than three processes.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import msgspec
import trio
import trio.testing

from clients._client import ControlClient
from exchanges import OrderRequest, OrderType, Side, TimeInForce, VenueOrder
from exchanges.paper import PaperAccount, PaperVenue
from supervisor._assembly import Assembly
from supervisor._config import DaemonConfig

from ._stats import percentile_us
from .control import BIND, Daemon, running_daemon

ROUNDS: Final = 100
WARMUP_ROUNDS: Final = 3
FLEET_ROUNDS: Final = 50
FLEET_SIZE: Final = 3
ORDERS_PER_VENUE: Final = 100
TARGET_P99_MS: Final = 10.0
TARGET_FLEET_P99_MS: Final = 50.0
SETTLE_S: Final = 0.02  # the gateways' user streams drain the cancels before the next round

VENUES: Final = ("paper-a", "paper-b")
ACCOUNT: Final = "kill"
SYMBOL: Final = "BTC-PERP"
QTY: Final = Decimal("0.001")

CONFIG: Final = {
    "name": "bench-kill",
    "journal_path": "journal.sqlite",
    "cancel_on_stop": True,
    "control": {"bind": BIND},
    "paper": {
        "seed": 7,
        "basis_sigma_bps_per_sqrt_s": 0.0,
        "symbols": [{
            "symbol": SYMBOL, "base": "BTC", "start_price": "60000", "tick_size": "0.5",
            "step_size": "0.001", "min_qty": "0.001", "spread_ticks": 4, "level_qty": "0.5",
            "volatility_per_sqrt_s": 0.0, "trade_rate_per_s": 0.0,
        }],
    },
    "venues": [{"name": name, "kind": "paper", "accounts": {ACCOUNT: "10000000"}}
               for name in VENUES],
    "strategies": [],
}


class StampingAccount(PaperAccount):
    """The paper account the daemon uses, stamping when each cancel_all begins and returns."""

    def __init__(self, venue: PaperVenue, account: str, stamps: list[tuple[int, int]]) -> None:
        super().__init__(venue, account)
        self._stamps = stamps

    async def cancel_all(self, symbol: str | None = None) -> list[VenueOrder]:
        began = time.perf_counter_ns()
        cancelled = await super().cancel_all(symbol)
        self._stamps.append((began, time.perf_counter_ns()))
        return cancelled


class KillTarget:
    """One daemon under test: its control client, its accounts and their cancel stamps."""

    def __init__(self, daemon: Daemon, stamps: list[tuple[int, int]]) -> None:
        self.daemon = daemon
        self.stamps = stamps
        self.client = ControlClient(daemon.address, token=daemon.token)
        self.accounts = [daemon.assembly.account_client(venue, ACCOUNT) for venue in VENUES]
        self._sequence = 0

    def open_orders(self) -> int:
        return sum(len(venue.ledger.open_orders(ACCOUNT)) for venue in
                   self.daemon.assembly.venues.values())

    async def place_orders(self) -> None:
        for account in self.accounts:
            for index in range(ORDERS_PER_VENUE):
                self._sequence += 1
                buy = index % 2 == 0
                offset = Decimal(index) / 2
                price = Decimal(30_000) - offset if buy else Decimal(90_000) + offset
                await account.place_order(OrderRequest(
                    client_id=f"bench-kill-{self._sequence}", symbol=SYMBOL,
                    side=Side.BUY if buy else Side.SELL, order_type=OrderType.LIMIT,
                    qty=QTY, price=price, tif=TimeInForce.POST_ONLY,
                ))
        # The gateways see 200 new orders on their user streams: let them finish with those.
        await trio.testing.wait_all_tasks_blocked(SETTLE_S)
        placed = self.open_orders()
        assert placed == ORDERS_PER_VENUE * len(VENUES), f"{placed} orders rest, not 200"

    def check_stopped(self, reply: dict[str, Any]) -> None:
        cancelled = sum(int(account["orders_cancelled"]) for account in reply["accounts"])
        errors = [account["error"] for account in reply["accounts"] if account["error"]]
        left = self.open_orders()
        assert cancelled == ORDERS_PER_VENUE * len(VENUES) and not errors and left == 0, (
            f"cancelled {cancelled}, errors {errors}, {left} still open")

    def close(self) -> None:
        self.client.close()


def _prepare(stamps: list[tuple[int, int]]) -> Callable[[Assembly], None]:
    def install(assembly: Assembly) -> None:
        for venue in VENUES:
            assembly.account_clients[(venue, ACCOUNT)] = StampingAccount(
                assembly.venues[venue], ACCOUNT, stamps)
    return install


def _stop(client: ControlClient, barrier: threading.Barrier | None) -> tuple[int, int,
                                                                              dict[str, Any]]:
    if barrier is not None:
        barrier.wait()
    started = time.perf_counter_ns()
    reply = client.emergency_stop("bench: kill latency")
    return started, time.perf_counter_ns(), reply


async def _open_targets(stack: AsyncExitStack, count: int) -> list[KillTarget]:
    config = msgspec.convert(CONFIG, DaemonConfig, strict=False)
    targets = []
    for _ in range(count):
        home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="steward-bench-")))
        stamps: list[tuple[int, int]] = []
        daemon = await stack.enter_async_context(running_daemon(config, home,
                                                                _prepare(stamps)))
        target = KillTarget(daemon, stamps)
        stack.callback(target.close)
        targets.append(target)
    return targets


async def _single(target: KillTarget) -> dict[str, list[int]]:
    samples: dict[str, list[int]] = {"reply": [], "confirmed": [], "server": [],
                                     "to_cancel": [], "cancel": [], "after_cancel": []}
    for index in range(WARMUP_ROUNDS + ROUNDS):
        await target.place_orders()
        target.stamps.clear()
        started, ended, reply = await trio.to_thread.run_sync(_stop, target.client, None)
        target.check_stopped(reply)
        assert len(target.stamps) == len(VENUES), target.stamps
        if index >= WARMUP_ROUNDS:
            samples["reply"].append(ended - started)
            began = min(start for start, _ in target.stamps)
            confirmed = max(end for _, end in target.stamps)
            samples["confirmed"].append(confirmed - started)
            samples["to_cancel"].append(began - started)
            samples["cancel"].append(confirmed - began)
            samples["after_cancel"].append(ended - confirmed)
            samples["server"].append(int(float(reply["elapsed_ms"]) * 1e6))
        await trio.to_thread.run_sync(target.client.resume, "bench: next round")
        await trio.sleep(SETTLE_S)
    return samples


async def _fleet(targets: list[KillTarget]) -> list[int]:
    samples: list[int] = []
    for index in range(WARMUP_ROUNDS + FLEET_ROUNDS):
        for target in targets:
            await target.place_orders()
        barrier = threading.Barrier(len(targets))
        results: list[tuple[int, int, dict[str, Any]]] = []

        async def stop(target: KillTarget, barrier: threading.Barrier = barrier,
                       results: list[tuple[int, int, dict[str, Any]]] = results) -> None:
            results.append(await trio.to_thread.run_sync(_stop, target.client, barrier))

        async with trio.open_nursery() as nursery:
            for target in targets:
                nursery.start_soon(stop, target)
        for target, (_, _, reply) in zip(targets, results, strict=False):
            target.check_stopped(reply)  # every daemon's orders are gone, whichever replied
        if index >= WARMUP_ROUNDS:
            samples.append(max(end for _, end, _ in results)
                           - min(start for start, _, _ in results))
        async with trio.open_nursery() as nursery:
            for target in targets:
                nursery.start_soon(trio.to_thread.run_sync, target.client.resume,
                                   "bench: next round")
        await trio.sleep(SETTLE_S)
    return samples


def _ms(samples: list[int], fraction: float) -> float:
    return round(percentile_us(samples, fraction) / 1000, 3)


async def run_kill() -> dict[str, Any]:
    async with AsyncExitStack() as stack:
        (target,) = await _open_targets(stack, 1)
        single = await _single(target)
    async with AsyncExitStack() as stack:
        fleet = await _fleet(await _open_targets(stack, FLEET_SIZE))
    result: dict[str, Any] = {
        "orders": ORDERS_PER_VENUE * len(VENUES),
        "venues": len(VENUES),
        "rounds": len(single["reply"]),
        "p50_ms": _ms(single["reply"], 0.50),
        "p99_ms": _ms(single["reply"], 0.99),
        "max_ms": _ms(single["reply"], 1.0),
        "confirmed_p50_ms": _ms(single["confirmed"], 0.50),
        "confirmed_p99_ms": _ms(single["confirmed"], 0.99),
        "server_p50_ms": _ms(single["server"], 0.50),
        "server_p99_ms": _ms(single["server"], 0.99),
        "phases_p50_ms": {phase: _ms(single[phase], 0.50)
                          for phase in ("to_cancel", "cancel", "after_cancel")},
        "phases_p99_ms": {phase: _ms(single[phase], 0.99)
                          for phase in ("to_cancel", "cancel", "after_cancel")},
        "fleet_daemons": FLEET_SIZE,
        "fleet_rounds": len(fleet),
        "fleet_p50_ms": _ms(fleet, 0.50),
        "fleet_p99_ms": _ms(fleet, 0.99),
        "fleet_in_one_process": True,
    }
    result["meets_targets"] = (result["p99_ms"] <= TARGET_P99_MS
                               and result["fleet_p99_ms"] <= TARGET_FLEET_P99_MS)
    return result
