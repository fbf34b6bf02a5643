"""Errors the journal raises to callers.

```
JournalError
├── JournalClosedError    the journal is closed (or closing): nothing was written for you
├── JournalWriteError     the batch holding your record did not commit; record it again
└── JournalSchemaError    the file is a journal from newer code, or not a journal at all
```

A record that is malformed (wrong type, a NaN price, detail that is not JSON) is refused with
TypeError or ValueError before it is queued, so it can never fail a batch shared with others.
Messages name record types and fields, never values: records hold order details.
"""

from __future__ import annotations


class JournalError(Exception):
    """Base of every journal error."""


class JournalClosedError(JournalError):
    """The journal no longer accepts work: `open_journal` has exited or is exiting."""


class JournalWriteError(JournalError):
    """The transaction holding the record failed and was rolled back; `__cause__` says why.

    Every record of the failed batch gets this error; other batches are unaffected and the
    journal keeps accepting writes, because most causes pass (the file locked by another
    process past the busy timeout, a full disk). Which records failed is exact, whether they
    are absent is not quite: if the final fsync itself failed, the frames may still be found
    by WAL recovery at the next open. So treat the outcome as unknown and record again:
    fills, funding and orders are idempotent; events and trading states may then appear twice.
    """

    def __init__(self, batch_size: int, cause: BaseException) -> None:
        super().__init__(
            f"journal batch of {batch_size} records failed to commit: "
            f"{type(cause).__name__}: {cause}"
        )
        self.batch_size = batch_size


class JournalSchemaError(JournalError):
    """The file cannot be used by this code: a newer schema version, or not SQLite."""
