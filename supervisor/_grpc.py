"""The gRPC control server: a sync `grpc.server` on a thread pool, bridged into trio.

grpcio has no trio support, so handlers run in the server's pool threads and cross into trio
with the trio token (shared/grpc-trio.md). Traps this module avoids:

- `trio.from_thread.run` would run the work in trio's *system* nursery, which is cancelled only
  when `trio.run` ends: one slow call would hold shutdown. The bridge starts each call as a task
  in a nursery `serve_control` owns, and cancels it after `server.stop(grace)`.
- After `trio.run` ends a bridged call raises `RunFinishedError`; a call in flight when the
  bridge closes is cancelled. Both answer UNAVAILABLE.
- A non-loopback bind is refused unless TLS is configured: tokens must not travel bare. With
  `tls_client_ca_file` the server requires client certificates (mTLS); the token is still
  required on every call but health, and the caller's CN is journaled with the token name.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import grpc
import trio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from protos import control_pb2, control_pb2_grpc

from ._auth import TokenInterceptor, TokenTable
from ._config import ControlConfig
from ._control import ControlService
from ._events_bus import MAX_WATCHERS
from ._grpc_bridge import TrioBridge
from ._grpc_convert import status_message
from ._grpc_servicer import ControlServicer
from ._status_cache import STATUS_REFRESH_S, StatusCache

logger = logging.getLogger("steward.control.server")

STOP_GRACE_S: Final = 1.0  # calls in flight get this long to finish when the daemon stops
# A unary call's thread waits for its trio task; each open WatchEvents stream pins a thread for
# its life. Watchers are capped (RESOURCE_EXHAUSTED past the cap), so unary calls keep 8.
POOL_THREADS: Final = MAX_WATCHERS + 8
SERVICE_NAME: Final = control_pb2.DESCRIPTOR.services_by_name["Control"].full_name


class ControlServerError(Exception):
    """The control server cannot start: a non-loopback bind without TLS, a taken port."""


@dataclass(frozen=True)
class ServerTls:
    """The server's TLS material, read once at start. `client_ca` set: mTLS. The key never
    appears in a repr, a log line or an error."""

    cert_chain: bytes = field(repr=False)
    private_key: bytes = field(repr=False)
    client_ca: bytes | None = field(default=None, repr=False)

    @property
    def mutual(self) -> bool:
        return self.client_ca is not None

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.private_key, self.cert_chain)], root_certificates=self.client_ca,
            require_client_auth=self.mutual)


def load_server_tls(config: ControlConfig) -> ServerTls | None:
    """The configured TLS material (paths as `load_config` resolved them), or None without
    `tls_cert_file`. An unreadable or non-PEM file is a ControlServerError naming the file."""
    if config.tls_cert_file is None or config.tls_key_file is None:
        return None

    def read(key: str, name: str) -> bytes:
        try:
            data = Path(name).read_bytes()
        except OSError as exc:
            raise ControlServerError(f"control.{key}: cannot read {name}: "
                                     f"{exc.strerror or type(exc).__name__}") from None
        if b"-----BEGIN " not in data:
            raise ControlServerError(f"control.{key}: {name} is not a PEM file")
        return data

    ca = config.tls_client_ca_file
    return ServerTls(read("tls_cert_file", config.tls_cert_file),
                     read("tls_key_file", config.tls_key_file),
                     None if ca is None else read("tls_client_ca_file", ca))


def check_bind(bind: str, *, tls: bool = False) -> None:
    """Refuse anything but loopback unless `tls`: tokens must not travel bare."""
    host, sep, port = bind.rpartition(":")
    if not sep or not port.isdigit():
        raise ControlServerError(f"control.bind must be host:port, got {bind!r}")
    host = host.strip("[]")
    if tls or host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ControlServerError(
            f"control.bind {bind!r} is not a loopback address; serving the control plane "
            "beyond this host requires TLS: set control.tls_cert_file and control.tls_key_file "
            "(and control.tls_client_ca_file for mTLS)"
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


async def _refresh_status(service: ControlService, cache: StatusCache) -> None:
    """Keep the cached status reply fresh while it is polled (see _status_cache); ends with
    the server."""
    while True:
        if not cache.wanted():
            await trio.sleep(STATUS_REFRESH_S)
            continue
        generation = cache.generation()
        try:
            status = status_message(await service.status())
        except Exception:
            logger.exception("status refresh failed; GetStatus collects afresh meanwhile")
        else:
            cache.store(status, generation)
        await trio.sleep(STATUS_REFRESH_S)


async def serve_control(
    service: ControlService, bind: str, tokens: TokenTable, tls: ServerTls | None = None,
    *, task_status: trio.TaskStatus[ControlServerHandle] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the Control service, health and reflection on `bind` (over TLS when `tls` is
    given) until stopped or cancelled. Raises ControlServerError if it cannot listen."""
    check_bind(bind, tls=tls is not None)
    bridge = TrioBridge(trio.lowlevel.current_trio_token())
    pool = futures.ThreadPoolExecutor(max_workers=POOL_THREADS, thread_name_prefix="steward-grpc")
    server = grpc.server(pool, interceptors=[TokenInterceptor(tokens)],
                         options=[("grpc.so_reuseport", 0)])
    cache = StatusCache()
    control_pb2_grpc.add_ControlServicer_to_server(ControlServicer(service, bridge, cache),
                                                   server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    try:
        port = (server.add_insecure_port(bind) if tls is None
                else server.add_secure_port(bind, tls.credentials()))
    except RuntimeError as exc:
        pool.shutdown(wait=False)
        raise ControlServerError(f"cannot listen on {bind}: {exc}") from None
    # The bridge's nursery is ours, not trio's system nursery: cancelled once the server stops.
    async with trio.open_nursery() as bridge_nursery:
        bridge.attach(bridge_nursery)
        service.attach_background(bridge_nursery)
        bridge_nursery.start_soon(_refresh_status, service, cache)
        server.start()
        for name in ("", SERVICE_NAME):
            health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        handle = ControlServerHandle(port)
        logger.info("control server listening on %s (%s)", bind.rsplit(":", 1)[0]
                    + f":{port}", "plaintext" if tls is None else
                    "mTLS" if tls.mutual else "TLS")
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
