"""`control`: GetStatus over the gRPC control plane, against a bare unary RPC on the same server.

The daemon as `steward run` wires it with the shipped paper config (examples/paper.toml: two
paper venues, eight accounts, six strategies trading): `supervisor._assembly`, the paper
venues running beside the tree (PaperWorld, real clock), the tree under a real Supervisor and
`serve_control` (token interceptor, health, reflection) on 127.0.0.1 with a free port. The
journal, the paper state and the local admin token live in a temporary STEWARD_HOME under the
system temp dir.

Client: the generated stub and `clients.ControlClient` (sync) in a worker thread
(`trio.to_thread`), so the daemon's trio loop runs as in production while the client waits.
Each sample is one call, timed with perf_counter_ns around it on the client side. The headline
`get_status_*` is the RPC through the stub, like the ping it is compared with;
`client_status_*` is ControlClient.status(), which adds converting the reply to Python data.

Floor ("ping"): the standard `grpc.health.v1.Health/Check`, served by the same server in the
same run. It needs no token (the interceptor passes health through) and never enters trio:
a bare unary RPC, the cheapest call that server answers. Ping and GetStatus alternate call by
call so machine noise falls on both alike.

Breakdown (where GetStatus's time goes): `bridge_*` a `trio.from_thread.run` round trip of a no-op
from the same thread (the crossing into trio); `collect_status_*` `ControlService.status()`
called in trio with no gRPC at all (it asks risk, positions, each feed and each gateway in
turn, and each venue account for its positions); `actor_ask_*` one ask of risk alone.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import grpc
import msgspec
import trio
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc

from actors.messages import RISK, GetTradingState
from clients._client import ControlClient
from protos import control_pb2, control_pb2_grpc
from supervisor import Supervisor
from supervisor._assembly import Assembly, assemble, running_venues
from supervisor._auth import load_tokens, local_admin_token
from supervisor._config import ControlConfig, DaemonConfig, load_config
from supervisor._control import ControlService
from supervisor._grpc import serve_control
from supervisor._grpc_convert import status_message

from ._stats import percentile_us

PAPER_CONFIG: Final = Path(__file__).resolve().parent.parent / "examples" / "paper.toml"
BIND: Final = "127.0.0.1:0"  # a free port: never collides with a running daemon
WARMUP: Final = 300
SAMPLES: Final = 2_000
TRIO_SAMPLES: Final = 2_000
TARGET_RATIO_P50: Final = 1.5
TIMEOUT_S: Final = 5.0


@dataclass
class Daemon:
    """One daemon running in this trio run: its tree, its control service and server."""

    root: Supervisor
    assembly: Assembly
    service: ControlService
    address: str
    token: str


def bench_config(config: DaemonConfig) -> DaemonConfig:
    """The config on a free loopback port with the local admin token (no token env vars)."""
    return msgspec.structs.replace(config, control=ControlConfig(bind=BIND))


@asynccontextmanager
async def running_daemon(
    config: DaemonConfig, home: Path, prepare: Callable[[Assembly], None] | None = None,
) -> AsyncIterator[Daemon]:
    """The daemon as run_daemon starts it, minus signals and the home lock: paper venues, the
    tree, then the control server once the tree is ready; stopped in the daemon's order.
    `prepare` sees the assembly before anything runs (to install instrumented clients)."""
    tokens = load_tokens(config.control, home)
    token = local_admin_token(home)
    assembly = assemble(config, home)
    if prepare is not None:
        prepare(assembly)
    root = Supervisor(assembly.tree())
    service = ControlService(root, assembly)
    async with running_venues(assembly), trio.open_nursery() as nursery:
        await nursery.start(root.run)
        handle = await nursery.start(serve_control, service, config.control.bind, tokens)
        try:
            yield Daemon(root=root, assembly=assembly, service=service,
                         address=f"127.0.0.1:{handle.port}", token=token)
        finally:
            with trio.CancelScope(shield=True):
                await handle.stop()
            root.request_stop()


def _timed(call: Callable[[], object]) -> int:
    started = time.perf_counter_ns()
    call()
    return time.perf_counter_ns() - started


async def _noop() -> None:
    pass


def _client_side(daemon: Daemon, trio_token: trio.lowlevel.TrioToken) -> dict[str, list[int]]:
    """In a worker thread: ping, GetStatus (client and bare stub) and the bridge, alternating."""
    metadata = (("authorization", f"Bearer {daemon.token}"),)
    samples: dict[str, list[int]] = {"ping": [], "status": [], "stub": [], "bridge": [],
                                     "to_dict": [], "reply_bytes": []}
    with ControlClient(daemon.address, token=daemon.token, timeout_s=TIMEOUT_S) as client, \
            grpc.insecure_channel(daemon.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        stub = control_pb2_grpc.ControlStub(channel)
        calls: dict[str, Callable[[], object]] = {
            "ping": lambda: health.Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT_S),
            "status": client.status,
            "stub": lambda: stub.GetStatus(control_pb2.GetStatusRequest(), timeout=TIMEOUT_S,
                                           metadata=metadata),
            "bridge": lambda: trio.from_thread.run(_noop, trio_token=trio_token),
        }
        status = client.status()
        assert status["trading"]["state"] == "ACTIVE", status["trading"]
        for _ in range(WARMUP):
            for call in calls.values():
                call()
        for _ in range(SAMPLES):
            for name, call in calls.items():
                samples[name].append(_timed(call))
        # The client's own share: the reply to a dict, as ControlClient.status converts it.
        reply = stub.GetStatus(control_pb2.GetStatusRequest(), timeout=TIMEOUT_S,
                               metadata=metadata)
        samples["reply_bytes"].append(reply.ByteSize())
        for _ in range(SAMPLES):
            samples["to_dict"].append(_timed(lambda: json_format.MessageToDict(
                reply, preserving_proto_field_name=True,
                always_print_fields_with_no_presence=True)))
    return samples


async def _trio_side(daemon: Daemon) -> dict[str, list[int]]:
    """In trio, no gRPC: collect_status itself and its parts (one ask of risk, every venue
    account's positions, the tree's snapshot), and the server's conversion to the proto."""
    risk = daemon.root.registry.lookup(RISK)
    clients = [daemon.assembly.account_client(venue.name, account)
               for venue in daemon.assembly.config.venues for account in venue.accounts]
    parts: dict[str, list[int]] = {"collect": [], "ask": [], "venue_positions": [],
                                   "snapshot": [], "to_proto": []}
    for index in range(WARMUP + TRIO_SAMPLES):
        stamps = [time.perf_counter_ns()]
        status = await daemon.service.status()
        stamps.append(time.perf_counter_ns())
        await risk.ask(GetTradingState(), timeout_s=TIMEOUT_S)
        stamps.append(time.perf_counter_ns())
        for client in clients:
            await client.positions()
        stamps.append(time.perf_counter_ns())
        daemon.root.snapshot()
        stamps.append(time.perf_counter_ns())
        status_message(status)
        stamps.append(time.perf_counter_ns())
        if index >= WARMUP:
            for name, start, end in zip(parts, stamps, stamps[1:], strict=False):
                parts[name].append(end - start)
    return parts


