"""The control operations in-process (the gRPC layer only translates): emergency stop, resume,
pause and restart of actors, live parameters; each journaled with who asked."""

from __future__ import annotations

import contextlib
import json
from decimal import Decimal
from pathlib import Path

import pytest
import trio

from actors.messages import TradingState
from supervisor import ActorState, ChildNotFoundError, SupervisionError, SupervisorFailedError
from supervisor._control import ControlError, ControlService
from tests.trading import RunningDaemon, journal_store, running_daemon


def control(daemon: RunningDaemon) -> ControlService:
    return ControlService(daemon.root, daemon.assembly)


def open_orders(daemon: RunningDaemon) -> int:
    return sum(len(v.ledger.open_orders(account)) for v in daemon.assembly.venues.values()
               for account in v.ledger.accounts)


def control_actions(home: Path) -> list[dict[str, object]]:
    store = journal_store(home)
    try:
        return [json.loads(e.detail) for e in store.events() if e.kind == "control_action"]
    finally:
        store.close()


async def test_emergency_stop_when_trading_then_halted_nothing_rests_and_stays_so(
    autojump_clock, steward_home
):
    async with running_daemon(steward_home) as daemon:
        await trio.sleep(60)
        assert open_orders(daemon) > 0
        report = await control(daemon).emergency_stop("test: stop", flatten=False, who="ops")
        # halted, every order of every account cancelled, every strategy stopped
        status = await daemon.status()
        assert status.trading is not None and status.trading.state is TradingState.HALTED
        assert not report.already_halted and report.elapsed_ms >= 0
        assert {(a.venue, a.account) for a in report.accounts} == {
            (v.name, a) for v in daemon.assembly.config.venues for a in v.accounts
        }
        assert open_orders(daemon) == 0
        strategies = [a for a in status.actors if a.path.startswith("root/strategies/")]
        assert strategies and all(a.state is ActorState.STOPPED for a in strategies)
        await trio.sleep(60)  # nothing comes back
        assert open_orders(daemon) == 0
        again = await control(daemon).emergency_stop("test: again", flatten=False, who="ops")
        assert again.already_halted
    actions = control_actions(steward_home)
    assert [(a["action"], a["who"], a["outcome"]) for a in actions] == [
        ("emergency_stop", "ops", "halted"),
        ("emergency_stop", "ops", "already halted; cancelled again"),
    ]


async def test_halt_when_daemon_restarts_then_comes_back_halted_until_resume(
    autojump_clock, steward_home
):
    async with running_daemon(steward_home) as daemon:
        await trio.sleep(30)
        await control(daemon).emergency_stop("test: halt", flatten=False, who="ops")
    async with running_daemon(steward_home) as daemon:
        await trio.sleep(60)
        status = await daemon.status()
        assert status.trading is not None and status.trading.state is TradingState.HALTED
        assert open_orders(daemon) == 0  # strategies run, but risk lets nothing through
        changed = await control(daemon).resume("test: all clear", who="ops")
        assert changed.state is TradingState.ACTIVE
        await trio.sleep(60)
        assert open_orders(daemon) > 0  # trading again


async def test_emergency_stop_with_flatten_then_positions_closed_by_reduce_only_orders(
    autojump_clock, steward_home
):
    async with running_daemon(steward_home) as daemon:
        await trio.sleep(300)
        before = await daemon.status()
        assert any(p.qty != 0 for p in before.positions)
        report = await control(daemon).emergency_stop("test: flatten", flatten=True, who="ops")
        assert any(a.positions_flattened for a in report.accounts)
        await trio.sleep(5)
        for venue in daemon.assembly.venues.values():
            for account in venue.ledger.accounts:
                assert venue.ledger.positions(account) == [], (venue.name, account)


async def test_resume_after_stop_then_strategies_run_again(autojump_clock, steward_home):
    async with running_daemon(steward_home) as daemon:
        await trio.sleep(30)
        await control(daemon).emergency_stop("test", flatten=False, who="ops")
        await control(daemon).resume("test", who="ops")
        status = await daemon.status()
        strategies = [a for a in status.actors if a.path.startswith("root/strategies/")]
        assert all(a.state is ActorState.RUNNING for a in strategies)


async def test_pause_and_resume_actor_when_asked_then_it_stops_and_starts_again(
    autojump_clock, steward_home
):
    async with running_daemon(steward_home) as daemon:
        service = control(daemon)
        await trio.sleep(30)
        await service.pause_actor("mm-btc-a", who="ops")
        await trio.sleep(30)
        row = next(a for a in daemon.root.snapshot() if a.path.endswith("/mm-btc-a"))
        assert row.state is ActorState.STOPPED
        venue = daemon.assembly.venues["paper-a"]
        assert not [o for o in venue.ledger.open_orders("mm") if o.symbol == "BTC-PERP"]
        await service.resume_actor("mm-btc-a", who="ops")
        await service.restart_actor("mm-btc-b", who="ops")
        rows = {a.path.rsplit("/", 1)[-1]: a for a in daemon.root.snapshot()}
        assert rows["mm-btc-a"].state is ActorState.RUNNING
        assert rows["mm-btc-b"].restart_count == 1
        with pytest.raises(ControlError) as info:
            await service.pause_actor("nobody", who="ops")
        assert info.value.code == "not_found"


async def test_update_params_when_invalid_then_nothing_changes_and_when_valid_then_applied(
    autojump_clock, steward_home
):
    async with running_daemon(steward_home) as daemon:
        service = control(daemon)
        before = await service.get_params("mm-btc-a")
        rejected = await service.update_params("mm-btc-a", {"spread_bps": "-1"},
                                               dry_run=False, who="ops")
        assert not rejected.accepted and "spread_bps" in rejected.error
        assert (await service.get_params("mm-btc-a")).params == before.params
        dry = await service.update_params("mm-btc-a", {"spread_bps": "3"}, dry_run=True,
                                          who="ops")
        assert dry.accepted and (await service.get_params("mm-btc-a")).params == before.params
        applied = await service.update_params("mm-btc-a", {"spread_bps": "3"},
                                              dry_run=False, who="ops")
        assert applied.accepted
        assert Decimal(str((await service.get_params("mm-btc-a")).params["spread_bps"])) == 3
        assert "properties" in str(applied.schema)
        with pytest.raises(ControlError):
            await service.get_params("nobody")
    outcomes = [a["outcome"] for a in control_actions(steward_home)]
    assert outcomes == ["rejected", "dry run", "applied"]


async def test_crash_loop_when_root_gives_up_then_halted_like_an_emergency_stop(
    autojump_clock, steward_home
):
    gave_up = False
    try:
        async with running_daemon(steward_home) as daemon:
            await trio.sleep(30)
            assert open_orders(daemon) > 0
            for _ in range(4_000):  # risk crashes until core, and then root, give up
                with contextlib.suppress(SupervisionError, ChildNotFoundError):
                    await daemon.root.find_supervisor("core").kill_child("risk")
                await trio.sleep(0.05)
    except* SupervisorFailedError:
        gave_up = True
        venues = daemon.assembly.venues
        assert all(not v.ledger.open_orders(a) for v in venues.values() for a in v.ledger.accounts)
    assert gave_up
    store = journal_store(steward_home)
    try:
        state = store.trading_state()
    finally:
        store.close()
    assert state is not None and state.state == "halted"
    assert state.reason.startswith("root supervisor gave up")
    assert [a["who"] for a in control_actions(steward_home)] == ["supervisor"]
