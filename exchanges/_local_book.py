"""A local order book rebuilt from a REST snapshot plus a diff-depth stream (venues.md §1.7, §2.5).

Pure state: no I/O and no clock. The feed adapter owns the socket and the REST call; it hands
decoded events and snapshots to a venue syncer (`AsterBookSync`, `BackpackBookSync`) and reads
the book back. Each syncer answers every call with a `SyncResult`, and `RESYNC_NEEDED` is the
adapter's cue to fetch a fresh snapshot.

The venues differ only in how consecutive events must chain, so the buffering, replay and
resync logic lives once here in `_SequencedBookSync`; each venue module supplies three rules:
which buffered events the snapshot already covers, which event may be the first on top of the
snapshot, and how each later event must follow the previous one.
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Iterable
from decimal import Decimal
from typing import Final, Generic, Protocol, TypeVar

from ._models import BookTop

Level = tuple[Decimal, Decimal]
"""(price, quantity); quantity 0 removes the level."""


def levels_finite(levels: Iterable[Level]) -> bool:
    """False if any price or quantity is NaN or infinite, which msgspec accepts as Decimal."""
    return all(price.is_finite() and qty.is_finite() for price, qty in levels)

MAX_BUFFERED_EVENTS: Final = 10_000
"""Events kept while waiting for a snapshot. At Aster's 10 events/s per stream this is over
15 minutes: a snapshot that has not arrived by then is lost, and the buffer would only grow."""


class SyncResult(enum.Enum):
    """What a syncer did with one event or snapshot."""

    APPLIED = "applied"
    """The book changed and is consistent with the venue's."""
    BUFFERED = "buffered"
    """Kept until a snapshot arrives; the book is empty."""
    IGNORED = "ignored"
    """Already covered by the snapshot (its final update id is older); dropped."""
    RESYNC_NEEDED = "resync_needed"
    """The sequence broke, the book crossed or the buffer overflowed. The book is now empty and
    events are buffered again: fetch a new REST snapshot and pass it to `on_snapshot`."""


