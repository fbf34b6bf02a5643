"""The daemon: assemble, run the paper venues and the tree, stop in order, end safe.

SIGINT/SIGTERM stop it in order: strategies stop (pulling their quotes), feeds, then core
(gateways cancel what is left when `cancel_on_stop`, the journal flushes), then the paper
venues; exit 0. A crash loop that exhausts the root's restart intensity ends in the give-up
hook, which halts trading (persisted: a restarted daemon comes back halted) and cancels every
order on every venue account before the tree stops; exit 3.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Final

import trio

from actors import ActorError
from actors.journal import TradingStateRecorded
from actors.messages import RISK, SetTradingState, TradingState
from exchanges import AccountClient, VenueError

from ._assembly import Assembly, assemble, daemon_tree, running_venues
from ._config import DaemonConfig
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
from ._spec import SupervisorSpec
from ._supervisor import GiveUpHook, Supervisor

logger = logging.getLogger("steward.daemon")

EXIT_OK: Final = 0
EXIT_GAVE_UP: Final = 3
HALT_ASK_S: Final = 2.0
HALT_CANCEL_S: Final = 5.0

Reporter = Callable[[Supervisor, Assembly], Awaitable[None]]


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
    """The give-up hook of a tree with no trading parts: record why."""
    logger.critical("trading halted: %s", failure)


def halt_trading_hook(assembly: Assembly, root: Callable[[], Supervisor]) -> GiveUpHook:
    """The root's give-up hook: a crash loop ends in a safe state, not in a loop.

    Halt first (through risk; straight into the journal if risk is the broken part), then
    cancel every order of every account on the venues directly, in parallel: the gateways
    may be what is crashing.
    """

    async def halt(failure: SupervisorFailedError) -> None:
        reason = f"root supervisor gave up: {failure}"
        logger.critical("halting trading: %s", reason)
        try:
            await root().registry.lookup(RISK).ask(
                SetTradingState(state=TradingState.HALTED, reason=reason, actor="supervisor"),
                timeout_s=HALT_ASK_S,
            )
        except ActorError as exc:
            logger.error("risk could not halt (%s); writing the halt to the journal", exc)
            await _journal_halt(assembly, reason)
        async with trio.open_nursery() as nursery:
            for venue_config in assembly.config.venues:
                venue = assembly.venues[venue_config.name]
                for account in venue_config.accounts:
                    nursery.start_soon(_cancel_everything,
                                       assembly.account_client(venue.name, account))

    return halt


async def _journal_halt(assembly: Assembly, reason: str) -> None:
    try:
        await assembly.journal.journal.record(TradingStateRecorded(
            ts_ns=time.time_ns(), state=TradingState.HALTED.value, reason=reason,
            actor="supervisor",
        ))
    except Exception:
        logger.exception("could not record the halt in the journal")


async def _cancel_everything(client: AccountClient) -> None:
    with trio.move_on_after(HALT_CANCEL_S):
        try:
            cancelled = await client.cancel_all()
            logger.critical("halt: cancelled %d orders on %s/%s", len(cancelled),
                            client.venue, client.account)
        except VenueError as exc:
            logger.critical("halt: cancel-all on %s/%s failed: %s", client.venue,
                            client.account, exc)


async def run_daemon(
    home: Path,
    config: DaemonConfig | None = None,
    *,
    spec: SupervisorSpec | None = None,
    reporter: Reporter | None = None,
) -> int:
    """Run until SIGINT/SIGTERM (exit 0) or until the root gives up (exit 3).

    With a config: the paper venues and the configured tree. Without one: `spec` (or the bare
    tree), for tests of the supervision layer alone.
    """
    lock = HomeLock(home)
    lock.acquire()
    try:
        if config is None:
            root = Supervisor(spec or daemon_tree(), on_event=log_event,
                              on_give_up=halt_on_give_up)
            return await _serve(root, home, None)
        assembly = assemble(config, home)
        root = Supervisor(assembly.tree(), on_event=log_event,
                          on_give_up=halt_trading_hook(assembly, lambda: root))
        async with running_venues(assembly):
            report = None if reporter is None else (lambda: reporter(root, assembly))
            return await _serve(root, home, report)
    finally:
        lock.release()


async def _serve(
    root: Supervisor, home: Path, report: Callable[[], Awaitable[None]] | None
) -> int:
    failures: list[SupervisorFailedError] = []
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        try:
            async with trio.open_nursery() as nursery:

                async def run_root(*, task_status: trio.TaskStatus[None]) -> None:
                    try:
                        await root.run(task_status=task_status)
                    finally:
                        nursery.cancel_scope.cancel()  # the signal watcher and view are done

                nursery.start_soon(_stop_on_signals, signals, root)
                await nursery.start(run_root)
                logger.info("daemon ready: %d actors and supervisors, STEWARD_HOME=%s",
                            len(root.snapshot()), home)
                if report is not None:
                    nursery.start_soon(report)
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

