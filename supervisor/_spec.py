"""What a supervisor is told: child specs, restart strategies, intensity and backoff.

The vocabulary is OTP's, because its semantics are well understood and well tested:

- restart `PERMANENT`: always restarted; `TRANSIENT`: restarted only after a crash;
  `TEMPORARY`: never restarted, removed when it exits.
- strategy `ONE_FOR_ONE`: only the failed child restarts; `ONE_FOR_ALL`: all children stop
  (reverse order) and start again (in order); `REST_FOR_ONE`: the failed child and the children
  after it do (for chains like journal → positions → risk → gateways).
- intensity: more than `max_restarts` restarts within `max_seconds` and the supervisor gives
  up: it stops its children and fails, and its own parent decides.
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from actors import MailboxPolicy

if TYPE_CHECKING:
    from actors import Actor

DEFAULT_SHUTDOWN_S: Final = 5.0  # time to pull quotes and flush; longer only by choice
DEFAULT_START_TIMEOUT_S: Final = 30.0  # a start that hangs (venue down) must not wedge the tree
SUPERVISOR_SHUTDOWN_S: Final = math.inf  # as in OTP: its children each have their own bound


class Restart(enum.Enum):
    PERMANENT = "permanent"
    TRANSIENT = "transient"
    TEMPORARY = "temporary"


class Strategy(enum.Enum):
    ONE_FOR_ONE = "one_for_one"
    ONE_FOR_ALL = "one_for_all"
    REST_FOR_ONE = "rest_for_one"


@dataclass(frozen=True, slots=True)
class Intensity:
    """At most `max_restarts` restarts within any `max_seconds` window."""

    max_restarts: int = 3
    max_seconds: float = 5.0

    def __post_init__(self) -> None:
        if self.max_restarts < 0 or self.max_seconds <= 0:
            raise ValueError(f"intensity needs max_restarts >= 0 and max_seconds > 0: {self}")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before a restart: exponential in consecutive crashes, jittered, reset when stable.

    The n-th consecutive restart of a child waits `initial_s * multiplier**(n-1)`, capped at
    `max_s`, times a uniform factor in [1 - jitter, 1 + jitter] (jitter spreads the reconnects
    of many children after a shared outage). A child that ran `reset_after_s` before crashing
    starts the sequence again. `Backoff.OFF` restarts at once.
    """

    initial_s: float = 0.1
    max_s: float = 10.0
    multiplier: float = 2.0
    jitter: float = 0.2
    reset_after_s: float = 30.0

    def __post_init__(self) -> None:
        if self.initial_s < 0 or self.max_s < self.initial_s or self.multiplier < 1:
            raise ValueError(f"backoff needs 0 <= initial_s <= max_s and multiplier >= 1: {self}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"backoff jitter must be in [0, 1): {self.jitter}")

    def delay_s(self, attempt: int, rng: random.Random) -> float:
        """Delay before restart number `attempt` (1-based) of a crash sequence."""
        if self.initial_s == 0:
            return 0.0
        exponent = min(attempt - 1, 64)  # beyond this the cap has long applied
        base = min(self.max_s, self.initial_s * self.multiplier**exponent)
        if self.jitter:
            base *= 1 + rng.uniform(-self.jitter, self.jitter)
        return max(0.0, base)


BACKOFF_OFF: Final = Backoff(initial_s=0.0, max_s=0.0, jitter=0.0)


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """An actor child. `factory` makes a fresh instance for every start."""

    name: str
    factory: Callable[[], Actor]
    restart: Restart = Restart.PERMANENT
    shutdown_s: float = DEFAULT_SHUTDOWN_S
    start_timeout_s: float = DEFAULT_START_TIMEOUT_S
    """on_start longer than this counts as a crash (the supervisor waits for starts)."""
    mailbox: MailboxPolicy | None = None
    """None: the actor class's own `mailbox_policy`."""

    def __post_init__(self) -> None:
        _check_child(self.name, self.shutdown_s, self.start_timeout_s, allow_infinite=False)


@dataclass(frozen=True, slots=True)
class SupervisorSpec:
    """A supervisor, as the root of a tree or as the child of another supervisor."""

    name: str
    children: Sequence[ChildSpec | SupervisorSpec] = ()
    strategy: Strategy = Strategy.ONE_FOR_ONE
    intensity: Intensity = field(default_factory=Intensity)
    backoff: Backoff = field(default_factory=Backoff)
    restart: Restart = Restart.PERMANENT
    shutdown_s: float = SUPERVISOR_SHUTDOWN_S
    start_timeout_s: float = SUPERVISOR_SHUTDOWN_S

    def __post_init__(self) -> None:
        _check_child(self.name, self.shutdown_s, self.start_timeout_s, allow_infinite=True)
        names = [child.name for child in self.children]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"supervisor {self.name!r} has duplicate children: {duplicates}")


def _check_child(
    name: str, shutdown_s: float, start_timeout_s: float, *, allow_infinite: bool
) -> None:
    if not name or "/" in name:
        raise ValueError(f"child name must be non-empty and contain no '/': {name!r}")
    for key, value in (("shutdown_s", shutdown_s), ("start_timeout_s", start_timeout_s)):
        if not value > 0 or math.isnan(value) or (math.isinf(value) and not allow_infinite):
            raise ValueError(f"{name}: {key} must be > 0 and finite for actors, got {value}")
