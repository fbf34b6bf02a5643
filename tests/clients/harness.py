"""A paper daemon with its gRPC control server, in-process, on the real clock.

gRPC runs in real threads, so these tests cannot use MockClock: each is bounded by
`trio.fail_after` instead. Blocking client calls go through `blocking(...)` (a worker thread):
called on the trio thread they would block the loop the server bridges into.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import trio

from supervisor._auth import Role, TokenTable, digest
from supervisor._control import ControlService
from supervisor._grpc import ControlServerHandle, serve_control
from tests.trading import RunningDaemon, running_daemon

T = TypeVar("T")

TOKENS = {role: f"secret-{role.value}-token" for role in Role}
"""One token per role, named after the role."""


def token_table() -> TokenTable:
    return TokenTable([(role.value, role, digest(token)) for role, token in TOKENS.items()])


@dataclass
class ServedDaemon:
    daemon: RunningDaemon
    server: ControlServerHandle

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.port}"


@asynccontextmanager
async def served_daemon(home: Path) -> AsyncIterator[ServedDaemon]:
    async with running_daemon(home) as daemon:
        service = ControlService(daemon.root, daemon.assembly)
        async with trio.open_nursery() as nursery:
            server = await nursery.start(serve_control, service, "127.0.0.1:0", token_table())
            try:
                yield ServedDaemon(daemon, server)
            finally:
                await server.stop()


async def blocking(fn: Callable[..., T], *args: object) -> T:
    return await trio.to_thread.run_sync(functools.partial(fn, *args))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
