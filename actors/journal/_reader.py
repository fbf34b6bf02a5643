"""Queries over the journal, on a connection of their own.

The reader never shares the writer's connection: under WAL a separate connection reads the
last committed snapshot without waiting for the writer's open transaction, and it can only
ever see committed (durable) rows. It is opened with `query_only`, so no code path that holds
a `JournalReader` can write, not even by mistake from inside `Journal.query`.

Time windows are half-open, `since_ns <= ts < until_ns`, so consecutive windows neither
overlap nor leave gaps. Results come oldest first.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ._codec import (
    EVENT_COLUMNS,
    FILL_COLUMNS,
    FUNDING_COLUMNS,
    ORDER_COLUMNS,
    TERMINAL_STATUSES_SQL,
    TRADING_STATE_COLUMNS,
    SqlValue,
    decode_event,
    decode_fill,
    decode_funding,
    decode_order,
    decode_trading_state,
)
from ._records import (
    EventRecorded,
    FillRecorded,
    FundingRecorded,
    OrderRecorded,
    TradingStateRecorded,
)

T = TypeVar("T")

_FILLS = f"SELECT {', '.join(FILL_COLUMNS)} FROM fills"
_ORDERS = f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders"
_FUNDING = f"SELECT {', '.join(FUNDING_COLUMNS)} FROM funding"
_EVENTS = f"SELECT seq, {', '.join(EVENT_COLUMNS)} FROM events"
_TRADING_STATE = f"SELECT {', '.join(TRADING_STATE_COLUMNS)} FROM trading_state"


def _where(conditions: Sequence[tuple[str, SqlValue]]) -> tuple[str, list[SqlValue]]:
    """AND together the conditions whose value is given (None means "any")."""
    used = [(clause, value) for clause, value in conditions if value is not None]
    if not used:
        return "", []
    return " WHERE " + " AND ".join(clause for clause, _ in used), [v for _, v in used]


class JournalReader:
    """Read-only queries returning record structs. One thread at a time (see `Journal.query`)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._read_conn = conn

    def _rows(self, sql: str, params: Sequence[SqlValue] = ()) -> list[tuple[Any, ...]]:
        return self._read_conn.execute(sql, params).fetchall()  # fetchall ends the read txn

    def fills(
        self,
        since_ns: int | None = None,
        until_ns: int | None = None,
        venue: str | None = None,
        account: str | None = None,
        strategy: str | None = None,
    ) -> list[FillRecorded]:
        """Fills with `since_ns <= ts_venue_ns < until_ns`, oldest first (ties: journal order)."""
        where, params = _where([
            ("venue = ?", venue), ("account = ?", account), ("strategy = ?", strategy),
            ("ts_venue_ns >= ?", since_ns), ("ts_venue_ns < ?", until_ns),
        ])
        rows = self._rows(f"{_FILLS}{where} ORDER BY ts_venue_ns, seq", params)
        return [decode_fill(row) for row in rows]

    def last_fill_ts_ns(self, venue: str, account: str) -> int | None:
        """The venue timestamp of the newest fill journaled for the account: where a gateway
        starts asking the venue for fills it may have missed."""
        rows = self._rows(
            "SELECT MAX(ts_venue_ns) FROM fills WHERE venue = ? AND account = ?", (venue, account)
        )
        value = rows[0][0]
        return None if value is None else int(value)

    def open_orders(
        self, venue: str | None = None, account: str | None = None
    ) -> list[OrderRecorded]:
        """Orders whose latest journaled status is not terminal, oldest first."""
        where, params = _where([("venue = ?", venue), ("account = ?", account)])
        open_clause = f"status NOT IN ({TERMINAL_STATUSES_SQL})"
        where = f"{where} AND {open_clause}" if where else f" WHERE {open_clause}"
        rows = self._rows(f"{_ORDERS}{where} ORDER BY ts_ns, rowid", params)
        return [decode_order(row) for row in rows]

    def order(self, venue: str, account: str, client_id: str) -> OrderRecorded | None:
        rows = self._rows(
            f"{_ORDERS} WHERE venue = ? AND account = ? AND client_id = ?",
            (venue, account, client_id),
        )
        return decode_order(rows[0]) if rows else None

    def funding(
        self, since_ns: int | None = None, venue: str | None = None, account: str | None = None
    ) -> list[FundingRecorded]:
        """Funding payments with `ts_venue_ns >= since_ns`, oldest first."""
        where, params = _where(
            [("venue = ?", venue), ("account = ?", account), ("ts_venue_ns >= ?", since_ns)]
        )
        rows = self._rows(f"{_FUNDING}{where} ORDER BY ts_venue_ns, rowid", params)
        return [decode_funding(row) for row in rows]

    def events(
        self,
        since_ns: int | None = None,
        kinds: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[EventRecorded]:
        """Events with `ts_ns >= since_ns` of the given kinds, in the order they were journaled.

        With `limit`, the newest `limit` of them (still oldest first), like `tail -n`.
        """
        if kinds is not None and not kinds:
            return []
        where, params = _where([("ts_ns >= ?", since_ns)])
        if kinds is not None:
            kind_clause = f"kind IN ({', '.join('?' * len(kinds))})"
            where = f"{where} AND {kind_clause}" if where else f" WHERE {kind_clause}"
            params.extend(kinds)
        sql = f"{_EVENTS}{where} ORDER BY seq DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        rows = self._rows(sql, params)
        return [decode_event(row[1:]) for row in reversed(rows)]

    def trading_state(self) -> TradingStateRecorded | None:
        """The most recently journaled trading state (journal order, not ts_ns), if any."""
        rows = self._rows(f"{_TRADING_STATE} ORDER BY seq DESC LIMIT 1")
        return decode_trading_state(rows[0]) if rows else None

    def snapshot(self, fn: Callable[[JournalReader], T]) -> T:
        """Run `fn` inside one read transaction, so all its queries see the same commit."""
        conn = self._read_conn
        conn.execute("BEGIN")
        try:
            return fn(self)
        finally:
            if conn.in_transaction:  # nothing to commit on a read-only connection: just end it
                conn.execute("COMMIT")
