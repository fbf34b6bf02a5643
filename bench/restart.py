"""`restart`: from a crash to the restarted child handling its next message (backoff off).

The crashing handler stamps the crash time just before it raises; the next message is
already waiting in the mailbox (which outlives instances), so the figure is the supervisor's
own cost: notice the exit, decide, make an instance, run on_start, hand over the message.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Final

import trio

from actors import Actor
from supervisor import BACKOFF_OFF, ChildSpec, Intensity, Supervisor, SupervisorSpec

from ._stats import percentile_us

SAMPLES: Final = 3_000
WARMUP: Final = 200


@dataclass(frozen=True, slots=True)
class Crash:
    pass


@dataclass(frozen=True, slots=True)
class Next:
    pass


@dataclass
class Clock:
    crashed_ns: int = 0
    latencies_ns: list[int] = field(default_factory=list)
    handled: trio.Event = field(default_factory=trio.Event)


class Crasher(Actor):
    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    async def on_crash(self, message: Crash) -> None:
        self.clock.crashed_ns = time.perf_counter_ns()
        raise RuntimeError("crash on purpose")

    async def on_next(self, message: Next) -> None:
        self.clock.latencies_ns.append(time.perf_counter_ns() - self.clock.crashed_ns)
        self.clock.handled.set()


async def run_restart() -> dict[str, Any]:
    clock = Clock()
    spec = SupervisorSpec(
        "bench",
        [ChildSpec("crasher", lambda: Crasher(clock))],
        intensity=Intensity(max_restarts=10 * (SAMPLES + WARMUP), max_seconds=3600),
        backoff=BACKOFF_OFF,
    )
    supervisor = Supervisor(spec)
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        ref = supervisor.registry.lookup("crasher")
        for _ in range(SAMPLES + WARMUP):
            clock.handled = trio.Event()
            await ref.tell(Crash())
            await ref.tell(Next())
            await clock.handled.wait()
        supervisor.request_stop()
    latencies = clock.latencies_ns[WARMUP:]
    p50 = percentile_us(latencies, 0.50)
    return {
        "p50_us": p50,
        "p99_us": percentile_us(latencies, 0.99),
        "samples": len(latencies),
        "meets_targets": p50 <= 1000,
    }
