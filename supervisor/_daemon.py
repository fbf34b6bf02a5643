"""The daemon: assemble, run the venues and the tree, stop in order, end safe.

SIGINT/SIGTERM stop it in order: strategies stop (pulling their quotes), feeds, then core
(gateways cancel what is left when `cancel_on_stop`, the journal flushes), then the paper
venues; exit 0. A crash loop that exhausts the root's restart intensity ends in the give-up
hook, which halts trading (persisted: a restarted daemon comes back halted) and cancels every
order on every venue account before the tree stops; exit 3.

The gRPC control server (`control.bind`) starts once the tree is ready and stops, with a short
grace for calls in flight, before the tree is asked to stop, so no control call ever meets a
half-stopped tree. A non-loopback bind without TLS, a taken port or a token the environment
lacks refuses to start with ControlServerError / AuthConfigError.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Final

import trio

from ._assembly import Assembly, assemble, daemon_tree, running_venues
from ._auth import load_tokens
from ._config import DaemonConfig
from ._control import ControlService
from ._events import (
    ChildAbandoned,
    ChildExited,
    ChildRestartScheduled,
    ChildStarted,
    ChildStopped,
    SupervisionEvent,
    SupervisorGaveUp,
)
from ._events_bus import EventBus
from ._exceptions import SupervisorFailedError
from ._grpc import (
    ControlServerError,
    ControlServerHandle,
    check_bind,
    load_server_tls,
    serve_control,
)
from ._home import HomeLock
from ._spec import SupervisorSpec
from ._supervisor import GiveUpHook, Supervisor

logger = logging.getLogger("steward.daemon")

EXIT_OK: Final = 0
EXIT_GAVE_UP: Final = 3
HALT_ASK_S: Final = 2.0
HALT_CANCEL_S: Final = 5.0

Reporter = Callable[[Supervisor, Assembly], Awaitable[None]]
ControlStarter = Callable[..., Awaitable[None]]
"""`serve_control` bound to its service: started with `nursery.start`, gives a handle."""


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


def halt_trading_hook(assembly: Assembly, root: Callable[[], Supervisor],
                      events: EventBus | None = None) -> GiveUpHook:
    """The root's give-up hook: a crash loop ends in a safe state, not in a loop.

    It halts the way an emergency stop does, with the reason recorded: HALTED first (straight
    into the journal if risk is the broken part), strategies stopped, cancel-all on every
    venue account in parallel, on the venues directly (the gateways may be what is crashing).
    """

    async def halt(failure: SupervisorFailedError) -> None:
        reason = f"root supervisor gave up: {failure}"
        logger.critical("halting trading: %s", reason)
        report = await ControlService(root(), assembly, events).emergency_stop(
            reason, flatten=False, who="supervisor"
        )
        logger.critical("halted: %d orders cancelled on %d accounts in %.1f ms",
                        sum(a.orders_cancelled for a in report.accounts), len(report.accounts),
                        report.elapsed_ms)

    return halt


async def run_daemon(
    home: Path,
    config: DaemonConfig | None = None,
    *,
    spec: SupervisorSpec | None = None,
    reporter: Reporter | None = None,
    config_source: Path | str = "config",
) -> int:
    """Run until SIGINT/SIGTERM (exit 0) or until the root gives up (exit 3).

    With a config: its venues and the configured tree; `config_source` (the file) names where
    a ConfigError found at start-up (a credential's variable unset) is. Without one: `spec`
    (or the bare tree), for tests of the supervision layer alone.
    """
    lock = HomeLock(home)
    lock.acquire()
    try:
        if config is None:
            root = Supervisor(spec or daemon_tree(), on_event=log_event,
                              on_give_up=halt_on_give_up)
            return await _serve(root, home, None)
        # Refuse a control plane we cannot serve before anything starts trading.
        tls = load_server_tls(config.control)
        check_bind(config.control.bind, tls=tls is not None)
        tokens = load_tokens(config.control, home)
        assembly = assemble(config, home, source=config_source)
        # WatchEvents: supervision events, control actions, and what the journal commits.
        events = EventBus()
        assembly.journal.on_committed = events.journal_sink
        refused: list[ControlServerError] = []
        async with running_venues(assembly):
            # Built here: strategies need live venues' instruments, known once they are open.
            root = Supervisor(assembly.tree(), on_event=events.supervision_sink(log_event),
                              on_give_up=halt_trading_hook(assembly, lambda: root, events))
            control = partial(serve_control, ControlService(root, assembly, events),
                              config.control.bind,
                              tokens, tls)
            report = None if reporter is None else (lambda: reporter(root, assembly))
            code = await _serve(root, home, report, control, refused, events)
        if refused:  # raised out here, not through the venues' nursery as a group
            raise refused[0]
        return code
    finally:
        lock.release()


async def _serve(
    root: Supervisor, home: Path, report: Callable[[], Awaitable[None]] | None,
    control: ControlStarter | None = None, refused: list[ControlServerError] | None = None,
    events: EventBus | None = None,
) -> int:
    """Run the tree (and the control server) to the end. A control server that cannot start
    stops the tree in order and is appended to `refused`."""
    failures: list[SupervisorFailedError] = []
    servers: list[ControlServerHandle] = []
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        try:
            async with trio.open_nursery() as nursery:

                async def run_root(*, task_status: trio.TaskStatus[None]) -> None:
                    try:
                        await root.run(task_status=task_status)
                    finally:
                        if events is not None:
                            events.close()  # open WatchEvents streams end now
                        nursery.cancel_scope.cancel()  # the signal watcher and view are done

                nursery.start_soon(_stop_on_signals, signals, root, servers, events)
                await nursery.start(run_root)
                if control is not None:
                    try:
                        servers.append(await nursery.start(control))
                    except ControlServerError as exc:
                        logger.critical("control server refused to start: %s", exc)
                        if refused is not None:
                            refused.append(exc)
                        root.request_stop()
                if not refused:
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


async def _stop_on_signals(signals: AsyncIterator[int], root: Supervisor,
                           servers: list[ControlServerHandle],
                           events: EventBus | None = None) -> None:
    # Every signal asks again; the stop is idempotent and each step is bounded.
    async for signum in signals:
        logger.info("%s received: stopping in order", signal.Signals(signum).name)
        if events is not None:
            events.close()  # WatchEvents streams end first: the server stops without waiting
        for server in servers:  # the control plane first: no call meets a stopping tree
            await server.stop()
        root.request_stop()

