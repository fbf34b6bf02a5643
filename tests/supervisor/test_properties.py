"""Property test of the supervision tree: random trees, random crash schedules.

Hypothesis builds a tree of supervisors (at most three levels, one to three children each, random
strategy, restart type, intensity and backoff) over probe actors. Every actor gets a schedule of
messages (crash, normal exit, block for a while, ping) and start faults (its n-th start raises, or
hangs past its start timeout). The tree runs on trio's MockClock until the schedules are spent and
is then asked to stop. Invariants:

1. One instance at a time. An actor instance is live from entering on_start until its task has
   ended (not until on_stop: a forced cancellation skips on_stop). No instance starts while
   another of its child is live; when a supervisor reports ChildStarted exactly one instance is
   live and ready, when it reports ChildExited/ChildStopped none is. In the event log no child
   (actor or supervisor) starts twice without exiting in between, or exits before its children.
2. Intensity. No supervisor instance schedules more than max_restarts restarts within any
   max_seconds window; it gives up exactly when one more would exceed that, never restarts
   afterwards, and its failure reaches its parent (or the root's caller). Every crash it must act
   on is followed at once by a restart decision or by giving up, and nothing else is restarted.
3. Clean stop. Once the root's run is over, every actor instance's task has ended, every child is
   closed in the event log, no mailbox accepts messages and no task of the tree is left.
"""

from __future__ import annotations

import enum
import functools
import inspect
import itertools
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import hypothesis.strategies as st
import trio
import trio.testing
from hypothesis import HealthCheck, event, example, given, settings

from actors import Actor, ActorNotFoundError, ActorNotRunningError, MailboxFullError, Registry
from supervisor import (
    BACKOFF_OFF,
    Backoff,
    ChildExited,
    ChildRestartScheduled,
    ChildSpec,
    ChildStarted,
    ChildStopped,
    Intensity,
    Restart,
    Strategy,
    SupervisionEvent,
    Supervisor,
    SupervisorFailedError,
    SupervisorGaveUp,
    SupervisorSpec,
)

START_TIMEOUT_S = 1.0
# on_stop may outlast a child's shutdown_s and the supervisor's cancel grace: run_actor runs
# on_stop shielded after a crash, so an instance can outlive the supervisor's wait, and the
# next instance must still wait for it (never two alive at once).
ON_STOP_S = (0.0, 0.25, 0.5, 0.75, 1.5, 2.5)
SETTLE_S = 5.0  # after the last scheduled message, before the stop request
DEADLINE_S = 1_000.0  # virtual; a tree that does not stop by then fails the example
ROOT = "root"


# ---- messages the schedule sends (module level and immutable, as the runtime requires) -------


class Command(enum.Enum):
    CRASH = "crash"
    EXIT = "exit"  # self.stop(): a normal exit
    PING = "ping"  # carry on


@dataclass(frozen=True)
class Block:
    """Busy in a handler (a stop waits, or gives up and cancels), then maybe crash."""

    seconds: float
    crash: bool


Step = Command | Block
Fault = Literal["raise", "hang"]


# ---- plans: what hypothesis generates ------------------------------------------------------


@dataclass(frozen=True)
class ActorPlan:
    restart: Restart
    shutdown_s: float
    stop_s: float  # how long on_stop takes
    start_faults: Mapping[int, Fault]  # 1-based start number of this child -> what on_start does
    steps: tuple[tuple[float, Step], ...]  # (delay after the previous step, message)


@dataclass(frozen=True)
class SupervisorPlan:
    strategy: Strategy
    restart: Restart
    intensity: Intensity
    backoff: Backoff
    children: tuple[ActorPlan | SupervisorPlan, ...]


