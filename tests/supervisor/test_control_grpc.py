"""The Control service over real gRPC on loopback, against the running paper daemon (real
clock; every test bounded by trio.fail_after)."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path

import pytest
import trio

from actors.messages import RISK, OrderIntent, SubmitOrder
from clients import ControlClient, InvalidArgument, NotFound
from exchanges import OrderType, Side
from supervisor._auth import Role
from tests.clients.harness import TOKENS, ServedDaemon, blocking, served_daemon
from tests.trading import RunningDaemon

ORDERS_WAIT_S = 8.0


def client(served: ServedDaemon, role: Role = Role.ADMIN) -> ControlClient:
    return ControlClient(served.address, token=TOKENS[role], timeout_s=10)


async def open_orders(daemon: RunningDaemon) -> int:
    count = 0
    for venue_config in daemon.assembly.config.venues:
        venue = daemon.assembly.venues[venue_config.name]
        for account in venue_config.accounts:
            count += len(await venue.account(account).open_orders())
    return count


async def wait_for_open_orders(daemon: RunningDaemon) -> None:
    with trio.fail_after(ORDERS_WAIT_S):
        while await open_orders(daemon) == 0:  # noqa: ASYNC110 (the venue has no event)
            await trio.sleep(0.1)


async def test_get_status_when_paper_daemon_runs_then_actors_positions_and_orders_shown(
    steward_home: Path,
):
    with trio.fail_after(25):
        async with served_daemon(steward_home) as served:
            await wait_for_open_orders(served.daemon)
            with client(served, Role.VIEWER) as viewer:
                status = await blocking(viewer.status)
    assert status["name"] == "paper"
    assert status["trading"]["state"] == "ACTIVE"
    paths = {a["path"]: a for a in status["actors"]}
    assert paths["root/core/risk"]["state"] == "RUNNING"
    assert "root/strategies/mm-btc-a" in paths
    assert {f["venue"] for f in status["feeds"]} == {"paper-a", "paper-b"}
    assert status["open_orders"]
    for check in status["position_checks"]:
        assert Decimal(check["tracked_qty"]) == Decimal(check["venue_qty"]) and check["agrees"]
    assert set(status["pnl"]) == {"realized", "unrealized", "fees", "funding", "net"}


async def test_update_params_when_invalid_then_invalid_argument_names_field_and_unchanged(
    steward_home: Path,
):
    with trio.fail_after(25):
        async with served_daemon(steward_home) as served:
            with client(served, Role.OPERATOR) as op:
                before = await blocking(op.get_params, "mm-btc-a")
                bad = {**before["params"], "spread_bps": "not-a-number"}
                with pytest.raises(InvalidArgument, match="spread_bps"):
                    await blocking(lambda: op.update_params("mm-btc-a", bad))
                after_bad = await blocking(op.get_params, "mm-btc-a")
                dry = await blocking(lambda: op.update_params(
                    "mm-btc-a", {**before["params"], "spread_bps": "3"}, dry_run=True))
                after_dry = await blocking(op.get_params, "mm-btc-a")
                good = await blocking(lambda: op.update_params(
                    "mm-btc-a", {**before["params"], "spread_bps": "3", "max_orders": 3}))
                after_good = await blocking(op.get_params, "mm-btc-a")
                with pytest.raises(NotFound):
                    await blocking(op.get_params, "no-such-strategy")
    assert before["params"]["spread_bps"] == "1.5"
    assert "spread_bps" in json.dumps(before["schema"])  # the JSON schema names the knob
    assert after_bad["params"] == before["params"]
    assert dry["dry_run"] and after_dry["params"] == before["params"]
    assert good["accepted"] and after_good["params"]["spread_bps"] == "3"
    assert after_good["params"]["max_orders"] == 3


async def probe_order_reaches_venue(daemon: RunningDaemon) -> bool:
    """Submit a far-from-market limit order through risk; True if the venue got it."""
    client_id = f"probe-{time.time_ns():x}"
    intent = OrderIntent(client_id=client_id, strategy="probe", venue="paper-a", account="arb",
                         symbol="BTC-PERP", side=Side.BUY, order_type=OrderType.LIMIT,
                         qty=Decimal("0.001"), price=Decimal("50000"),
                         ts_created_ns=time.time_ns())
    await daemon.root.registry.lookup(RISK).tell(SubmitOrder(intent=intent))
    await trio.sleep(0.5)
    orders = await daemon.assembly.venues["paper-a"].account("arb").open_orders()
    return any(o.client_id == client_id for o in orders)


async def test_emergency_stop_when_trading_then_halted_cancelled_persisted_and_resumable(
    steward_home: Path,
):
    with trio.fail_after(35):
        async with served_daemon(steward_home) as served:
            await wait_for_open_orders(served.daemon)
            with client(served, Role.KILL) as kill:
                first = await blocking(lambda: kill.emergency_stop("test: stop everything"))
                await trio.sleep(1)  # strategies paused: nothing comes back
                left = await open_orders(served.daemon)
                reaches = await probe_order_reaches_venue(served.daemon)
                second = await blocking(lambda: kill.emergency_stop("test: again"))
            with client(served, Role.VIEWER) as viewer:
                halted = await blocking(viewer.status)
        async with served_daemon(steward_home) as served:  # a restart on the same home
            with client(served, Role.VIEWER) as viewer:
                restarted = await blocking(viewer.status)
            with client(served, Role.OPERATOR) as op:
                resumed = await blocking(op.resume, "test: all clear")
                active = await blocking(viewer_status, served)
    assert first["already_halted"] is False
    assert sum(a["orders_cancelled"] for a in first["accounts"]) > 0
    assert {(a["venue"], a["account"]) for a in first["accounts"]} >= {("paper-a", "mm"),
                                                                      ("paper-b", "mm")}
    assert all(a["error"] == "" for a in first["accounts"]) and first["elapsed_ms"] > 0
    assert left == 0 and not reaches
    assert second["already_halted"] is True
    assert halted["trading"]["state"] == "HALTED"
    assert restarted["trading"]["state"] == "HALTED"
    assert resumed["state"] == "ACTIVE"
    assert active["trading"]["state"] == "ACTIVE"


def viewer_status(served: ServedDaemon) -> dict[str, object]:
    with client(served, Role.VIEWER) as viewer:
        return viewer.status()
