"""What status shows of every actor and supervisor: a frozen snapshot, like trio's statistics()."""

from __future__ import annotations

import enum

import msgspec


class ActorState(enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    STOPPED = "stopped"
    FAILED = "failed"


class ErrorInfo(msgspec.Struct, frozen=True, kw_only=True):
    """An error as status shows it: type and one bounded line of message, no traceback."""

    type: str
    message: str


class ActorSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    """`root/core/risk`: the place in the tree; the last part is the registered name."""
    kind: str
    """"actor" or "supervisor"."""
    state: ActorState
    restart_count: int
    last_error: ErrorInfo | None
    mailbox_depth: int
    """Queued messages; 0 for supervisors, which have no mailbox."""
    uptime_s: float
    """Seconds since the current instance became ready; 0 when not running."""
