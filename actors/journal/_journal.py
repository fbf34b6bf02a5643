"""The async journal: what the journal actor (and nothing else) holds.

`open_journal` opens the store in a worker thread, runs the group-commit writer in a nursery
and, on exit, commits whatever is queued, then closes. All SQLite work happens in worker
threads: the trio thread only encodes records (cheap, and it lets a malformed record fail at
its caller instead of in a batch shared with others) and wakes tasks.

Reads run in a worker thread too, on the store's read connection, one at a time under a
`trio.Lock` (one connection, one user). Under WAL they read the last commit and never wait
for the writer, so a status query stays fast during a burst of fills.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final, TypeVar

import trio

from ._blocking import run_blocking
from ._codec import encode
from ._config import JournalConfig
from ._exceptions import JournalClosedError
from ._group_commit import GroupCommitter, JournalStatistics
from ._reader import JournalReader
from ._records import (
    EventRecorded,
    FillRecorded,
    FundingRecorded,
    JournalRecord,
    OrderRecorded,
    TradingStateRecorded,
)
from ._schema import JournalSettings
from ._store import JournalStore

T = TypeVar("T")

DEFAULT_JOURNAL_CONFIG: Final = JournalConfig()


class Journal:
    """Durable records with group commit, and queries. Made by `open_journal`.

    Guarantees: `record` returns only after the transaction holding the record has committed
    with `synchronous=FULL`, so a fill it has acknowledged survives a crash or a power cut;
    publish a fill to strategies only after that. Records from one task commit in the order
    that task recorded them; records queued together commit in one transaction.
    """

    def __init__(self, store: JournalStore, config: JournalConfig) -> None:
        self._store = store
        self._offload = config.offload_to_thread
        self._committer = GroupCommitter(
            store.write_encoded, config.max_batch_records, offload=config.offload_to_thread
        )
        self._read_lock = trio.Lock()
        self._readable = True
        self.on_committed: Callable[[JournalRecord], None] | None = None
        """Told of each record once committed, if it changed the journal (WatchEvents).
        Must not block; it is called on the trio thread and its errors are swallowed."""

    @property
    def path(self) -> Path:
        return self._store.path

    @property
    def settings(self) -> JournalSettings:
        """journal_mode, synchronous and schema version as SQLite reported them at open."""
        return self._store.settings

    # ---- writes ------------------------------------------------------------------------------

    async def record(self, record: JournalRecord) -> bool:
        """Journal `record` durably; True if it changed the journal (False: a duplicate fill or
        funding payment, or an order update that was refused or changed nothing).

        Raises TypeError/ValueError for a malformed record (nothing is queued),
        JournalWriteError if its batch failed to commit, JournalClosedError once closed.
        If the caller is cancelled after the record was queued, it is still written.
        """
        (changed,) = await self._committer.submit((encode(record),))
        if changed:
            self._committed((record,))
        return changed

    async def record_many(self, records: Iterable[JournalRecord]) -> list[bool]:
        """Journal several records in one transaction (never split, even past the batch cap):
        all commit or none do. If any record is malformed, none is queued."""
        records = list(records)
        encoded = [encode(record) for record in records]
        if not encoded:
            await trio.lowlevel.checkpoint()
            return []
        changed = list(await self._committer.submit(encoded))
        self._committed(r for r, new in zip(records, changed, strict=True) if new)
        return changed

    def _committed(self, records: Iterable[JournalRecord]) -> None:
        observer = self.on_committed
        if observer is None:
            return
        for record in records:
            try:
                observer(record)
            except Exception:  # an observer never fails a write
                logging.getLogger("steward.journal").exception("journal observer failed")

    def statistics(self) -> JournalStatistics:
        return self._committer.statistics()

    # ---- reads -------------------------------------------------------------------------------

    async def query(self, fn: Callable[[JournalReader], T]) -> T:
        """Run `fn(reader)` in a worker thread, in one read transaction: every query inside
        sees the same commit. `fn` blocks its thread, so keep it to queries and arithmetic.
        Raises JournalClosedError once closed."""
        async with self._read_lock:
            if not self._readable:
                raise JournalClosedError("the journal is closed")
            return await run_blocking(self._offload, self._store.read, fn)

    async def fills(
        self,
        since_ns: int | None = None,
        until_ns: int | None = None,
        venue: str | None = None,
        account: str | None = None,
        strategy: str | None = None,
    ) -> list[FillRecorded]:
        """See `JournalReader.fills`."""
        return await self.query(lambda r: r.fills(since_ns, until_ns, venue, account, strategy))

    async def last_fill_ts_ns(self, venue: str, account: str) -> int | None:
        return await self.query(lambda r: r.last_fill_ts_ns(venue, account))

    async def open_orders(
        self, venue: str | None = None, account: str | None = None
    ) -> list[OrderRecorded]:
        return await self.query(lambda r: r.open_orders(venue, account))

    async def order(self, venue: str, account: str, client_id: str) -> OrderRecorded | None:
        return await self.query(lambda r: r.order(venue, account, client_id))

    async def funding(
        self, since_ns: int | None = None, venue: str | None = None, account: str | None = None
    ) -> list[FundingRecorded]:
        return await self.query(lambda r: r.funding(since_ns, venue, account))

    async def events(
        self,
        since_ns: int | None = None,
        kinds: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[EventRecorded]:
        """See `JournalReader.events`: with `limit`, the newest ones, oldest first."""
        return await self.query(lambda r: r.events(since_ns, kinds, limit))

    async def trading_state(self) -> TradingStateRecorded | None:
        return await self.query(lambda r: r.trading_state())

    # ---- closing -----------------------------------------------------------------------------

    async def _close_store(self) -> None:
        with trio.CancelScope(shield=True):  # never leave a connection open in a thread
            async with self._read_lock:  # wait for a query in flight
                self._readable = False
                await run_blocking(self._offload, self._store.close)


@asynccontextmanager
async def open_journal(
    path: str | os.PathLike[str], config: JournalConfig = DEFAULT_JOURNAL_CONFIG
) -> AsyncIterator[Journal]:
    """Open (create, migrate) the journal at `path` for the duration of the block.

    On exit, even by error or cancellation, records already queued are committed (for up to
    `config.close_flush_s`) and their callers answered; then both connections close. Raises
    JournalSchemaError for a file this code cannot use, sqlite3.Error if it cannot be opened,
    and whatever the writer task raised should it fail for a reason other than SQLite.
    """
    open_store = functools.partial(JournalStore, path, busy_timeout_ms=config.busy_timeout_ms)
    store = await run_blocking(config.offload_to_thread, open_store)
    journal = Journal(store, config)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(journal._committer.run)
            try:
                yield journal
            finally:
                journal._committer.close(config.close_flush_s)
    finally:
        await journal._close_store()
