"""The journal file: connection settings and the schema, migrated by `PRAGMA user_version`.

Why WAL: in rollback-journal mode a reader and a writer block each other. In WAL mode a commit
appends to the -wal file and readers keep reading the last committed snapshot, so status
queries never wait for a batch of fills, and a batch never waits for a report.

Why `synchronous=FULL`: in WAL mode the default NORMAL syncs only at checkpoints, so a power
cut can lose commits that were already acknowledged. FULL fsyncs the WAL on every commit:
committed means on disk, which is the promise `Journal.record` makes. Group commit
(`_group_commit.py`) is what makes that affordable.

Migrations: `MIGRATIONS[v]` takes the file from version v to v+1, inside one IMMEDIATE
transaction together with the `user_version` bump, so a crash mid-migration leaves the old
version intact and two processes cannot both migrate. Never edit a shipped step: add one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ._exceptions import JournalSchemaError

DEFAULT_BUSY_TIMEOUT_MS: Final = 5_000  # a backup or checkpoint by another process ends sooner
_WAL_SIZE_LIMIT_BYTES: Final = 64 * 1024 * 1024  # after a burst, do not keep a huge -wal file
_SYNCHRONOUS_NAMES: Final = {0: "off", 1: "normal", 2: "full", 3: "extra"}

_V1: Final = (
    """CREATE TABLE orders (
        venue TEXT NOT NULL, account TEXT NOT NULL, client_id TEXT NOT NULL,
        ts_ns INTEGER NOT NULL, strategy TEXT NOT NULL, symbol TEXT NOT NULL,
        side TEXT NOT NULL, order_type TEXT NOT NULL, tif TEXT NOT NULL,
        qty TEXT NOT NULL, price TEXT, reduce_only INTEGER NOT NULL, status TEXT NOT NULL,
        filled_qty TEXT NOT NULL, venue_order_id TEXT NOT NULL, reason TEXT NOT NULL,
        PRIMARY KEY (venue, account, client_id))""",
    "CREATE INDEX orders_by_status ON orders (status, venue, account)",
    """CREATE TABLE fills (
        seq INTEGER PRIMARY KEY,
        venue TEXT NOT NULL, account TEXT NOT NULL, fill_id TEXT NOT NULL,
        client_id TEXT NOT NULL, venue_order_id TEXT NOT NULL, symbol TEXT NOT NULL,
        side TEXT NOT NULL, qty TEXT NOT NULL, price TEXT NOT NULL, fee TEXT NOT NULL,
        fee_asset TEXT NOT NULL, liquidity TEXT NOT NULL, ts_venue_ns INTEGER NOT NULL,
        strategy TEXT NOT NULL,
        UNIQUE (venue, fill_id))""",
    "CREATE INDEX fills_by_account_time ON fills (venue, account, ts_venue_ns)",
    "CREATE INDEX fills_by_time ON fills (ts_venue_ns)",
    """CREATE TABLE funding (
        venue TEXT NOT NULL, account TEXT NOT NULL, symbol TEXT NOT NULL,
        ts_venue_ns INTEGER NOT NULL, amount TEXT NOT NULL, rate TEXT NOT NULL,
        position_qty TEXT NOT NULL, mark_price TEXT NOT NULL,
        PRIMARY KEY (venue, account, symbol, ts_venue_ns))""",
    "CREATE INDEX funding_by_time ON funding (ts_venue_ns)",
    """CREATE TABLE events (
        seq INTEGER PRIMARY KEY, ts_ns INTEGER NOT NULL, kind TEXT NOT NULL,
        source TEXT NOT NULL, detail TEXT NOT NULL)""",
    "CREATE INDEX events_by_time ON events (ts_ns)",
    """CREATE TABLE trading_state (
        seq INTEGER PRIMARY KEY, ts_ns INTEGER NOT NULL, state TEXT NOT NULL,
        reason TEXT NOT NULL, actor TEXT NOT NULL)""",
)

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (_V1,)
SCHEMA_VERSION: Final = len(MIGRATIONS)


@dataclass(frozen=True, slots=True)
class JournalSettings:
    """What the writer connection reports after setup: read back, not what we asked for."""

    journal_mode: str
    synchronous: str
    schema_version: int


@contextmanager
def _file_errors(path: Path) -> Iterator[None]:
    """Tell a file that is not a database (the file's fault) from trouble reaching it."""
    try:
        yield
    except sqlite3.OperationalError:
        raise  # locked, read-only, disk full: not the file's fault
    except sqlite3.DatabaseError as exc:
        raise JournalSchemaError(f"{path} is not an SQLite database: {exc}") from exc


def connect(path: Path, *, busy_timeout_ms: int, read_only: bool) -> sqlite3.Connection:
    """A connection in autocommit mode (we issue BEGIN/COMMIT), usable from any one thread
    at a time: trio's worker threads are not always the same thread."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        with _file_errors(path):
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            conn.execute("PRAGMA synchronous = FULL")  # per connection, and for the last checkpoint
            if read_only:
                conn.execute("PRAGMA query_only = ON")
            else:
                conn.execute(f"PRAGMA journal_size_limit = {_WAL_SIZE_LIMIT_BYTES}")
    except BaseException:
        conn.close()
        raise
    return conn


def prepare(conn: sqlite3.Connection, path: Path) -> JournalSettings:
    """Switch the file to WAL and migrate it to SCHEMA_VERSION. Raises JournalSchemaError for a
    file that is not a database or that newer code has migrated past this version."""
    with _file_errors(path):
        mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        _migrate(conn, path)
    if mode != "wal":
        raise JournalSchemaError(f"{path} refused WAL mode (journal_mode is {mode!r})")
    synchronous = int(conn.execute("PRAGMA synchronous").fetchone()[0])
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    return JournalSettings(mode, _SYNCHRONOUS_NAMES.get(synchronous, str(synchronous)), version)


def _user_version(conn: sqlite3.Connection, path: Path) -> int:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise JournalSchemaError(
            f"{path} has journal schema version {version}; this code knows up to "
            f"{SCHEMA_VERSION}. Upgrade Steward, or use another journal file."
        )
    return version


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    if _user_version(conn, path) == SCHEMA_VERSION:
        return  # the usual case needs no write lock
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Read again under the write lock: another process may have migrated meanwhile.
        for step in range(_user_version(conn, path), SCHEMA_VERSION):
            for statement in MIGRATIONS[step]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {step + 1}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