quarters = st.integers(0, 12).map(lambda k: k / 4)  # coarse, so events often coincide
messages = st.one_of(
    st.sampled_from([Command.CRASH, Command.CRASH, Command.EXIT, Command.PING]),
    st.builds(Block, st.integers(1, 12).map(lambda k: k / 4), st.booleans()),
)
actor_plans = st.builds(
    ActorPlan,
    restart=st.sampled_from(Restart),
    shutdown_s=st.sampled_from([0.25, 0.5, 1.0]),
    stop_s=st.sampled_from(ON_STOP_S),
    start_faults=st.dictionaries(st.integers(1, 4), st.sampled_from(["raise", "hang"]), max_size=2),
    steps=st.lists(st.tuples(quarters, messages), max_size=6).map(tuple),
)
backoffs = st.one_of(
    st.just(BACKOFF_OFF),
    st.builds(
        Backoff, initial_s=st.floats(0.01, 0.5), max_s=st.just(2.0), jitter=st.floats(0.0, 0.5),
        reset_after_s=st.floats(0.5, 10.0),
    ),
)
intensities = st.builds(Intensity, max_restarts=st.integers(0, 4), max_seconds=st.floats(1, 20))


def supervisor_plans(levels: int) -> st.SearchStrategy[SupervisorPlan]:
    child = actor_plans if levels == 1 else st.one_of(actor_plans, supervisor_plans(levels - 1))
    return st.builds(
        SupervisorPlan, strategy=st.sampled_from(Strategy), restart=st.sampled_from(Restart),
        intensity=intensities, backoff=backoffs,
        children=st.lists(child, min_size=1, max_size=3).map(tuple),
    )


# ---- instrumentation -----------------------------------------------------------------------


@dataclass(eq=False)
class Instance:
    child: str
    number: int
    task: trio.lowlevel.Task
    ready: bool = False

    @property
    def live(self) -> bool:
        """Until the task that runs it has ended, however it ended (on_stop may be skipped)."""
        return inspect.getcoroutinestate(self.task.coro) != inspect.CORO_CLOSED


@dataclass
class Tracker:
    """Per example. Records violations instead of raising inside actors or event sinks."""

    instances: dict[str, list[Instance]] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    def live(self, child: str) -> list[Instance]:
        return [i for i in self.instances.get(child, []) if i.live]

    def begin(self, child: str) -> Instance:
        history = self.instances.setdefault(child, [])
        if others := self.live(child):
            self.violations.append(f"{child}#{len(history) + 1} started while "
                                   f"#{[i.number for i in others]} live")
        instance = Instance(child, len(history) + 1, trio.lowlevel.current_task())
        history.append(instance)
        return instance

    def observe(self, event: SupervisionEvent) -> None:
        """The event sink: what a supervisor reports about an actor must match the instances."""
        child = event.path.rsplit("/", 1)[-1]
        if child not in self.instances:
            return  # a supervisor, or an actor that never got as far as on_start
        live = self.live(child)
        if isinstance(event, ChildStarted) and not (len(live) == 1 and live[0].ready):
            self.violations.append(f"ChildStarted {event.path}: live {[i.number for i in live]}")
        if isinstance(event, ChildExited | ChildStopped) and live:
            self.violations.append(f"{type(event).__name__} {event.path} at {event.ts_s}: "
                                   f"#{[i.number for i in live]} still live")


class Probe(Actor):
    """Follows its plan: start faults by start number, and whatever the schedule sends."""

    def __init__(self, tracker: Tracker, child: str, plan: ActorPlan) -> None:
        self._tracker, self._child, self._plan = tracker, child, plan

    async def on_start(self) -> None:
        instance = self._tracker.begin(self._child)
        fault = self._plan.start_faults.get(instance.number)
        if fault == "raise":
            raise RuntimeError(f"start {instance.number} fails")
        if fault == "hang":
            await trio.sleep_forever()  # cut off by start_timeout_s
        instance.ready = True

    async def on_stop(self) -> None:
        await trio.sleep(self._plan.stop_s)

    async def on_command(self, message: Command) -> None:
        if message is Command.CRASH:
            raise RuntimeError("scheduled crash")
        if message is Command.EXIT:
            self.stop()

    async def on_block(self, message: Block) -> None:
        await trio.sleep(message.seconds)  # a stop meanwhile waits, or abandons and cancels
        if message.crash:
            raise RuntimeError("crashed after blocking")


