"""A bounded memory of recently seen ids, for at-most-once handling of repeated messages.

An actor that rebuilds from the journal on restart then handles messages queued for its dead
predecessor (its mailbox outlives instances), some of them already in the journal. Fill ids
seen during the rebuild go in here, so the queued copies are recognised and skipped. Queued
copies are recent by nature, so a bounded memory suffices.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Final

DEFAULT_CAPACITY: Final = 50_000


class RecentIds:
    __slots__ = ("_capacity", "_order", "_seen")

    def __init__(self, ids: Iterable[str] = (), capacity: int = DEFAULT_CAPACITY) -> None:
        self._capacity = capacity
        self._order: deque[str] = deque()
        self._seen: set[str] = set()
        for item in ids:
            self.add(item)

    def add(self, item: str) -> bool:
        """Remember `item`; False if it was already remembered (a repeat)."""
        if item in self._seen:
            return False
        self._seen.add(item)
        self._order.append(item)
        if len(self._order) > self._capacity:
            self._seen.discard(self._order.popleft())
        return True

    def __contains__(self, item: object) -> bool:
        return item in self._seen

    def __len__(self) -> int:
        return len(self._seen)
