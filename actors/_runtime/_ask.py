"""Request/reply plumbing: the envelope an ask travels in and its one-shot reply slot.

The envelope is the one live object that crosses a mailbox. It stays inside the runtime: the
actor's handler receives the plain message and returns the reply, so actor code never sees a
callable or a channel, and a later process codec can swap the slot for a correlation id.
"""

from __future__ import annotations

from typing import Any

import outcome
import trio


class Reply:
    """A one-shot slot. The first answer wins; later ones (after a timeout) are dropped."""

    __slots__ = ("_event", "_result")

    def __init__(self) -> None:
        self._event = trio.Event()
        self._result: outcome.Value[Any] | outcome.Error | None = None

    def set(self, value: object) -> None:
        if self._result is None:
            self._result = outcome.Value(value)
            self._event.set()

    def fail(self, error: BaseException) -> None:
        if self._result is None:
            self._result = outcome.Error(error)
            self._event.set()

    async def wait(self) -> Any:
        await self._event.wait()
        assert self._result is not None
        return self._result.unwrap()


class Ask:
    """A message that expects an answer in `reply`."""

    __slots__ = ("message", "reply")

    def __init__(self, message: object, reply: Reply) -> None:
        self.message = message
        self.reply = reply
