"""Crash recovery: actors killed mid-trading, and the whole daemon killed with SIGKILL.

Nothing may be lost or counted twice: afterwards the journal, our positions and the venue agree.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import trio

from actors.journal import JournalStore, TradingStateRecorded
from actors.messages import gateway_name
from exchanges.paper import PaperVenue
from supervisor import ChildKilledError
from supervisor._assembly import assemble
from tests.clients.harness import free_port
from tests.trading import journal_store, paper_config, running_daemon

STEWARD = [sys.executable, "-m", "supervisor.cli", "run", "--plain"]


async def test_positions_and_gateway_killed_mid_trading_then_positions_equal_venue(
    autojump_clock, steward_home
):
    async with running_daemon(steward_home) as daemon:
        core = daemon.root.find_supervisor("core")
        await trio.sleep(120)
        await core.kill_child("positions")  # rest_for_one: risk and gateways restart too
        await trio.sleep(120)
        await core.kill_child(gateway_name("paper-a", "mm"))
        await trio.sleep(120)
        status = await daemon.status()
        fills_at_venues = {
            (f.venue, f.fill_id) for v in daemon.assembly.venues.values() for f in v.ledger.fills
        }
    killed = [a for a in status.actors if a.last_error is not None]
    assert {a.last_error.type for a in killed if a.last_error} == {ChildKilledError.__name__}
    assert status.position_checks and all(check.agrees for check in status.position_checks)
    store = journal_store(steward_home)
    try:
        journaled = [(r.fill.venue, r.fill.fill_id) for r in store.fills()]
    finally:
        store.close()
    assert len(journaled) == len(set(journaled))  # nothing counted twice
    assert set(journaled) == fills_at_venues  # nothing lost
    assert len(fills_at_venues) > 10


def _start(home: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "STEWARD_HOME": str(home),
           "STEWARD_CONTROL_BIND": f"127.0.0.1:{free_port()}"}
    return subprocess.Popen(STEWARD, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def _journal_fill_count(home: Path) -> int:
    path = home / "journal.sqlite"
    if not path.exists():
        return 0
    store = JournalStore(path)
    try:
        return len(store.fills())
    finally:
        store.close()


def _wait_for_fills(home: Path, at_least: int, deadline_s: float = 60.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if _journal_fill_count(home) >= at_least:
            return
        time.sleep(0.25)
    raise AssertionError(f"fewer than {at_least} fills journaled within {deadline_s} s")


def _venue_fills(home: Path) -> dict[tuple[str, str], object]:
    assembly = assemble(paper_config(), home)  # loads each venue's state file
    venues: dict[str, PaperVenue] = assembly.venues
    return {(f.venue, f.fill_id): f for v in venues.values() for f in v.ledger.fills}


def test_daemon_sigkilled_mid_trading_then_restart_loses_nothing_and_keeps_halt(steward_home):
    # Run 1: trade, then die without any chance to clean up.
    daemon = _start(steward_home)
    try:
        _wait_for_fills(steward_home, at_least=3)
    finally:
        daemon.send_signal(signal.SIGKILL)
        daemon.communicate(timeout=30)
    # Run 2: comes back, reconciles what happened while it was dead, trades on; then an
    # operator halt is recorded and it is killed again.
    daemon = _start(steward_home)
    try:
        before = _journal_fill_count(steward_home)
        _wait_for_fills(steward_home, at_least=before + 2)
        store = JournalStore(steward_home / "journal.sqlite")
        try:
            store.write_batch([TradingStateRecorded(
                ts_ns=time.time_ns(), state="halted", reason="test: halted before the kill",
                actor="test",
            )])
        finally:
            store.close()
    finally:
        daemon.send_signal(signal.SIGKILL)
        daemon.communicate(timeout=30)
    orders_before_run_3 = _venue_order_count(steward_home)
    # Run 3: must come back halted and place nothing; then stop in order.
    daemon = _start(steward_home)
    try:
        assert daemon.stderr is not None
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = daemon.stderr.readline()
            lines.append(line)
            if "daemon ready" in line or not line:
                break
        time.sleep(3)  # strategies would have quoted by now
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, rest = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, "".join(lines) + rest

    fills = _venue_fills(steward_home)
    store = JournalStore(steward_home / "journal.sqlite")
    try:
        journaled = [(r.fill.venue, r.fill.fill_id) for r in store.fills()]
        state = store.trading_state()
    finally:
        store.close()
    assert len(journaled) == len(set(journaled))  # no fill counted twice
    assert set(journaled) == set(fills)  # no fill lost, across two SIGKILLs
    assert state is not None and state.state == "halted"  # the halt survived the kill
    assert _venue_order_count(steward_home) == orders_before_run_3  # halted: nothing placed


def _venue_order_count(home: Path) -> int:
    """Orders ever placed on the paper venues, from their state files."""
    count = 0
    for path in (home / "paper").glob("*.jsonl"):
        count += sum(1 for line in path.read_text().splitlines()
                     if '"type":"VenueOrder"' in line and '"status":"open"' in line)
    return count
