"""Group commit: many callers, one writer task, one transaction (one fsync) per batch.

Why: with `synchronous=FULL` every commit waits for an fsync, a fraction of a millisecond on
a good disk and far more on a poor one, so one transaction per fill caps the journal at a few
thousand fills per second however fast the CPU. Fills come in bursts (a sweep fills several
orders at once, a reconcile replays hundreds), and every caller that queues while a commit
is in flight rides the next one: the fsync is shared by the batch, so throughput grows with
concurrency while each caller waits about one or two commits. There is no timer: the writer
never waits for a batch to fill, and a lone record commits at once.

Flow: `submit` (given records the caller already encoded) appends a ticket to the queue,
wakes the writer and waits on the ticket. The writer takes every queued ticket (up to
`max_batch_records`), runs the store's write in a worker thread, then sets each ticket's
result, or the batch's error on every ticket of the batch. A failed batch fails only its own
tickets; the writer carries on with the next.

Cancellation: once queued, a record is written even if its caller is cancelled (it may
already be in a commit, and unqueueing it would race the worker thread); the caller just
does not learn the outcome. The writer itself is shielded: only `close` ends it.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import trio

from ._blocking import run_blocking
from ._codec import Encoded
from ._exceptions import JournalClosedError, JournalWriteError
from ._store import BatchResult

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class JournalStatistics:
    records_written: int
    """Records in committed batches, whether or not they changed anything."""
    batches_committed: int
    batches_failed: int
    pending: int
    """Records queued and not yet taken by the writer."""
    in_flight: int
    """Records in the batch being committed right now."""
    last_batch_size: int
    """Records in the last committed batch: a live measure of how much commits are shared."""


class _Ticket:
    """One caller's records and, once the writer is done with them, their outcome."""

    __slots__ = ("cause", "changed", "closed", "done", "encoded", "failed_batch_size")

    def __init__(self, encoded: Sequence[Encoded]) -> None:
        self.encoded = encoded
        self.done = trio.Event()
        self.changed: tuple[bool, ...] = ()
        self.cause: BaseException | None = None
        self.failed_batch_size = 0
        self.closed = False

    def outcome(self) -> tuple[bool, ...]:
        # A fresh exception per waiter: one instance raised in many tasks would collect
        # all their tracebacks.
        if self.closed:
            raise JournalClosedError("the journal closed before this record could be written")
        if self.cause is not None:
            raise JournalWriteError(self.failed_batch_size, self.cause) from self.cause
        return self.changed


class GroupCommitter:
    """The queue and its writer task. `run` must be running for `submit` to complete."""

    def __init__(
        self,
        write: Callable[[Sequence[Encoded]], BatchResult],
        max_batch_records: int,
        *,
        offload: bool = True,
    ) -> None:
        self._write = write
        self._offload = offload
        self._max_batch_records = max_batch_records
        self._queue: deque[_Ticket] = deque()
        self._wake = trio.Event()
        self._accepting = True
        self._scope: trio.CancelScope | None = None
        self._flush_s: float | None = None
        self._pending = 0
        self._in_flight = 0
        self._records_written = 0
        self._batches_committed = 0
        self._batches_failed = 0
        self._last_batch_size = 0

    async def submit(self, encoded: Sequence[Encoded]) -> tuple[bool, ...]:
        """Queue `encoded` as one unit and wait until its batch has committed.

        Returns per record whether it changed anything. Raises JournalWriteError if the batch
        failed, JournalClosedError if the journal is closed or closed before writing it.
        """
        await trio.lowlevel.checkpoint_if_cancelled()  # cancelled before queueing: not written
        if not self._accepting:
            raise JournalClosedError("the journal is closed")
        ticket = _Ticket(encoded)
        self._queue.append(ticket)
        self._pending += len(encoded)
        self._wake.set()
        await ticket.done.wait()  # cancelled here: still written (see the module docstring)
        return ticket.outcome()

    def close(self, flush_s: float) -> None:
        """Refuse new records; the writer commits what is queued within `flush_s`, then ends."""
        self._accepting = False
        self._flush_s = flush_s
        if self._scope is not None:
            self._scope.deadline = min(self._scope.deadline, trio.current_time() + flush_s)
        self._wake.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The writer task. Returns once closed and drained, or when the flush time runs out
        (what is still queued then fails with JournalClosedError)."""
        with trio.CancelScope(shield=True) as self._scope:
            if self._flush_s is not None:
                self._scope.deadline = trio.current_time() + self._flush_s
            task_status.started()
            try:
                await self._loop()
            finally:
                self._fail_queued()

    def statistics(self) -> JournalStatistics:
        return JournalStatistics(
            records_written=self._records_written,
            batches_committed=self._batches_committed,
            batches_failed=self._batches_failed,
            pending=self._pending,
            in_flight=self._in_flight,
            last_batch_size=self._last_batch_size,
        )

    async def _loop(self) -> None:
        while True:
            if not self._queue:
                if not self._accepting:
                    return
                self._wake = trio.Event()
                await self._wake.wait()
                continue
            await self._commit(self._take())

    def _take(self) -> list[_Ticket]:
        batch = [self._queue.popleft()]
        size = len(batch[0].encoded)
        while self._queue and size + len(self._queue[0].encoded) <= self._max_batch_records:
            ticket = self._queue.popleft()
            batch.append(ticket)
            size += len(ticket.encoded)
        return batch

    async def _commit(self, batch: list[_Ticket]) -> None:
        encoded = batch[0].encoded if len(batch) == 1 else [e for t in batch for e in t.encoded]
        size = len(encoded)
        self._pending -= size
        self._in_flight = size
        try:
            # Not abandoned on cancel: the transaction finishes and its outcome is delivered.
            result = await run_blocking(self._offload, self._write, encoded)
        except Exception as exc:
            self._batches_failed += 1
            logger.error(
                "journal batch of %d records failed: %s: %s", size, type(exc).__name__, exc
            )
            for ticket in batch:
                ticket.cause = exc
                ticket.failed_batch_size = size
                ticket.done.set()
            if not isinstance(exc, sqlite3.Error):
                raise  # a bug, not the file: stop the journal loudly
            return
        finally:
            self._in_flight = 0
        self._records_written += size
        self._batches_committed += 1
        self._last_batch_size = size
        offset = 0
        for ticket in batch:
            end = offset + len(ticket.encoded)
            ticket.changed = result.changed[offset:end]
            ticket.done.set()
            offset = end

    def _fail_queued(self) -> None:
        if self._queue:
            logger.warning("journal closed with %d records not written", self._pending)
        while self._queue:
            ticket = self._queue.popleft()
            ticket.closed = True
            ticket.done.set()
        self._pending = 0
