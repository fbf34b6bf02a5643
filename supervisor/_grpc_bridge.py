"""Calling trio from the gRPC server's threads, in a nursery the app owns.

`trio.from_thread.run` would run the work in trio's *system* nursery, cancelled only when
`trio.run` ends, so one slow call could hold shutdown (shared/grpc-trio.md). Here a thread only
*starts* a task (`from_thread.run_sync`, which returns at once) in the owner's nursery and waits
on a future; the owner cancels that nursery when the server has stopped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from concurrent import futures
from typing import Final, TypeVar

import trio

BRIDGE_MAX_WAIT_S: Final = 30.0  # a call without a deadline still ends

T = TypeVar("T")


class BridgeClosedError(Exception):
    """The trio side is gone or stopping: the call is answered UNAVAILABLE."""


class TrioBridge:
    """Runs async functions in trio from the server's threads, in a nursery the app owns."""

    def __init__(self, token: trio.lowlevel.TrioToken) -> None:
        self._token = token
        self._nursery: trio.Nursery | None = None

    def attach(self, nursery: trio.Nursery) -> None:
        """Calls run in `nursery` from now on; before this they are refused."""
        self._nursery = nursery

    def run(self, afn: Callable[..., Awaitable[T]], *args: object,
            timeout_s: float | None = None) -> T:
        """Call from a non-trio thread: the result of `afn(*args)`, its exception, or
        BridgeClosedError; TimeoutError past `timeout_s` (the trio task goes on)."""
        future: futures.Future[T] = futures.Future()
        try:
            trio.from_thread.run_sync(self._spawn, afn, args, future, trio_token=self._token)
        except (trio.RunFinishedError, trio.Cancelled):
            raise BridgeClosedError("the daemon is stopping") from None
        return future.result(timeout=BRIDGE_MAX_WAIT_S if timeout_s is None else timeout_s)

    def _spawn(self, afn: Callable[..., Awaitable[T]], args: tuple[object, ...],
               future: futures.Future[T]) -> None:
        try:
            if self._nursery is None:
                raise RuntimeError("not attached")
            self._nursery.start_soon(self._call, afn, args, future)
        except RuntimeError:  # not attached yet, or the nursery is closed
            future.set_exception(BridgeClosedError("the daemon is stopping"))

    async def _call(self, afn: Callable[..., Awaitable[T]], args: tuple[object, ...],
                    future: futures.Future[T]) -> None:
        try:
            value = await afn(*args)
        except trio.Cancelled:
            future.set_exception(BridgeClosedError("the daemon is stopping"))
            raise
        except Exception as exc:
            future.set_exception(exc)
            return
        future.set_result(value)