async def run_control() -> dict[str, Any]:
    config = bench_config(load_config(PAPER_CONFIG))
    with tempfile.TemporaryDirectory(prefix="steward-bench-") as tmp:
        async with running_daemon(config, Path(tmp)) as daemon:
            token = trio.lowlevel.current_trio_token()
            client = await trio.to_thread.run_sync(_client_side, daemon, token)
            in_trio = await _trio_side(daemon)
            status = await daemon.service.status()
    accounts = sum(len(v.accounts) for v in config.venues)
    result: dict[str, Any] = {
        "config": "examples/paper.toml",
        "ping": "grpc.health.v1.Health/Check on the same server: no token, never enters trio",
        "samples": len(client["status"]),
        "get_status_p50_us": percentile_us(client["stub"], 0.50),
        "get_status_p99_us": percentile_us(client["stub"], 0.99),
        "ping_p50_us": percentile_us(client["ping"], 0.50),
        "ping_p99_us": percentile_us(client["ping"], 0.99),
        "client_status_p50_us": percentile_us(client["status"], 0.50),
        "client_status_p99_us": percentile_us(client["status"], 0.99),
        "bridge_p50_us": percentile_us(client["bridge"], 0.50),
        "bridge_p99_us": percentile_us(client["bridge"], 0.99),
        "collect_status_p50_us": percentile_us(in_trio["collect"], 0.50),
        "collect_status_p99_us": percentile_us(in_trio["collect"], 0.99),
        "actor_ask_p50_us": percentile_us(in_trio["ask"], 0.50),
        "actor_ask_p99_us": percentile_us(in_trio["ask"], 0.99),
        "venue_positions_all_accounts_p50_us": percentile_us(in_trio["venue_positions"], 0.50),
        "snapshot_p50_us": percentile_us(in_trio["snapshot"], 0.50),
        "server_to_proto_p50_us": percentile_us(in_trio["to_proto"], 0.50),
        "client_to_dict_p50_us": percentile_us(client["to_dict"], 0.50),
        "status_reply_bytes": client["reply_bytes"][0],
        "status_actors": len(status.actors),
        "status_asks": 2 + len(config.venues) + accounts,
        "status_venue_calls": accounts,
    }
    result["ratio_p50"] = round(result["get_status_p50_us"] / result["ping_p50_us"], 2)
    result["ratio_p99"] = round(result["get_status_p99_us"] / result["ping_p99_us"], 2)
    result["meets_targets"] = result["ratio_p50"] <= TARGET_RATIO_P50
    return result
