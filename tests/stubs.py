"""Messages and actors shared by the runtime and supervision tests.

Message types live at module level, as the runtime requires. Actors take what they record
into and what they wait on through their constructors, via factory closures, so no state is
module-level.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import trio

from actors import Actor, MailboxPolicy, Overflow
from supervisor import BACKOFF_OFF, ChildSpec, Supervisor, SupervisorSpec


@dataclass(frozen=True)
class Note:
    """A value to record."""

    value: int


@dataclass(frozen=True)
class Echo:
    value: int


@dataclass(frozen=True)
class Crash:
    reason: str = "told to crash"


@dataclass(frozen=True)
class Exit:
    """Ask the actor to finish normally."""


@dataclass(frozen=True)
class Hold:
    """Block the handler until the test opens the gate."""


@dataclass(frozen=True)
class Quote:
    symbol: str
    price: int


@dataclass
class Journal:
    """What a test's actors did, in order: ("start"|"stop"|"handle", name, detail)."""

    entries: list[tuple[str, str, object]] = field(default_factory=list)
    gate: trio.Event = field(default_factory=trio.Event)

    def handled(self, name: str) -> list[object]:
        return [d for kind, n, d in self.entries if kind == "handle" and n == name]

    def kinds(self, name: str) -> list[str]:
        return [kind for kind, n, _ in self.entries if n == name]


class Recorder(Actor):
    """Records its lifecycle and every message; can crash, exit, echo and hold on command."""

    def __init__(self, journal: Journal, *, fail_start: bool = False) -> None:
        self.journal = journal
        self.fail_start = fail_start

    async def on_start(self) -> None:
        if self.fail_start:
            raise RuntimeError("cannot start")
        self.journal.entries.append(("start", self.name, None))

    async def on_stop(self) -> None:
        self.journal.entries.append(("stop", self.name, None))

    async def on_note(self, message: Note) -> None:
        self.journal.entries.append(("handle", self.name, message.value))

    async def on_quote(self, message: Quote) -> None:
        self.journal.entries.append(("handle", self.name, (message.symbol, message.price)))

    async def on_echo(self, message: Echo) -> int:
        return message.value

    async def on_crash(self, message: Crash) -> None:
        raise RuntimeError(message.reason)

    async def on_exit(self, message: Exit) -> None:
        self.stop()

    async def on_hold(self, message: Hold) -> None:
        await self.journal.gate.wait()


class SmallRecorder(Recorder):
    mailbox_policy = MailboxPolicy(capacity=2, overflow=Overflow.BLOCK)


class DropNewestRecorder(Recorder):
    mailbox_policy = MailboxPolicy(capacity=2, overflow=Overflow.DROP_NEWEST)


class DropOldestRecorder(Recorder):
    mailbox_policy = MailboxPolicy(capacity=2, overflow=Overflow.DROP_OLDEST)


class FailFastRecorder(Recorder):
    mailbox_policy = MailboxPolicy(capacity=2, overflow=Overflow.FAIL)


class SlowStopper(Recorder):
    """An actor whose cleanup outlasts any reasonable shutdown timeout."""

    async def on_stop(self) -> None:
        self.journal.entries.append(("stopping", self.name, None))
        await trio.sleep(3600)
        self.journal.entries.append(("stop", self.name, None))


@asynccontextmanager
async def open_tree(
    spec: SupervisorSpec, **kwargs: Any
) -> AsyncIterator[Supervisor]:
    """Run `spec` as a root for the body of the `async with`, then stop it in order."""
    supervisor = Supervisor(spec, **kwargs)
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        yield supervisor
        supervisor.request_stop()


def one_actor(name: str, factory: Callable[[], Actor], **kwargs: Any) -> SupervisorSpec:
    """A root with one actor child and no restart backoff."""
    return SupervisorSpec("root", [ChildSpec(name, factory, **kwargs)], backoff=BACKOFF_OFF)
