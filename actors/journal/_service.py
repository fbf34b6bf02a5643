"""The journal as the core actors share it: a handle the journal actor opens and closes.

Why a shared handle and not messages: group commit needs many writers waiting on one commit
at the same time, and an actor handles one message at a time. So the `journal` actor (first
in `core`, rest_for_one) owns the file's lifetime, and positions, risk and gateways, which
start after it and restart when it does, write through the handle it set.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import trio

from actors import Actor

from ._config import JournalConfig
from ._exceptions import JournalClosedError
from ._journal import DEFAULT_JOURNAL_CONFIG, Journal, open_journal
from ._records import JournalRecord


class JournalService:
    def __init__(self, path: Path, config: JournalConfig = DEFAULT_JOURNAL_CONFIG) -> None:
        self.path = path
        self.config = config
        self._journal: Journal | None = None
        self.on_committed: Callable[[JournalRecord], None] | None = None
        """Passed to every journal this service opens (see `Journal.on_committed`)."""

    @property
    def journal(self) -> Journal:
        if self._journal is None:
            raise JournalClosedError(f"the journal at {self.path} is not open")
        return self._journal


class JournalActor(Actor):
    """Holds the journal open for its life; a failing writer crashes it (and core after it)."""

    def __init__(self, service: JournalService) -> None:
        self.service = service

    async def on_start(self) -> None:
        opened = trio.Event()
        self.spawn(self._hold_open, opened)
        await opened.wait()

    async def _hold_open(self, opened: trio.Event) -> None:
        try:
            async with open_journal(self.service.path, self.service.config) as journal:
                journal.on_committed = self.service.on_committed
                self.service._journal = journal
                opened.set()
                await trio.sleep_forever()
        finally:
            self.service._journal = None
