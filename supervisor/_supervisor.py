"""The supervisor: starts children in order, restarts them by strategy, stops them in reverse.

One task, the supervisor's loop, makes every decision: child exits, restart timers and
commands (add, remove, restart a child) arrive as events on one channel and are handled one
at a time, so no two decisions interleave. Children run in the supervisor's nursery, each in
its own cancel scope; each instance is made inside its own task, so a factory that raises is
a failed start, not a supervisor crash.

Error handling: an exception escaping a child is that child's crash; the supervisor restarts
it (and siblings, by strategy) after a backoff. A failed start is a crash too. Beyond the
restart intensity the supervisor gives up: it runs the `on_give_up` hook while the children
still run (the daemon halts trading there and needs its gateways alive), stops every child,
and raises SupervisorFailedError, which its parent handles as a crash of this child. A
requested restart (`restart_child`) is not a crash and does not count toward intensity.

Resource handling: stopping a child asks first (STOP on the system lane, or a nested
supervisor's stop), waits its `shutdown_s`, then cancels it and reports ChildAbandoned. An
instance that ignores even cancellation holds up its own restart (never two instances at
once) and, as trio's nurseries guarantee, the tree's exit; it cannot hold up its siblings'
stops. A supervisor child waits for its own children by default (shutdown_s = inf, as in OTP):
each of them is bounded.

Commands must not be issued by a child from its own on_start: the loop is waiting for that
start, so the command waits until the start times out.

Logging: decisions are reported as events (see _events.py) and logged only at DEBUG; the event
sink (the daemon's log, later the journal and WatchEvents) owns the record.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, cast

import trio

from actors import Actor, ActorContext, Registry
from actors.lowlevel import STOP, describe_error, run_actor

from ._events import (
    ChildAbandoned,
    ChildExited,
    ChildRestartScheduled,
    ChildStarted,
    ChildStopped,
    EventSink,
    SupervisorGaveUp,
    ignore_events,
)
from ._exceptions import (
    ChildNotFoundError,
    DuplicateChildError,
    SupervisionError,
    SupervisorFailedError,
)
from ._slots import Run, Slot, actor_names, declared_policy, duplicate_names
from ._snapshot import ActorSnapshot, ActorState, ErrorInfo
from ._spec import ChildSpec, Restart, Strategy, SupervisorSpec

logger = logging.getLogger(__name__)

GIVE_UP_HOOK_S: Final = 10.0  # the give-up hook halts trading; it gets this long, shielded
CANCEL_GRACE_S: Final = 1.0  # after cancelling a child, how long to wait before moving on

GiveUpHook = Callable[[SupervisorFailedError], Awaitable[None]]


class StartTimeoutError(SupervisionError):
    """A child's on_start did not finish within its start_timeout_s."""


class ChildKilledError(SupervisionError):
    """The child was killed on request (chaos tests, an operator): a crash like any other."""


@dataclass(frozen=True, eq=False)
class _Exited:
    slot: Slot
    run: Run


@dataclass(frozen=True, eq=False)
class _RestartDue:
    slots: tuple[Slot, ...]
    token: object


@dataclass(eq=False)
class _Command:
    action: Callable[[], Awaitable[object]]
    done: trio.Event = field(default_factory=trio.Event)
    result: object = None
    error: Exception | None = None


class _StopLoop:
    pass


_SupervisorEvent = _Exited | _RestartDue | _Command | _StopLoop


