"""A supervisor's bookkeeping: one slot per child, one run per instance, and name checks."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio

from actors import Actor, ActorRef, MailboxPolicy

from ._snapshot import ActorSnapshot, ActorState, ErrorInfo
from ._spec import ChildSpec, SupervisorSpec

if TYPE_CHECKING:
    from ._supervisor import Supervisor


@dataclass(eq=False)
class Run:
    """One instance of a child, from start to exit. `instance` is made inside the child's
    task, so a factory that raises is a failed start like any other."""

    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    done: trio.Event = field(default_factory=trio.Event)
    instance: Actor | Supervisor | None = None
    ready: bool = False
    stop_requested: bool = False
    killed: bool = False
    error: Exception | None = None


@dataclass(eq=False)
class Slot:
    """A child's place in its supervisor: spec, mailbox ref, counters, current run."""

    spec: ChildSpec | SupervisorSpec
    path: str
    ref: ActorRef | None  # None for supervisors, which have no mailbox
    state: ActorState = ActorState.STARTING
    restart_count: int = 0
    crash_streak: int = 0
    last_error: ErrorInfo | None = None
    ready_at_s: float | None = None
    run: Run | None = None
    zombie: Run | None = None
    """A run that was cancelled but has not unwound yet; the next start waits for it, so
    two instances of one child are never alive at once."""
    restart_token: object | None = None
    """Set while a restart is scheduled; a stop or a newer decision clears it."""
    paused: bool = False
    """Stopped on request: no restart, not even with its siblings, until resumed."""

    @property
    def name(self) -> str:
        return self.spec.name

    def row(self, now_s: float) -> ActorSnapshot:
        uptime_s = 0.0
        if self.state is ActorState.RUNNING and self.ready_at_s is not None:
            uptime_s = now_s - self.ready_at_s
        return ActorSnapshot(
            path=self.path,
            kind="actor" if self.ref is not None else "supervisor",
            state=self.state,
            restart_count=self.restart_count,
            last_error=self.last_error,
            mailbox_depth=0 if self.ref is None else self.ref.statistics().depth,
            uptime_s=uptime_s,
        )


def declared_policy(spec: ChildSpec) -> MailboxPolicy | None:
    """The mailbox policy known before any instance exists: the spec's, else the class's."""
    if spec.mailbox is not None:
        return spec.mailbox
    factory = spec.factory
    while isinstance(factory, functools.partial):
        factory = factory.func
    if isinstance(factory, type) and issubclass(factory, Actor):
        return factory.mailbox_policy
    return None  # a function: adopted from the first instance's class


def actor_names(spec: SupervisorSpec) -> Iterator[str]:
    """Every actor name in a spec's subtree."""
    for child in spec.children:
        if isinstance(child, SupervisorSpec):
            yield from actor_names(child)
        else:
            yield child.name


def duplicate_names(spec: SupervisorSpec) -> list[str]:
    seen: set[str] = set()
    duplicates: list[str] = []
    for name in actor_names(spec):
        if name in seen:
            duplicates.append(name)
        seen.add(name)
    return duplicates