@dataclass
class Tree:
    spec: SupervisorSpec
    supervisors: dict[str, SupervisorPlan] = field(default_factory=dict)  # by path
    actors: dict[str, ActorPlan] = field(default_factory=dict)  # by registered name
    restart: dict[str, Restart] = field(default_factory=dict)  # every non-root path


def build_tree(plan: SupervisorPlan, tracker: Tracker) -> Tree:
    """Specs with unique names: actors a0, a1, ..., supervisors s0, s1, ... under `root`."""
    numbers = itertools.count()
    tree = Tree(SupervisorSpec(ROOT))

    def build(plan: SupervisorPlan, name: str, path: str) -> SupervisorSpec:
        tree.supervisors[path] = plan
        children: list[ChildSpec | SupervisorSpec] = []
        for child in plan.children:
            if isinstance(child, SupervisorPlan):
                child_name = f"s{next(numbers)}"
                children.append(build(child, child_name, f"{path}/{child_name}"))
            else:
                child_name = f"a{next(numbers)}"
                tree.actors[child_name] = child
                children.append(ChildSpec(
                    child_name, functools.partial(Probe, tracker, child_name, child),
                    restart=child.restart, shutdown_s=child.shutdown_s,
                    start_timeout_s=START_TIMEOUT_S,
                ))
            tree.restart[f"{path}/{child_name}"] = child.restart
        return SupervisorSpec(name, children, strategy=plan.strategy, intensity=plan.intensity,
                              backoff=plan.backoff, restart=plan.restart)

    tree.spec = build(plan, ROOT, ROOT)
    return tree


# ---- one run -------------------------------------------------------------------------------


@dataclass
class Outcome:
    events: list[SupervisionEvent]
    failure: SupervisorFailedError | None
    leftover_tasks: list[str]
    open_mailboxes: list[str]


def all_tasks() -> set[trio.lowlevel.Task]:
    tasks: set[trio.lowlevel.Task] = set()
    pending = [trio.lowlevel.current_root_task()]
    while pending:
        task = pending.pop()
        if task is not None:
            tasks.add(task)
            pending.extend(t for n in task.child_nurseries for t in n.child_tasks)
    return tasks


async def drive(registry: Registry, name: str, steps: tuple[tuple[float, Step], ...]) -> None:
    for delay_s, message in steps:
        await trio.sleep(delay_s)
        try:
            registry.lookup(name).tell_nowait(message)
        except (ActorNotFoundError, ActorNotRunningError, MailboxFullError, trio.WouldBlock):
            pass  # the child is gone (for now); the schedule goes on


