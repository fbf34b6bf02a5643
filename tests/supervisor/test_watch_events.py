"""WatchEvents over real gRPC on loopback, against the running paper daemon wired to an event
bus the way `run_daemon` wires it (real clock; every test bounded by trio.fail_after)."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio

from actors.journal import JournalConfig
from clients import ControlClient, PermissionDenied
from supervisor import Supervisor
from supervisor._assembly import assemble, running_venues
from supervisor._auth import Role
from supervisor._control import ControlService
from supervisor._daemon import halt_trading_hook, log_event
from supervisor._events_bus import EventBus
from supervisor._grpc import ControlServerHandle, serve_control
from tests.clients.harness import TOKENS, blocking, token_table
from tests.trading import paper_config


@dataclass
class Watched:
    root: Supervisor
    bus: EventBus
    server: ControlServerHandle

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.port}"


@asynccontextmanager
async def watched_daemon(home: Path, bus: EventBus | None = None) -> AsyncIterator[Watched]:
    bus = bus or EventBus()
    assembly = assemble(paper_config(), home, JournalConfig(offload_to_thread=False))
    assembly.journal.on_committed = bus.journal_sink
    root = Supervisor(assembly.tree(), on_event=bus.supervision_sink(log_event),
                      on_give_up=halt_trading_hook(assembly, lambda: root, bus))
    async with running_venues(assembly):
        async with trio.open_nursery() as nursery:
            await nursery.start(root.run)
            service = ControlService(root, assembly, bus)
            server = await nursery.start(serve_control, service, "127.0.0.1:0", token_table())
            try:
                yield Watched(root, bus, server)
            finally:
                bus.close()
                await server.stop()
                root.request_stop()


class Collector:
    """Reads a WatchEvents stream in a plain thread, as a CLI would."""

    def __init__(self, address: str, role: Role = Role.VIEWER) -> None:
        self.client = ControlClient(address, token=TOKENS[role], timeout_s=10)
        self.events: list[dict[str, Any]] = []
        self.error: BaseException | None = None
        self.ended = threading.Event()
        self._stream: Iterator[dict[str, Any]] = self.client.watch_events()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for event in self._stream:
                self.events.append(event)
        except BaseException as exc:
            self.error = exc
        finally:
            self.ended.set()

    async def wait_for(self, predicate: Any, timeout_s: float = 10.0) -> dict[str, Any]:
        with trio.fail_after(timeout_s):
            while True:
                for event in list(self.events):
                    if predicate(event):
                        return event
                await trio.sleep(0.05)

    def close(self) -> None:
        self.client.close()


async def wait_watchers(bus: EventBus, count: int) -> None:
    with trio.fail_after(5):
        while bus.watcher_count() < count:  # noqa: ASYNC110 (the bus has no event)
            await trio.sleep(0.02)


async def test_watch_when_actor_killed_and_emergency_stop_then_crash_restart_and_who_seen(
    steward_home: Path,
):
    with trio.fail_after(40):
        async with watched_daemon(steward_home) as watched:
            watcher = Collector(watched.address)
            await wait_watchers(watched.bus, 1)
            await watched.root.find_supervisor("core").kill_child("risk")
            crashed = await watcher.wait_for(
                lambda e: e["kind"] == "actor_crashed" and e["source"].endswith("/risk"))
            restarting = await watcher.wait_for(lambda e: e["kind"] == "actor_restarting")
            started = await watcher.wait_for(
                lambda e: e["kind"] == "actor_started" and e["source"].endswith("/risk")
                and e["detail"]["restart_count"] >= 1)
            with ControlClient(watched.address, token=TOKENS[Role.KILL], timeout_s=10) as kill:
                await blocking(lambda: kill.emergency_stop("test: watch the kill switch"))
            action = await watcher.wait_for(lambda e: e["kind"] == "control_action")
            halted = await watcher.wait_for(
                lambda e: e["kind"] == "trading_state" and e["detail"]["state"] == "halted")
            watcher.close()
    assert crashed["seq"] < restarting["seq"] < started["seq"] < action["seq"]
    assert crashed["detail"]["error"]["type"]
    assert action["source"] == "kill"
    assert action["detail"]["who"] == "kill" and action["detail"]["action"] == "emergency_stop"
    assert action["detail"]["outcome"] == "halted"
    assert action["detail"]["request"]["reason"] == "test: watch the kill switch"
    assert halted["source"] == "kill"


async def test_watch_when_reader_stalls_then_daemon_not_blocked_and_dropped_counted(
    steward_home: Path,
):
    bus = EventBus(buffer=4)
    with trio.fail_after(40):
        async with watched_daemon(steward_home, bus) as watched:
            # A watcher whose reader stalls: its handler thread takes nothing from its buffer
            # (gRPC's own buffers would hide a stalled client for a while), so it fills.
            slow = bus.subscribe()
            fast = Collector(watched.address)
            await wait_watchers(bus, 2)
            started = time.perf_counter()
            for n in (1, 2):
                await watched.root.find_supervisor("core").kill_child("risk")
                # The daemon kept going: a watcher over gRPC saw every restart.
                await fast.wait_for(lambda e, n=n: e["kind"] == "actor_started"
                                    and e["source"].endswith("/risk")
                                    and e["detail"]["restart_count"] >= n)
            elapsed = time.perf_counter() - started
            with ControlClient(watched.address, token=TOKENS[Role.VIEWER]) as viewer:
                status = await blocking(viewer.status)  # a unary call still answers
            got = [slow.get(1.0) for _ in range(4)]  # the reader catches up...
            bus.publish("test_marker", "test", "after the gap", {})
            got.append(slow.get(1.0))  # ...and the next event says how many it missed
            fast.close()
    assert elapsed < 10
    assert status["trading"]["state"] == "ACTIVE"
    assert all(d is not None for d in got)
    deliveries = [d for d in got if d is not None]
    assert [d.dropped for d in deliveries[:4]] == [0, 0, 0, 0]
    last = deliveries[4]
    assert last.event.kind == "test_marker" and last.dropped > 0
    assert last.event.seq - deliveries[3].event.seq == last.dropped + 1  # not conflated


async def test_shutdown_when_watch_stream_open_then_stream_ends_cleanly_and_fast(
    steward_home: Path,
):
    with trio.fail_after(30):
        async with watched_daemon(steward_home) as watched:
            watcher = Collector(watched.address)
            await wait_watchers(watched.bus, 1)
            started = time.perf_counter()
            watched.bus.close()
            await watched.server.stop()
            stopped = time.perf_counter() - started
        with trio.fail_after(3):
            while not watcher.ended.is_set():  # noqa: ASYNC110 (a thread's event)
                await trio.sleep(0.02)
        watcher.close()
    assert stopped < 3
    assert watcher.error is None  # the stream ended, not failed


async def test_watch_auth_when_viewer_then_allowed_and_kill_role_denied(steward_home: Path):
    with trio.fail_after(25):
        async with watched_daemon(steward_home) as watched:
            viewer = Collector(watched.address, Role.VIEWER)
            killer = Collector(watched.address, Role.KILL)
            with trio.fail_after(5):
                while not killer.ended.is_set():  # noqa: ASYNC110 (a thread's event)
                    await trio.sleep(0.02)
            await wait_watchers(watched.bus, 1)
            assert viewer.error is None and not viewer.ended.is_set()
            viewer.close()
            killer.close()
    assert isinstance(killer.error, PermissionDenied)


def test_bus_when_watcher_full_then_publish_does_not_block_and_counts_drops():
    bus = EventBus(buffer=2)
    watcher = bus.subscribe(["fill"])
    started = time.perf_counter()
    for i in range(10_000):
        bus.publish("fill", "s", f"fill {i}", {})
        bus.publish("order", "s", "ignored", {})
    assert time.perf_counter() - started < 2
    first, second = watcher.get(0.1), watcher.get(0.1)
    assert first is not None and second is not None and first.dropped == second.dropped == 0
    assert watcher.get(0.01) is None
    bus.publish("fill", "s", "after", {})
    third = watcher.get(0.1)
    assert third is not None and third.dropped == 9_998 and third.event.summary == "after"
    bus.close()
    assert watcher.closed and watcher.get(0.01) is None
    with pytest.raises(Exception, match="watchers"):
        full = EventBus(max_watchers=1)
        full.subscribe()
        full.subscribe()
