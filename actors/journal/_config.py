"""How a journal is opened. Frozen and strict, like every Steward config."""

from __future__ import annotations

import msgspec

from ._schema import DEFAULT_BUSY_TIMEOUT_MS


class JournalConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    max_batch_records: int = 10_000
    """Most records one commit takes from the queue. Large enough that the fsync is amortised
    to nothing; small enough that one commit (and a reader's wait for fresh data) stays in
    the tens of milliseconds. A single `record_many` is never split, so it may exceed this."""
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS
    """How long SQLite waits for another connection's lock before the batch fails."""
    offload_to_thread: bool = True
    """SQLite runs in worker threads, off the trio thread. False runs it inline: only for
    tests on trio's MockClock, where a worker thread lets autojump race the clock ahead."""
    close_flush_s: float = 10.0
    """On close, how long queued records may take to commit before they are failed with
    JournalClosedError. A batch already in a worker thread always runs to its end."""

    def __post_init__(self) -> None:
        if self.max_batch_records < 1:
            raise ValueError(f"max_batch_records must be >= 1, got {self.max_batch_records}")
        if self.busy_timeout_ms < 0:
            raise ValueError(f"busy_timeout_ms must be >= 0, got {self.busy_timeout_ms}")
        if self.close_flush_s < 0:
            raise ValueError(f"close_flush_s must be >= 0, got {self.close_flush_s}")