class Supervisor:
    """Runs a SupervisorSpec, once. As a root: `await nursery.start(supervisor.run)`."""

    def __init__(
        self,
        spec: SupervisorSpec,
        *,
        registry: Registry | None = None,
        on_event: EventSink = ignore_events,
        on_give_up: GiveUpHook | None = None,
        rng: random.Random | None = None,
        path: str | None = None,
    ) -> None:
        duplicates = duplicate_names(spec)
        if duplicates:
            raise DuplicateChildError(spec.name, duplicates[0])
        self.spec = spec
        self.path = spec.name if path is None else path
        self.registry = Registry() if registry is None else registry
        self._on_event = on_event
        self._on_give_up = on_give_up
        self._rng = random.Random() if rng is None else rng
        self._slots: list[Slot] = []
        self._restart_times_s: list[float] = []
        self._state = ActorState.STARTING
        self._ready_at_s: float | None = None
        self._stop_requested = False
        self._starting: Run | None = None
        self._nursery: trio.Nursery | None = None
        self._events_send, self._events_receive = trio.open_memory_channel[_SupervisorEvent](
            math.inf
        )

    # ---- public API ----------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start the children in order, supervise them until stopped, stop them in reverse.

        Reports ready (task_status.started) once the first start pass is done. Returns after
        `request_stop()`; raises SupervisorFailedError when restart intensity is exhausted,
        and DuplicateChildError (before starting anything) when a name is taken.
        """
        for spec in self.spec.children:
            try:
                self._add_slot(spec)
            except DuplicateChildError:
                self._release_all(forget=False)
                raise
        failure: SupervisorFailedError | None = None
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                await self._start_in_order(self._slots)
                self._state = ActorState.RUNNING
                self._ready_at_s = trio.current_time()
                task_status.started()
                await self._loop()
            except SupervisorFailedError as exc:
                failure = exc
                self._state = ActorState.FAILED
                self._close_commands()  # a command from the hook must fail, not wait forever
                await self._run_give_up_hook(exc)
            finally:
                self._close_commands()
                with trio.CancelScope(shield=True):
                    await self._stop_all("supervisor stopping")
                self._release_all(forget=False)
                nursery.cancel_scope.cancel()  # pending restart timers
        if failure is not None:
            raise failure
        self._state = ActorState.STOPPED

    def request_stop(self) -> None:
        """Ask the supervisor to stop its children and return from run(). Never waits.

        Honoured between starts too: a stop during the start pass does not wait for the rest.
        """
        self._stop_requested = True
        if self._starting is not None:
            # A start in progress would hold the stop up to its start timeout: cut it short.
            self._starting.stop_requested = True
            self._starting.scope.cancel()
        try:
            self._events_send.send_nowait(_StopLoop())
        except trio.ClosedResourceError:
            pass

    async def start_child(self, spec: ChildSpec | SupervisorSpec) -> None:
        """Add a child after the others and start it (strategies come and go at run time).

        Returns once it is ready or its start failed (then it restarts like any crash).
        Raises DuplicateChildError, changing nothing, when a name in it is taken.
        """
        await self._command(lambda: self._do_start_child(spec))

    async def terminate_child(self, name: str) -> None:
        """Stop a child and remove it for good; its names are free again afterwards."""
        await self._command(lambda: self._do_terminate_child(name))

    async def kill_child(self, name: str) -> None:
        """Cancel a child's instance at once, without asking: the closest a task gets to
        SIGKILL. It counts as a crash (restart, intensity, backoff). Its on_stop is skipped."""
        await self._command(lambda: self._do_kill_child(name))

    async def pause_child(self, name: str) -> None:
        """Stop a child and keep it down (no restart, not even with its siblings) until
        `resume_child`. Messages to it fail fast meanwhile."""
        await self._command(lambda: self._do_pause_child(name))

    async def resume_child(self, name: str) -> None:
        """Start a paused child again. A child that is not paused is left as it is."""
        await self._command(lambda: self._do_resume_child(name))

    async def restart_child(self, name: str) -> None:
        """Stop a child and start a fresh instance (not a crash: no intensity, no backoff)."""
        await self._command(lambda: self._do_restart_child(name))

    def child_names(self) -> list[str]:
        return [slot.name for slot in self._slots]

    def find_supervisor(self, name: str) -> Supervisor:
        """This supervisor or a running nested one, by name."""
        if self.spec.name == name:
            return self
        for slot in self._slots:
            instance = None if slot.run is None else slot.run.instance
            if isinstance(instance, Supervisor):
                try:
                    return instance.find_supervisor(name)
                except ChildNotFoundError:
                    continue
        raise ChildNotFoundError(self.path, name)

    def snapshot(self) -> list[ActorSnapshot]:
        """This supervisor and everything under it, depth first in start order."""
        now = trio.current_time()
        running = self._state is ActorState.RUNNING and self._ready_at_s is not None
        own = ActorSnapshot(
            path=self.path, kind="supervisor", state=self._state, restart_count=0,
            last_error=None, mailbox_depth=0,
            uptime_s=now - self._ready_at_s if running and self._ready_at_s is not None else 0.0,
        )
        return [own, *self._children_snapshot(now)]

    def _children_snapshot(self, now: float) -> list[ActorSnapshot]:
        rows: list[ActorSnapshot] = []
        for slot in self._slots:
            rows.append(slot.row(now))
            instance = None if slot.run is None else slot.run.instance
            if isinstance(instance, Supervisor):
                rows.extend(instance._children_snapshot(now))
        return rows

    # ---- the loop ------------------------------------------------------------------------

    async def _loop(self) -> None:
        async for event in self._events_receive:
            if isinstance(event, _Exited):
                await self._on_child_exit(event.slot, event.run)
            elif isinstance(event, _RestartDue):
                await self._on_restart_due(event)
            elif isinstance(event, _Command):
                try:
                    event.result = await event.action()
                except SupervisorFailedError:
                    raise
                except Exception as exc:
                    event.error = exc
                finally:
                    event.done.set()
            else:
                return

    async def _command(self, action: Callable[[], Awaitable[object]]) -> object:
        command = _Command(action)
        try:
            self._events_send.send_nowait(command)
        except trio.ClosedResourceError:
            raise SupervisionError(f"supervisor {self.path!r} is not running") from None
        await command.done.wait()
        if command.error is not None:
            raise command.error
        return command.result

    def _close_commands(self) -> None:
        """No decisions after the loop: refuse new commands and fail the queued ones."""
        self._events_send.close()
        while True:
            try:
                event = self._events_receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                return
            if isinstance(event, _Command):
                event.error = SupervisionError(f"supervisor {self.path!r} is stopping")
                event.done.set()

    # ---- exits and restarts --------------------------------------------------------------

    async def _on_child_exit(self, slot: Slot, run: Run) -> None:
        if run is not slot.run or run.stop_requested:
            return  # we stopped it ourselves, or it belongs to an older instance
        slot.run = None
        now = trio.current_time()
        error = None if run.error is None else _error_info(run.error)
        if error is not None:
            slot.last_error = error
        logger.debug("%s exited: %s", slot.path, error or "normally")
        self._on_event(ChildExited(path=slot.path, ts_s=now, error=error))

        restart = slot.spec.restart
        if restart is Restart.TEMPORARY or (restart is Restart.TRANSIENT and error is None):
            slot.state = ActorState.STOPPED if error is None else ActorState.FAILED
            if restart is Restart.TEMPORARY:
                self._remove_slot(slot)
            elif slot.ref is not None:
                slot.ref._mailbox.close()
            await self._start_skipped()  # a start pass may have stopped at this child
            return

        if not self._allow_restart(now):
            slot.state = ActorState.FAILED
            self._give_up(now, error or slot.last_error)
        if slot.ready_at_s is not None and now - slot.ready_at_s >= self.spec.backoff.reset_after_s:
            slot.crash_streak = 0
        slot.crash_streak += 1
        delay_s = self.spec.backoff.delay_s(slot.crash_streak, self._rng)

        group = self._restart_group(slot)
        for sibling in reversed(group):
            if sibling is not slot and sibling.run is not None:
                await self._stop_child(sibling, f"restarting with {slot.name}")
        for sibling in [s for s in group if s.spec.restart is Restart.TEMPORARY]:
            self._remove_slot(sibling)
        group = [s for s in group if s.spec.restart is not Restart.TEMPORARY]
        self._on_event(ChildRestartScheduled(
            supervisor=self.path, path=slot.path, ts_s=now, delay_s=delay_s,
            group=tuple(s.path for s in group),
        ))
        await self._schedule_start(group, delay_s)

    def _restart_group(self, slot: Slot) -> list[Slot]:
        strategy = self.spec.strategy
        if strategy is Strategy.ONE_FOR_ONE:
            return [slot]
        if strategy is Strategy.ONE_FOR_ALL:
            group = list(self._slots)
        else:
            group = self._slots[self._slots.index(slot) :]
        return [s for s in group if not s.paused]  # a paused sibling stays down

    def _allow_restart(self, now: float) -> bool:
        window_start = now - self.spec.intensity.max_seconds
        self._restart_times_s = [t for t in self._restart_times_s if t > window_start]
        self._restart_times_s.append(now)
        return len(self._restart_times_s) <= self.spec.intensity.max_restarts

    def _give_up(self, now: float, last_error: ErrorInfo | None) -> None:
        restarts = len(self._restart_times_s)
        window_s = self.spec.intensity.max_seconds
        max_restarts = self.spec.intensity.max_restarts
        self._on_event(SupervisorGaveUp(
            path=self.path, ts_s=now, restarts=restarts, window_s=window_s,
            last_error=last_error,
        ))
        raise SupervisorFailedError(self.path, restarts, max_restarts, window_s, last_error)

    async def _run_give_up_hook(self, failure: SupervisorFailedError) -> None:
        if self._on_give_up is None:
            return
        with trio.move_on_after(GIVE_UP_HOOK_S, shield=True) as scope:
            try:
                await self._on_give_up(failure)
            except Exception:
                logger.exception("%s: give-up hook failed", self.path)
        if scope.cancelled_caught:
            logger.error("%s: give-up hook did not finish within %g s", self.path, GIVE_UP_HOOK_S)

    async def _schedule_start(self, slots: list[Slot], delay_s: float) -> None:
        token = object()
        for slot in slots:
            slot.state = ActorState.RESTARTING
            slot.restart_token = token
        if delay_s <= 0:
            await self._on_restart_due(_RestartDue(tuple(slots), token))
            return
        assert self._nursery is not None
        self._nursery.start_soon(self._restart_timer, tuple(slots), token, delay_s)

    async def _restart_timer(self, slots: tuple[Slot, ...], token: object, delay_s: float) -> None:
        await trio.sleep(delay_s)
        try:
            self._events_send.send_nowait(_RestartDue(slots, token))
        except trio.ClosedResourceError:
            pass

    async def _on_restart_due(self, due: _RestartDue) -> None:
        ready = [s for s in due.slots if s.restart_token is due.token and s in self._slots]
        for slot in ready:
            slot.restart_token = None
            slot.restart_count += 1
        await self._start_in_order(ready)

    # ---- starting and stopping one child --------------------------------------------------

    async def _start_in_order(self, slots: Iterable[Slot]) -> None:
        """Start each slot in turn. Under one_for_all and rest_for_one a failed start ends
        the pass (later children depend on it); its exit decides what happens to the rest."""
        for slot in slots:
            if self._stop_requested:
                return
            if slot.run is not None or slot not in self._slots or slot.paused:
                continue
            started = await self._start_child(slot)
            if not started and self.spec.strategy is not Strategy.ONE_FOR_ONE:
                return

    async def _start_skipped(self) -> None:
        """Start the children a stopped start pass left waiting, if nothing else will."""
        skipped = [
            s for s in self._slots
            if s.run is None and s.restart_token is None
            and s.state in (ActorState.STARTING, ActorState.RESTARTING)
        ]
        await self._start_in_order(skipped)

    async def _start_child(self, slot: Slot) -> bool:
        assert self._nursery is not None
        if slot.zombie is not None:
            await slot.zombie.done.wait()  # never two instances of one child at once
            slot.zombie = None
        slot.state = ActorState.STARTING
        slot.ready_at_s = None  # set again when this instance is ready; a failed start never is
        if slot.ref is not None:
            slot.ref._mailbox.reopen()
            slot.ref._mailbox.clear_system()  # a STOP meant for a dead instance
        run = Run()
        slot.run = run
        self._starting = run
        try:
            await self._nursery.start(self._run_child, slot, run)
        finally:
            self._starting = None
        if run.ready:
            now = trio.current_time()
            slot.ready_at_s = now
            self._on_event(ChildStarted(path=slot.path, ts_s=now,
                                        restart_count=slot.restart_count))
        if not run.ready or run.done.is_set():
            return False
        slot.state = ActorState.RUNNING
        return True

    def _make_instance(self, slot: Slot) -> Actor | Supervisor:
        spec = slot.spec
        if isinstance(spec, SupervisorSpec):
            return Supervisor(
                spec, registry=self.registry, on_event=self._on_event, rng=self._rng,
                path=slot.path,
            )
        instance = spec.factory()
        assert slot.ref is not None
        # The policy is the spec's or the actor class's; queued messages keep their place.
        slot.ref._mailbox.set_policy(spec.mailbox or type(instance).mailbox_policy)
        return instance

    async def _run_child(self, slot: Slot, run: Run, *, task_status: trio.TaskStatus[None]) -> None:
        """The child's task. Every way out ends in one _Exited event for the loop."""
        spec = slot.spec

        def started(value: None = None) -> None:
            run.ready = True
            run.scope.deadline = math.inf
            task_status.started()

        readiness = cast(trio.TaskStatus[None], _Readiness(started))
        run.scope.deadline = trio.current_time() + spec.start_timeout_s
        try:
            with run.scope:
                run.instance = instance = self._make_instance(slot)
                if isinstance(instance, Supervisor):
                    await instance.run(task_status=readiness)
                else:
                    assert slot.ref is not None
                    context = ActorContext(
                        name=spec.name, path=slot.path, ref=slot.ref, registry=self.registry,
                        shutdown_s=spec.shutdown_s,
                    )
                    await run_actor(instance, context, slot.ref._mailbox, task_status=readiness)
            if run.scope.cancelled_caught and run.killed:
                run.error = ChildKilledError(f"{slot.path} was killed on request")
            elif run.scope.cancelled_caught and not run.ready and not run.stop_requested:
                run.error = StartTimeoutError(
                    f"{slot.path} did not start within {spec.start_timeout_s:g} s"
                )
        except Exception as exc:
            run.error = exc
        finally:
            run.done.set()
            if not run.ready:
                task_status.started()  # unblock the starter; the exit event says what happened
            try:
                self._events_send.send_nowait(_Exited(slot, run))
            except trio.ClosedResourceError:
                pass

    async def _stop_child(self, slot: Slot, reason: str) -> None:
        """Ask, wait shutdown_s, then cancel. Leaves the slot without a run."""
        run = slot.run
        slot.restart_token = None
        if run is None:
            if slot.state in (ActorState.RESTARTING, ActorState.STARTING):
                slot.state = ActorState.STOPPED
            return
        run.stop_requested = True
        if isinstance(run.instance, Supervisor):
            run.instance.request_stop()
        elif slot.ref is not None:
            slot.ref._mailbox.put_system(STOP)
        with trio.move_on_after(slot.spec.shutdown_s):
            await run.done.wait()
        abandoned = not run.done.is_set()
        if abandoned:
            run.scope.cancel()
            self._on_event(ChildAbandoned(
                path=slot.path, ts_s=trio.current_time(), shutdown_s=slot.spec.shutdown_s
            ))
            slot.last_error = ErrorInfo(
                type="ShutdownTimeout",
                message=f"did not stop within {slot.spec.shutdown_s:g} s; cancelled",
            )
            with trio.move_on_after(CANCEL_GRACE_S):
                await run.done.wait()
            if not run.done.is_set():
                slot.zombie = run  # still unwinding: its next start waits for it
        elif run.error is not None:
            slot.last_error = _error_info(run.error)
        slot.run = None
        slot.state = ActorState.FAILED if abandoned else ActorState.STOPPED
        self._on_event(ChildStopped(path=slot.path, ts_s=trio.current_time(), reason=reason))

    async def _stop_all(self, reason: str) -> None:
        for slot in reversed(self._slots):
            await self._stop_child(slot, reason)

    # ---- slots ---------------------------------------------------------------------------

    def _add_slot(self, spec: ChildSpec | SupervisorSpec) -> Slot:
        if any(slot.name == spec.name for slot in self._slots):
            raise DuplicateChildError(self.path, spec.name)
        ref = None
        if isinstance(spec, ChildSpec):
            try:
                ref = self.registry.claim(spec.name, declared_policy(spec))
            except ValueError:
                raise DuplicateChildError(self.path, spec.name) from None
        else:
            taken = [name for name in actor_names(spec) if self.registry.is_claimed(name)]
            if taken:
                raise DuplicateChildError(self.path, taken[0])
        slot = Slot(spec=spec, path=f"{self.path}/{spec.name}", ref=ref)
        self._slots.append(slot)
        return slot

    def _remove_slot(self, slot: Slot) -> None:
        """Remove for good: names are forgotten, so topics forget the mailboxes too."""
        if slot in self._slots:
            self._slots.remove(slot)
        names = [slot.ref.name] if slot.ref is not None else []
        if isinstance(slot.spec, SupervisorSpec):
            names = list(actor_names(slot.spec))
        for name in names:
            self.registry.release(name, forget=True)

    def _release_all(self, *, forget: bool) -> None:
        for slot in self._slots:
            if slot.ref is not None:
                self.registry.release(slot.ref.name, forget=forget)

    def _find_slot(self, name: str) -> Slot:
        for slot in self._slots:
            if slot.name == name:
                return slot
        raise ChildNotFoundError(self.path, name)

    async def _do_start_child(self, spec: ChildSpec | SupervisorSpec) -> None:
        slot = self._add_slot(spec)
        await self._start_in_order([slot])

    async def _do_terminate_child(self, name: str) -> None:
        slot = self._find_slot(name)
        await self._stop_child(slot, "terminated by request")
        self._remove_slot(slot)

    async def _do_pause_child(self, name: str) -> None:
        slot = self._find_slot(name)
        slot.paused = True
        await self._stop_child(slot, "paused by request")
        if slot.ref is not None:
            slot.ref._mailbox.close()

    async def _do_resume_child(self, name: str) -> None:
        slot = self._find_slot(name)
        if not slot.paused:
            return
        slot.paused = False
        await self._start_in_order([slot])

    async def _do_kill_child(self, name: str) -> None:
        slot = self._find_slot(name)
        if slot.run is not None:
            slot.run.killed = True
            slot.run.scope.cancel()

    async def _do_restart_child(self, name: str) -> None:
        slot = self._find_slot(name)
        await self._stop_child(slot, "restart requested")
        slot.restart_count += 1
        await self._start_in_order([slot])


class _Readiness:
    """A task_status stand-in: lets the runner note readiness before passing it on."""

    __slots__ = ("started",)

    def __init__(self, started: Callable[[None], None]) -> None:
        self.started = started


def _error_info(error: BaseException) -> ErrorInfo:
    error_type, message = describe_error(error).split(": ", 1)
    return ErrorInfo(type=error_type, message=message)