class LocalBook:
    """Price → quantity per side, with the best price of each side tracked lazily.

    Why dicts and a lazy best: a diff event touches a handful of levels, mostly away from the
    top, and readers mostly ask for the top. A dict makes each update O(1). The best price is
    cached: an insert that beats it replaces it in O(1), and only deleting the best level marks
    it stale, to be recomputed by one O(n) `max`/`min` scan on the next read. `depth(n)` is a
    `heapq` selection, O(levels × log n); it is meant for snapshots of the book, not hot loops.

    A crossed book (best bid >= best ask) cannot be the venue's state: it means an update was
    missed or misapplied. `is_crossed()` reports it; the syncers treat it as a resync, and
    `top()` refuses to quote it.
    """

    __slots__ = ("_ask_stale", "_asks", "_best_ask", "_best_bid", "_bid_stale", "_bids")

    def __init__(self) -> None:
        self._bids: dict[Decimal, Decimal] = {}
        self._asks: dict[Decimal, Decimal] = {}
        self._best_bid: Decimal | None = None
        self._best_ask: Decimal | None = None
        # While stale, the cached best is meaningless and must not be compared against.
        self._bid_stale = False
        self._ask_stale = False

    def clear(self) -> None:
        self._bids.clear()
        self._asks.clear()
        self._best_bid = self._best_ask = None
        self._bid_stale = self._ask_stale = False

    def apply_levels(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """Set each level's absolute quantity; a quantity of 0 deletes the level."""
        for price, qty in bids:
            if qty == 0:
                if self._bids.pop(price, None) is not None and price == self._best_bid:
                    self._bid_stale = True
            else:
                self._bids[price] = qty
                if not self._bid_stale and (self._best_bid is None or price > self._best_bid):
                    self._best_bid = price
        for price, qty in asks:
            if qty == 0:
                if self._asks.pop(price, None) is not None and price == self._best_ask:
                    self._ask_stale = True
            else:
                self._asks[price] = qty
                if not self._ask_stale and (self._best_ask is None or price < self._best_ask):
                    self._best_ask = price

    def best_bid(self) -> Level | None:
        """(price, quantity) of the highest bid, or None if there are no bids."""
        if self._bid_stale:
            self._best_bid = max(self._bids) if self._bids else None
            self._bid_stale = False
        return None if self._best_bid is None else (self._best_bid, self._bids[self._best_bid])

    def best_ask(self) -> Level | None:
        """(price, quantity) of the lowest ask, or None if there are no asks."""
        if self._ask_stale:
            self._best_ask = min(self._asks) if self._asks else None
            self._ask_stale = False
        return None if self._best_ask is None else (self._best_ask, self._asks[self._best_ask])

    def is_crossed(self) -> bool:
        bid, ask = self.best_bid(), self.best_ask()
        return bid is not None and ask is not None and bid[0] >= ask[0]

    def top(self, venue: str, symbol: str, ts_venue_ns: int, ts_local_ns: int) -> BookTop | None:
        """The best bid and ask, or None while a side is empty or the book is crossed."""
        bid, ask = self.best_bid(), self.best_ask()
        if bid is None or ask is None or bid[0] >= ask[0]:
            return None
        return BookTop(venue=venue, symbol=symbol, bid=bid[0], bid_qty=bid[1], ask=ask[0],
                       ask_qty=ask[1], ts_venue_ns=ts_venue_ns, ts_local_ns=ts_local_ns)

    def depth(self, n: int) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        """The best `n` levels of each side: bids high to low, asks low to high."""
        return (tuple(heapq.nlargest(n, self._bids.items())),
                tuple(heapq.nsmallest(n, self._asks.items())))


# ---------------------------------------------------------------------------------------------
# Shared sequencing core for the venue syncers


class _DepthEvent(Protocol):
    @property
    def first_update_id(self) -> int: ...
    @property
    def final_update_id(self) -> int: ...
    @property
    def bids(self) -> tuple[Level, ...]: ...
    @property
    def asks(self) -> tuple[Level, ...]: ...


E = TypeVar("E", bound=_DepthEvent)


class _SequencedBookSync(Generic[E]):
    """Buffer → snapshot → replay → chain, for a venue whose rules the subclass supplies.

    States: *buffering* (no snapshot; `_last_id is None`), *bridging* (snapshot loaded, no event
    applied on top yet; `_bridged` false) and *synced*. Any broken rule clears the book and
    returns to buffering. The event that broke the chain is kept as the first buffered one: it is
    a genuine stream event and may be the one that bridges the next snapshot.
    """

    def __init__(self, *, max_buffered: int = MAX_BUFFERED_EVENTS) -> None:
        if max_buffered < 1:
            raise ValueError(f"max_buffered must be positive, got {max_buffered}")
        self._max_buffered = max_buffered
        self._book = LocalBook()
        self._buffer: list[E] = []
        self._last_id: int | None = None
        """The snapshot's lastUpdateId, then the last applied event's final id."""
        self._bridged = False

    # -- venue rules --------------------------------------------------------------------------

    def _covered_by_snapshot(self, event: E, snapshot_id: int) -> bool:
        raise NotImplementedError

    def _bridges_snapshot(self, event: E, snapshot_id: int) -> bool:
        raise NotImplementedError

    def _follows(self, event: E, previous_final_id: int) -> bool:
        raise NotImplementedError

    # -- public surface -----------------------------------------------------------------------

    @property
    def book(self) -> LocalBook:
        """The live book. Empty while buffering; do not mutate it."""
        return self._book

    @property
    def is_synced(self) -> bool:
        """True once a snapshot is loaded (events may since have been applied on top)."""
        return self._last_id is not None

    @property
    def last_update_id(self) -> int | None:
        """The id the book is current to, or None while buffering."""
        return self._last_id

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def on_update(self, event: E) -> SyncResult:
        if self._last_id is None:
            if len(self._buffer) >= self._max_buffered:
                self._buffer = [event]
                return SyncResult.RESYNC_NEEDED
            self._buffer.append(event)
            return SyncResult.BUFFERED
        return self._apply(event)

    def on_snapshot(self, last_update_id: int, bids: Iterable[Level],
                    asks: Iterable[Level]) -> SyncResult:
        """Load a REST snapshot, then replay the buffered events that it does not cover.

        A snapshot given while synced replaces the book and restarts bridging.
        """
        self._book.clear()
        self._book.apply_levels(bids, asks)
        self._last_id = last_update_id
        self._bridged = False
        if self._book.is_crossed():
            return self._resync([])
        pending = [e for e in self._buffer if not self._covered_by_snapshot(e, last_update_id)]
        self._buffer = []
        for i, event in enumerate(pending):
            if self._apply(event) is SyncResult.RESYNC_NEEDED:
                self._buffer.extend(pending[i + 1:])
                return SyncResult.RESYNC_NEEDED
        return SyncResult.APPLIED

    # -- private ------------------------------------------------------------------------------

    def _apply(self, event: E) -> SyncResult:
        assert self._last_id is not None
        if not self._bridged:
            if self._covered_by_snapshot(event, self._last_id):
                return SyncResult.IGNORED
            if not self._bridges_snapshot(event, self._last_id):
                return self._resync([event])
        elif not self._follows(event, self._last_id):
            return self._resync([event])
        self._book.apply_levels(event.bids, event.asks)
        if self._book.is_crossed():
            return self._resync([event])
        self._last_id = event.final_update_id
        self._bridged = True
        return SyncResult.APPLIED

    def _resync(self, keep: list[E]) -> SyncResult:
        self._book.clear()
        self._last_id = None
        self._bridged = False
        self._buffer = keep
        return SyncResult.RESYNC_NEEDED
