"""The gRPC control server: a sync `grpc.server` on a thread pool, bridged into trio.

grpcio has no trio support, so handlers run in the server's pool threads and cross into trio
with the trio token (shared/grpc-trio.md). Traps this module avoids:

- `trio.from_thread.run` would run the work in trio's *system* nursery, which is cancelled only
  when `trio.run` ends: one slow call would hold shutdown. The bridge starts each call as a task
  in a nursery `serve_control` owns, and cancels it after `server.stop(grace)`.
- After `trio.run` ends a bridged call raises `RunFinishedError`; a call in flight when the
  bridge closes is cancelled. Both answer UNAVAILABLE.
- gRPC sets SO_REUSEPORT: a second daemon on the same port would bind *successfully*. It is
  turned off, so a taken port fails loudly.

Readiness and shutdown: `serve_control` calls `task_status.started(handle)` once the server
listens; `handle.stop()` stops it (grace `STOP_GRACE_S` for calls in flight) before the daemon
stops the tree, so no RPC ever reaches a tree being torn down.
"""

from __future__ import annotations

import ipaddress
import logging
from concurrent import futures
from typing import Final

import grpc
import trio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from protos import control_pb2, control_pb2_grpc

from ._auth import TokenInterceptor, TokenTable
from ._control import ControlService
from ._grpc_bridge import TrioBridge
from ._grpc_servicer import ControlServicer

logger = logging.getLogger("steward.control.server")

STOP_GRACE_S: Final = 1.0  # calls in flight get this long to finish when the daemon stops
POOL_THREADS: Final = 8  # unary calls only: a handler thread waits for its trio task
SERVICE_NAME: Final = control_pb2.DESCRIPTOR.services_by_name["Control"].full_name


class ControlServerError(Exception):
    """The control server cannot start: a non-loopback bind without TLS, a taken port."""


def check_bind(bind: str) -> None:
    """Refuse anything but loopback: TLS is not there yet, and tokens must not travel bare."""
    host, sep, port = bind.rpartition(":")
    if not sep or not port.isdigit():
        raise ControlServerError(f"control.bind must be host:port, got {bind!r}")
    host = host.strip("[]")
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ControlServerError(
            f"control.bind {bind!r} is not a loopback address; serving the control plane "
            "beyond this host requires TLS, which this version does not support yet"
        )


class ControlServerHandle:
    """The running server: its port, and `stop()` (bounded, idempotent)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._stop_requested = trio.Event()
        self._stopped = trio.Event()

    async def stop(self) -> None:
        self._stop_requested.set()
        with trio.move_on_after(STOP_GRACE_S + 2):
            await self._stopped.wait()


async def serve_control(
    service: ControlService, bind: str, tokens: TokenTable,
    *, task_status: trio.TaskStatus[ControlServerHandle] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the Control service, health and reflection on `bind` until stopped or
    cancelled. Raises ControlServerError if it cannot listen."""
    check_bind(bind)
    bridge = TrioBridge(trio.lowlevel.current_trio_token())
    pool = futures.ThreadPoolExecutor(max_workers=POOL_THREADS, thread_name_prefix="steward-grpc")
    server = grpc.server(pool, interceptors=[TokenInterceptor(tokens)],
                         options=[("grpc.so_reuseport", 0)])
    control_pb2_grpc.add_ControlServicer_to_server(ControlServicer(service, bridge), server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    try:
        port = server.add_insecure_port(bind)
    except RuntimeError as exc:
        pool.shutdown(wait=False)
        raise ControlServerError(f"cannot listen on {bind}: {exc}") from None
    # The bridge's nursery is ours, not trio's system nursery: cancelled once the server stops.
    async with trio.open_nursery() as bridge_nursery:
        bridge.attach(bridge_nursery)
        server.start()
        for name in ("", SERVICE_NAME):
            health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        handle = ControlServerHandle(port)
        logger.info("control server listening on %s", bind.rsplit(":", 1)[0]
                    + f":{port}")
        try:
            task_status.started(handle)
            await handle._stop_requested.wait()
        finally:
            with trio.CancelScope(shield=True):
                health_servicer.enter_graceful_shutdown()
                stopped = server.stop(STOP_GRACE_S)
                with trio.move_on_after(STOP_GRACE_S + 1):
                    await trio.to_thread.run_sync(stopped.wait, abandon_on_cancel=True)
            bridge_nursery.cancel_scope.cancel()  # calls still in trio end UNAVAILABLE
            pool.shutdown(wait=False)
            handle._stopped.set()
            logger.info("control server stopped")
