"""The last status reply, refreshed in trio and served straight from the server's threads.

Collecting a status asks every actor and venue: serving each GetStatus that way would put a
full round of asks (and a crossing into trio) on every poll, beside trading. A trio task
refreshes the reply every STATUS_REFRESH_S instead; GetStatus answers with it when it is no
older than STATUS_MAX_AGE_S, and collects afresh otherwise. Every change made through the
control plane invalidates it, so a status read after a kill never shows the daemon before it.

The refresh runs only while someone polls (a GetStatus within STATUS_IDLE_AFTER_S): a status
asks every live venue account for its positions, a signed REST call that spends the account's
rate limit, so an unwatched daemon must not make ten of them a second.
"""

from __future__ import annotations

import time
from typing import Final

from protos import control_pb2 as pb

STATUS_REFRESH_S: Final = 0.1
STATUS_MAX_AGE_S: Final = 0.25  # a missed refresh or two still serves; a stalled loop does not
STATUS_IDLE_AFTER_S: Final = 10.0  # no GetStatus for this long: stop refreshing until the next


class StatusCache:
    """Written by one trio task, read by server threads: one tuple assignment per update."""

    def __init__(self) -> None:
        self._latest: tuple[float, pb.Status] | None = None
        self._generation = 0
        self._last_read_s = float("-inf")

    def generation(self) -> int:
        return self._generation

    def store(self, status: pb.Status, generation: int) -> None:
        """Keep `status` unless a change invalidated the cache since it was collected."""
        if generation == self._generation:
            self._latest = (time.monotonic(), status)

    def wanted(self) -> bool:
        """Whether anyone asked for status recently enough to keep refreshing it."""
        return time.monotonic() - self._last_read_s <= STATUS_IDLE_AFTER_S

    def fresh(self) -> pb.Status | None:
        """The cached reply if recent enough, else None (collect afresh). Counts as a read."""
        self._last_read_s = time.monotonic()
        latest = self._latest
        if latest is None or time.monotonic() - latest[0] > STATUS_MAX_AGE_S:
            return None
        return latest[1]

    def invalidate(self) -> None:
        self._generation += 1
        self._latest = None
