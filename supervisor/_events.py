"""Supervision events: what happened to which child, for logs, the journal and WatchEvents.

Past tense, plain data. A supervisor hands each one to an `EventSink`, a plain callable that
must not block (append to a buffer, `send_nowait` on a channel): supervision never waits for
an observer.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from ._snapshot import ErrorInfo


class ChildStarted(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    path: str
    ts_s: float
    """trio clock seconds, as every timestamp of the supervision layer."""
    restart_count: int


class ChildExited(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """A child ended by itself: normally (error is None) or by crashing."""

    path: str
    ts_s: float
    error: ErrorInfo | None


class ChildRestartScheduled(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """One restart decision (it counts once toward intensity, however many children it moves)."""

    supervisor: str
    path: str
    """The child whose exit caused the restart."""
    ts_s: float
    delay_s: float
    group: tuple[str, ...]
    """Every child restarted by this decision, in start order (the strategy decides)."""


class ChildStopped(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """The supervisor stopped a child (shutdown, a sibling's restart, or a command)."""

    path: str
    ts_s: float
    reason: str


class ChildAbandoned(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """A child did not stop within its shutdown timeout and was cancelled."""

    path: str
    ts_s: float
    shutdown_s: float


class SupervisorGaveUp(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Restart intensity exhausted: the supervisor stops its children and fails."""

    path: str
    ts_s: float
    restarts: int
    """Restarts the window would have needed, including the refused one."""
    window_s: float
    last_error: ErrorInfo | None


SupervisionEvent = (
    ChildStarted | ChildExited | ChildRestartScheduled | ChildStopped | ChildAbandoned
    | SupervisorGaveUp
)
EventSink = Callable[[SupervisionEvent], None]


def ignore_events(event: SupervisionEvent) -> None:
    """The sink used when nobody listens."""
