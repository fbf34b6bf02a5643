"""Where the journal's blocking SQLite calls run."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import trio

T = TypeVar("T")


async def run_blocking(offload: bool, function: Callable[..., T], *args: object) -> T:
    """Run a blocking call: in a worker thread (the daemon: the trio loop never waits on
    disk), or inline when `offload` is False. Inline is for virtual-time tests only: under
    MockClock with autojump, a worker thread lets the clock race ahead of the write it waits
    for, so virtual timeouts fire on work that took microseconds."""
    if offload:
        return await trio.to_thread.run_sync(function, *args)
    await trio.lowlevel.checkpoint()
    return function(*args)
