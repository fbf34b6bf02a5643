"""The daemon: the supervision tree of DESIGN §3, signals, and what happens when it gives up.

```
root (one_for_one)
├── core (rest_for_one): journal → positions → risk → gateways
├── feeds (one_for_one): one feed per venue
└── strategies (one_for_one): one actor per configured strategy
```

The trading actors that fill these branches arrive with the trading-core issue; the tree,
its restart policy, signal handling and the give-up path are here so they drop in.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Final

import trio

from ._events import (
    ChildAbandoned,
    ChildExited,
    ChildRestartScheduled,
    ChildStarted,
    ChildStopped,
    SupervisionEvent,
    SupervisorGaveUp,
)
from ._exceptions import SupervisorFailedError
from ._home import HomeLock
from ._spec import Backoff, ChildSpec, Intensity, Strategy, SupervisorSpec
from ._supervisor import Supervisor

logger = logging.getLogger("steward.daemon")

# Branch supervisors absorb a few crashes a minute; the root, which restarts whole branches,
# absorbs fewer. A crash loop beyond that ends in the give-up hook, which halts trading.
BRANCH_INTENSITY: Final = Intensity(max_restarts=5, max_seconds=60)
ROOT_INTENSITY: Final = Intensity(max_restarts=3, max_seconds=300)
ACTOR_BACKOFF: Final = Backoff(initial_s=0.2, max_s=10.0, jitter=0.2, reset_after_s=60.0)

EXIT_OK: Final = 0
EXIT_GAVE_UP: Final = 3


def daemon_tree(
    core: Sequence[ChildSpec | SupervisorSpec] = (),
    feeds: Sequence[ChildSpec | SupervisorSpec] = (),
    strategies: Sequence[ChildSpec | SupervisorSpec] = (),
) -> SupervisorSpec:
    """The daemon's tree with the given children in each branch."""
    return SupervisorSpec(
        "root",
        [
            SupervisorSpec("core", core, strategy=Strategy.REST_FOR_ONE,
                           intensity=BRANCH_INTENSITY, backoff=ACTOR_BACKOFF),
            SupervisorSpec("feeds", feeds, intensity=BRANCH_INTENSITY, backoff=ACTOR_BACKOFF),
            SupervisorSpec("strategies", strategies, intensity=BRANCH_INTENSITY,
                           backoff=ACTOR_BACKOFF),
        ],
        intensity=ROOT_INTENSITY,
        backoff=ACTOR_BACKOFF,
    )


def log_event(event: SupervisionEvent) -> None:
    """The plain log of the tree: one line per supervision event."""
    if isinstance(event, ChildStarted):
        logger.info("started %s (restarts %d)", event.path, event.restart_count)
    elif isinstance(event, ChildExited):
        if event.error is None:
            logger.info("exited %s", event.path)
        else:
            logger.error("crashed %s: %s: %s", event.path, event.error.type, event.error.message)
    elif isinstance(event, ChildRestartScheduled):
        logger.warning("restarting %s in %.3f s", ", ".join(event.group), event.delay_s)
    elif isinstance(event, ChildStopped):
        logger.info("stopped %s (%s)", event.path, event.reason)
    elif isinstance(event, ChildAbandoned):
        logger.error("abandoned %s after %g s", event.path, event.shutdown_s)
    elif isinstance(event, SupervisorGaveUp):
        logger.critical("%s gave up after %d restarts in %g s", event.path, event.restarts,
                        event.window_s)


async def halt_on_give_up(failure: SupervisorFailedError) -> None:
    """The root's give-up hook: a crash loop ends in a safe state.

    Today it records the reason; with the trading core it sets trading HALTED and cancels
    every order before the tree stops.
    """
    logger.critical("trading halted: %s", failure)


async def run_daemon(home: Path, spec: SupervisorSpec | None = None) -> int:
    """Run the tree until SIGINT/SIGTERM (exit 0) or until the root gives up (exit 3)."""
    lock = HomeLock(home)
    lock.acquire()
    try:
        root = Supervisor(spec or daemon_tree(), on_event=log_event, on_give_up=halt_on_give_up)
        return await _serve(root, home)
    finally:
        lock.release()


async def _serve(root: Supervisor, home: Path) -> int:
    failures: list[SupervisorFailedError] = []
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        try:
            async with trio.open_nursery() as nursery:

                async def run_root(*, task_status: trio.TaskStatus[None]) -> None:
                    try:
                        await root.run(task_status=task_status)
                    finally:
                        nursery.cancel_scope.cancel()  # the signal watcher is done too

                nursery.start_soon(_stop_on_signals, signals, root)
                await nursery.start(run_root)
                logger.info("daemon ready: %d actors and supervisors, STEWARD_HOME=%s",
                            len(root.snapshot()), home)
        except* SupervisorFailedError as group:
            failures.extend(e for e in group.exceptions if isinstance(e, SupervisorFailedError))
    if failures:
        logger.critical("daemon stopped: %s", failures[0])
        return EXIT_GAVE_UP
    logger.info("daemon stopped")
    return EXIT_OK


async def _stop_on_signals(signals: AsyncIterator[int], root: Supervisor) -> None:
    # Every signal asks again; the stop is idempotent and each step is bounded.
    async for signum in signals:
        logger.info("%s received: stopping in order", signal.Signals(signum).name)
        root.request_stop()