async def run_tree(tree: Tree, tracker: Tracker, seed: int) -> Outcome:
    registry = Registry()
    events: list[SupervisionEvent] = []

    def sink(event: SupervisionEvent) -> None:
        events.append(event)
        tracker.observe(event)

    root = Supervisor(tree.spec, registry=registry, on_event=sink, rng=random.Random(seed))
    failure: SupervisorFailedError | None = None

    async def run_root(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        nonlocal failure
        try:
            await root.run(task_status=task_status)
        except SupervisorFailedError as exc:
            failure = exc

    before = all_tasks()
    with trio.fail_after(DEADLINE_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(run_root)
            async with trio.open_nursery() as drivers:
                for name, plan in tree.actors.items():
                    drivers.start_soon(drive, registry, name, plan.steps)
            await trio.sleep(SETTLE_S)
            root.request_stop()
    leftover = [repr(task) for task in all_tasks() - before]
    still_open = [n for n in registry.names() if registry.lookup(n).statistics().accepting]
    return Outcome(events, failure, leftover, still_open)


# ---- checks on the event log ----------------------------------------------------------------


def lifecycle_violations(events: list[SupervisionEvent]) -> list[str]:
    """One instance per path at a time, children closed before their parent, all closed."""
    found: list[str] = []
    open_paths: set[str] = set()
    for e in events:
        if isinstance(e, ChildStarted):
            if e.path in open_paths:
                found.append(f"{e.path} started again at {e.ts_s} while running")
            open_paths.add(e.path)
        elif isinstance(e, ChildExited | ChildStopped):
            open_paths.discard(e.path)
            if inside := sorted(p for p in open_paths if p.startswith(e.path + "/")):
                found.append(f"{e.path} ended at {e.ts_s} while {inside} still ran")
    return found + [f"{p} still running after the tree stopped" for p in sorted(open_paths)]


def must_restart(restart: Restart, exit: ChildExited) -> bool:
    """Permanent children always come back; transient ones only after a crash."""
    return restart is Restart.PERMANENT or (restart is Restart.TRANSIENT and exit.error is not None)


def decision_violations(tree: Tree, events: list[SupervisionEvent]) -> list[str]:
    """Each exit that needs a restart gets one decision at once (restart or give up), and each
    restart has such a cause and a group that fits the strategy."""
    found: list[str] = []
    for i, e in enumerate(events):
        if isinstance(e, ChildExited) and must_restart(tree.restart[e.path], e):
            parent = e.path.rsplit("/", 1)[0]
            decision = next((d for d in events[i + 1:] if (
                isinstance(d, ChildRestartScheduled) and d.supervisor == parent) or (
                isinstance(d, SupervisorGaveUp) and d.path == parent)), None)
            if decision is None or decision.ts_s != e.ts_s or (
                    isinstance(decision, ChildRestartScheduled) and decision.path != e.path):
                found.append(f"exit of {e.path} at {e.ts_s} answered by {decision}")
        elif isinstance(e, ChildRestartScheduled):
            cause = next((x for x in reversed(events[:i])
                          if isinstance(x, ChildExited) and x.path == e.path), None)
            if not (cause and cause.ts_s == e.ts_s and must_restart(tree.restart[e.path], cause)):
                found.append(f"{e.supervisor} restarted {e.path} at {e.ts_s} after {cause}")
            strategy = tree.supervisors[e.supervisor].strategy
            if (e.path not in e.group or any(tree.restart[p] is Restart.TEMPORARY for p in e.group)
                    or (strategy is Strategy.ONE_FOR_ONE and e.group != (e.path,))
                    or (strategy is Strategy.REST_FOR_ONE and e.group[0] != e.path)):
                found.append(f"{e.supervisor} ({strategy}) restarts {e.group} for {e.path}")
    return found


def intensity_violations(tree: Tree, events: list[SupervisionEvent],
                         failure: SupervisorFailedError | None) -> list[str]:
    """Restarts per window within max_restarts; giving up exactly beyond it, and escalating."""
    found: list[str] = []
    history: dict[str, list[float]] = {path: [] for path in tree.supervisors}
    gave_up: set[str] = set()
    for i, e in enumerate(events):
        if isinstance(e, ChildExited | ChildStopped) and e.path in tree.supervisors:
            history[e.path] = []  # that instance is gone; a restart makes a fresh one
            gave_up.discard(e.path)
        elif isinstance(e, ChildRestartScheduled):
            limit = tree.supervisors[e.supervisor].intensity
            window = [t for t in history[e.supervisor] if t > e.ts_s - limit.max_seconds]
            history[e.supervisor] = [*window, e.ts_s]
            if e.supervisor in gave_up or len(window) + 1 > limit.max_restarts:
                found.append(f"{e.supervisor}: restart {len(window) + 1} within "
                             f"{limit.max_seconds} s at {e.ts_s} (max {limit.max_restarts})")
        elif isinstance(e, SupervisorGaveUp):
            limit = tree.supervisors[e.path].intensity
            window = [t for t in history[e.path] if t > e.ts_s - limit.max_seconds]
            if len(window) != limit.max_restarts or e.restarts != len(window) + 1:
                found.append(f"{e.path} gave up at {e.ts_s} after {len(window)} restarts "
                             f"(reported {e.restarts}, max {limit.max_restarts})")
            gave_up.add(e.path)
            if e.path == ROOT:
                continue
            end = next((x for x in events[i + 1:] if isinstance(x, ChildExited | ChildStopped)
                        and x.path == e.path), None)
            escalated = isinstance(end, ChildStopped) or (  # ChildStopped: the parent was
                isinstance(end, ChildExited) and end.error is not None  # stopping it anyway
                and end.error.type == SupervisorFailedError.__name__)
            if not escalated:
                found.append(f"{e.path} gave up at {e.ts_s}; its parent saw {end}")
    if (ROOT in gave_up) != (failure is not None and failure.path == ROOT):
        found.append(f"root gave up: {ROOT in gave_up}, but run raised {failure!r}")
    return found


# ---- the property --------------------------------------------------------------------------


def _crash_meets_forced_cancel() -> SupervisorPlan:
    """Found by this property: an instance whose crash lands on the instant the supervisor
    cancels it (block ends as shutdown_s runs out) ran a shielded on_stop past the cancel, so
    ChildStopped was reported while it still ran."""
    no_backoff = Backoff(initial_s=0.0, max_s=0.0, multiplier=2.0, jitter=0.0)
    blocks_then_crashes = ActorPlan(restart=Restart.PERMANENT, shutdown_s=1.0, stop_s=1.5,
                                    start_faults={1: "raise"}, steps=((0.0, Block(1.0, True)),))
    fails_first_start = ActorPlan(restart=Restart.PERMANENT, shutdown_s=0.25, stop_s=0.0,
                                  start_faults={1: "raise"}, steps=())
    inner = SupervisorPlan(Strategy.ONE_FOR_ALL, Restart.PERMANENT, Intensity(1, 1.0), no_backoff,
                           (blocks_then_crashes, fails_first_start))
    middle = SupervisorPlan(Strategy.ONE_FOR_ONE, Restart.PERMANENT, Intensity(0, 1.0),
                            no_backoff, (inner,))
    return SupervisorPlan(Strategy.ONE_FOR_ONE, Restart.PERMANENT, Intensity(0, 1.0), no_backoff,
                          (middle,))


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(plan=supervisor_plans(levels=3), seed=st.integers(0, 2**32 - 1))
@example(plan=_crash_meets_forced_cancel(), seed=14)
def test_supervision_tree_keeps_its_invariants(plan: SupervisorPlan, seed: int) -> None:
    tracker = Tracker()
    tree = build_tree(plan, tracker)
    clock = trio.testing.MockClock(autojump_threshold=0)  # virtual time: sleeps cost nothing
    # Importing hypothesis makes trio's scheduler deterministic (trio's hypothesis plugin), so a
    # failing example replays and shrinks.
    outcome = trio.run(run_tree, tree, tracker, seed, clock=clock)
    for kind in {type(e).__name__ for e in outcome.events}:
        event(kind)  # `pytest --hypothesis-show-statistics` shows what the examples exercised

    # 1. one instance at a time
    assert tracker.violations == []
    assert lifecycle_violations(outcome.events) == []
    # 2. intensity, and escalation beyond it
    assert decision_violations(tree, outcome.events) == []
    assert intensity_violations(tree, outcome.events, outcome.failure) == []
    # 3. everything gone once the tree has stopped
    still_live = [f"{i.child}#{i.number}" for v in tracker.instances.values() for i in v if i.live]
    assert still_live == []
    assert outcome.leftover_tasks == []
    assert outcome.open_mailboxes == []
