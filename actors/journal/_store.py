"""The synchronous journal store: one writer connection, one reader connection, one file.

Blocking by design (sqlite3 and fsync block): the async `Journal` calls it from worker
threads, never from the trio thread. It may also be used directly by tools and tests.

A batch is one transaction, so it costs one fsync however many records it holds; that is
the whole trick behind group commit. Within a batch every record is its own statement, and
the statement's row count says whether that record changed anything: a fill seen before, a
funding payment seen before, an order update that would resurrect a terminal order or repeat
the stored state exactly, all change nothing.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from ._codec import Encoded, encode
from ._reader import JournalReader
from ._records import JournalRecord
from ._schema import DEFAULT_BUSY_TIMEOUT_MS, JournalSettings, connect, prepare

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class BatchResult:
    changed: tuple[bool, ...]
    """Per record, in order: True if it changed the journal. False for a fill or funding payment
    already journaled (a duplicate), and for an order update refused or identical."""


class JournalStore(JournalReader):
    """Opens (creating and migrating if needed) the journal at `path`.

    Not thread-safe: call writes from one thread at a time and queries from one thread at a
    time; a write and a query may run at once, in different threads (WAL). Raises
    JournalSchemaError for a file this code cannot use; sqlite3.Error for I/O trouble.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        writer = connect(self.path, busy_timeout_ms=busy_timeout_ms, read_only=False)
        try:
            # The writer migrates before the reader opens: the reader never sees a bare file.
            self.settings: JournalSettings = prepare(writer, self.path)
            reader = connect(self.path, busy_timeout_ms=busy_timeout_ms, read_only=True)
        except BaseException:
            writer.close()
            raise
        super().__init__(reader)
        self._writer: sqlite3.Connection | None = writer
        self._view = JournalReader(reader)  # what `read` hands out: it has no write methods

    def write_batch(self, records: Sequence[JournalRecord]) -> BatchResult:
        """Store `records` in one transaction: all of them, durably, or none.

        Raises TypeError/ValueError for a malformed record (before touching the file) and
        sqlite3.Error when the transaction fails (it is rolled back).
        """
        return self.write_encoded([encode(record) for record in records])

    def write_encoded(self, batch: Sequence[Encoded]) -> BatchResult:
        """`write_batch` for records already encoded (the journal encodes on the caller's side)."""
        conn = self._writer
        if conn is None:
            raise sqlite3.ProgrammingError("the journal store is closed")
        # IMMEDIATE takes the write lock up front, so a busy file fails at BEGIN, before work.
        conn.execute("BEGIN IMMEDIATE")
        try:
            execute = conn.execute
            changed = tuple(execute(sql, params).rowcount > 0 for sql, params in batch)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # a failed COMMIT (busy, I/O) may leave it open
                conn.execute("ROLLBACK")
            raise
        return BatchResult(changed)

    def read(self, fn: Callable[[JournalReader], T]) -> T:
        """Run `fn` with a read-only view, in one read transaction (one consistent snapshot)."""
        return self._view.snapshot(fn)

    def close(self) -> None:
        """Close both connections; the writer last, so its final checkpoint syncs fully.
        Idempotent."""
        self._read_conn.close()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
