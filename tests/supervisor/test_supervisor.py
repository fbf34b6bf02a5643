"""Supervision semantics, OTP's: restart strategies and types, intensity, backoff, shutdown.

All timing is virtual (MockClock): `ts_s` in events is the trio clock.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable

import pytest
import trio

from actors import Actor, ActorNotRunningError
from supervisor import (
    BACKOFF_OFF,
    ActorState,
    Backoff,
    ChildAbandoned,
    ChildNotFoundError,
    ChildSpec,
    ChildStarted,
    DuplicateChildError,
    Intensity,
    Restart,
    StartTimeoutError,
    Strategy,
    SupervisionError,
    SupervisionEvent,
    Supervisor,
    SupervisorFailedError,
    SupervisorGaveUp,
    SupervisorSpec,
)
from tests.stubs import Crash, Echo, Exit, Hold, Journal, Recorder, SlowStopper, open_tree


def abc(journal: Journal, strategy: Strategy, **kwargs: object) -> SupervisorSpec:
    children = [ChildSpec(name, lambda: Recorder(journal)) for name in ("a", "b", "c")]
    return SupervisorSpec("root", children, strategy=strategy, backoff=BACKOFF_OFF, **kwargs)


def lifecycle(journal: Journal) -> list[tuple[str, str]]:
    return [(kind, name) for kind, name, _ in journal.entries if kind in ("start", "stop")]


async def crash_and_wait(supervisor: Supervisor, name: str) -> None:
    ref = supervisor.registry.lookup(name)
    await ref.tell(Crash())
    await ref.ask(Echo(0))  # answered by the restarted instance
    await trio.sleep(0.001)  # and let the supervisor finish its start pass


# ---- order -----------------------------------------------------------------------------------


async def test_tree_when_started_and_stopped_then_starts_in_order_and_stops_in_reverse(
    autojump_clock,
):
    journal = Journal()
    async with open_tree(abc(journal, Strategy.ONE_FOR_ONE)):
        pass
    assert lifecycle(journal) == [
        ("start", "a"), ("start", "b"), ("start", "c"),
        ("stop", "c"), ("stop", "b"), ("stop", "a"),
    ]


# ---- restart strategies ----------------------------------------------------------------------


async def test_one_for_one_when_child_crashes_then_only_that_child_restarts(autojump_clock):
    journal = Journal()
    async with open_tree(abc(journal, Strategy.ONE_FOR_ONE)) as tree:
        journal.entries.clear()
        await crash_and_wait(tree, "b")
        assert lifecycle(journal) == [("stop", "b"), ("start", "b")]
        assert [row.restart_count for row in tree.snapshot()[1:]] == [0, 1, 0]


async def test_one_for_all_when_child_crashes_then_all_stop_in_reverse_and_start_in_order(
    autojump_clock,
):
    journal = Journal()
    async with open_tree(abc(journal, Strategy.ONE_FOR_ALL)) as tree:
        journal.entries.clear()
        await crash_and_wait(tree, "b")
        assert lifecycle(journal) == [
            ("stop", "b"),  # the crashed instance's own cleanup
            ("stop", "c"), ("stop", "a"),
            ("start", "a"), ("start", "b"), ("start", "c"),
        ]
        assert [row.restart_count for row in tree.snapshot()[1:]] == [1, 1, 1]


async def test_rest_for_one_when_child_crashes_then_it_and_later_siblings_restart(
    autojump_clock,
):
    journal = Journal()
    async with open_tree(abc(journal, Strategy.REST_FOR_ONE)) as tree:
        journal.entries.clear()
        await crash_and_wait(tree, "b")
        assert lifecycle(journal) == [
            ("stop", "b"), ("stop", "c"), ("start", "b"), ("start", "c"),
        ]
        assert [row.restart_count for row in tree.snapshot()[1:]] == [0, 1, 1]


# ---- restart types ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("restart", "message", "restarted", "kept"),
    [
        (Restart.PERMANENT, Exit(), True, True),
        (Restart.PERMANENT, Crash(), True, True),
        (Restart.TRANSIENT, Exit(), False, True),
        (Restart.TRANSIENT, Crash(), True, True),
        (Restart.TEMPORARY, Exit(), False, False),
        (Restart.TEMPORARY, Crash(), False, False),
    ],
)
async def test_restart_type_decides_what_happens_after_normal_exit_or_crash(
    autojump_clock, restart: Restart, message: object, restarted: bool, kept: bool
):
    journal = Journal()
    spec = SupervisorSpec(
        "root", [ChildSpec("child", lambda: Recorder(journal), restart=restart)],
        backoff=BACKOFF_OFF,
    )
    async with open_tree(spec) as tree:
        ref = tree.registry.lookup("child")
        await ref.tell(message)
        await trio.sleep(1)
        assert journal.kinds("child").count("start") == (2 if restarted else 1)
        assert ("child" in tree.child_names()) is kept
        if restarted:
            assert await ref.ask(Echo(1)) == 1
        else:
            with pytest.raises(ActorNotRunningError):
                await ref.tell(Echo(1))
        if kept and not restarted:
            assert tree.snapshot()[1].state is ActorState.STOPPED


# ---- intensity and escalation ----------------------------------------------------------------


async def test_intensity_when_exhausted_two_levels_down_then_escalates_to_root_hook(
    autojump_clock,
):
    journal = Journal()
    events: list[SupervisionEvent] = []
    hook_saw: list[tuple[str, ActorState]] = []
    once_in_ten = Intensity(max_restarts=1, max_seconds=10)
    spec = SupervisorSpec(
        "root",
        [
            ChildSpec("gateway", lambda: Recorder(journal)),
            SupervisorSpec(
                "mid",
                [ChildSpec("leaf", lambda: Recorder(journal))],
                intensity=once_in_ten,
                backoff=BACKOFF_OFF,
            ),
        ],
        intensity=once_in_ten,
        backoff=BACKOFF_OFF,
    )
    async def halt_trading(failure: SupervisorFailedError) -> None:
        # The hook runs while the children still run: it can still reach the gateways.
        hook_saw.extend((row.path, row.state) for row in root.snapshot())
        assert await root.registry.lookup("gateway").ask(Echo(5)) == 5

    root = Supervisor(spec, on_event=events.append, on_give_up=halt_trading)
    failures: list[SupervisorFailedError] = []
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(root.run)
            leaf = root.registry.lookup("leaf")
            for _ in range(4):
                await leaf.tell(Crash())
                await trio.sleep(1)
    except* SupervisorFailedError as group:
        failures.extend(group.exceptions)  # type: ignore[arg-type]
    [failure] = failures
    assert failure.path == "root" and (failure.restarts, failure.max_restarts) == (2, 1)
    assert failure.last_error is not None and failure.last_error.type == "SupervisorFailedError"
    gave_up = [event.path for event in events if isinstance(event, SupervisorGaveUp)]
    assert gave_up == ["root/mid", "root/mid", "root"]
    assert ("root/gateway", ActorState.RUNNING) in hook_saw
    assert journal.kinds("gateway") == ["start", "stop"]  # stopped once, after the hook


async def test_intensity_when_restarts_spread_beyond_window_then_no_escalation(autojump_clock):
    journal = Journal()
    spec = SupervisorSpec(
        "root", [ChildSpec("leaf", lambda: Recorder(journal))],
        intensity=Intensity(max_restarts=2, max_seconds=10), backoff=BACKOFF_OFF,
    )
    async with open_tree(spec) as tree:
        for _ in range(6):
            await crash_and_wait(tree, "leaf")
            await trio.sleep(6)  # at most two crashes in any 10 s window
        assert tree.snapshot()[1].restart_count == 6


async def test_start_failure_when_persistent_then_counts_as_crash_and_escalates(
    autojump_clock,
):
    journal = Journal()
    spec = SupervisorSpec(
        "root",
        [ChildSpec("broken", lambda: Recorder(journal, fail_start=True))],
        intensity=Intensity(max_restarts=3, max_seconds=60),
        backoff=Backoff(initial_s=1, jitter=0),
    )
    started = trio.current_time()
    with pytest.raises(SupervisorFailedError, match="RuntimeError: cannot start"):
        await Supervisor(spec).run()
    assert trio.current_time() - started == pytest.approx(1 + 2 + 4)  # three backed-off retries
    assert journal.kinds("broken") == ["stop"] * 4  # on_stop cleans up after each failed start


async def test_start_when_on_start_hangs_then_start_timeout_is_a_crash(autojump_clock):
    class Hangs(Actor):
        async def on_start(self) -> None:
            await trio.sleep_forever()

    events: list[SupervisionEvent] = []
    spec = SupervisorSpec(
        "root", [ChildSpec("hangs", Hangs, start_timeout_s=3)],
        intensity=Intensity(max_restarts=0, max_seconds=1),
    )
    started = trio.current_time()
    with pytest.raises(SupervisorFailedError, match=StartTimeoutError.__name__):
        await Supervisor(spec, on_event=events.append).run()
    assert trio.current_time() - started == pytest.approx(3)


# ---- backoff ---------------------------------------------------------------------------------


def start_times(events: list[SupervisionEvent], path: str) -> list[float]:
    return [e.ts_s for e in events if isinstance(e, ChildStarted) and e.path == path]


async def test_backoff_when_crashes_repeat_then_delays_grow_cap_and_reset_after_stable_run(
    autojump_clock,
):
    events: list[SupervisionEvent] = []
    spec = SupervisorSpec(
        "root",
        [ChildSpec("leaf", lambda: Recorder(Journal()))],
        intensity=Intensity(max_restarts=100, max_seconds=1),
        backoff=Backoff(initial_s=1, multiplier=2, max_s=5, jitter=0, reset_after_s=30),
    )
    async with open_tree(spec, on_event=events.append) as tree:
        leaf = tree.registry.lookup("leaf")
        for _ in range(4):
            await leaf.tell(Crash())
            await leaf.ask(Echo(0), timeout_s=60)
        await trio.sleep(40)  # a stable run resets the sequence
        await leaf.tell(Crash())
        await leaf.ask(Echo(0), timeout_s=60)
    starts = start_times(events, "root/leaf")
    gaps = [round(later - earlier, 6) for earlier, later in itertools.pairwise(starts)]
    assert gaps[:4] == [1, 2, 4, 5]
    assert gaps[4] == pytest.approx(40 + 1)


async def test_backoff_when_jittered_then_each_delay_within_its_band(autojump_clock):
    backoff = Backoff(initial_s=1, multiplier=2, max_s=100, jitter=0.25)
    rng = random.Random(7)
    delays = [backoff.delay_s(attempt, rng) for attempt in range(1, 6)]
    for attempt, delay in enumerate(delays, start=1):
        base = 2 ** (attempt - 1)
        assert base * 0.75 <= delay <= base * 1.25
    assert len(set(delays)) == 5


# ---- shutdown --------------------------------------------------------------------------------


async def test_stop_when_child_exceeds_shutdown_timeout_then_abandoned_reported_tree_stops(
    autojump_clock,
):
    journal = Journal()
    events: list[SupervisionEvent] = []
    spec = SupervisorSpec(
        "root",
        [
            ChildSpec("first", lambda: Recorder(journal)),
            ChildSpec("slow", lambda: SlowStopper(journal), shutdown_s=2),
        ],
    )
    tree = Supervisor(spec, on_event=events.append)
    async with trio.open_nursery() as nursery:
        await nursery.start(tree.run)
        stop_started = trio.current_time()
        tree.request_stop()
    assert trio.current_time() - stop_started == pytest.approx(2)
    abandoned = [e for e in events if isinstance(e, ChildAbandoned)]
    assert [(e.path, e.shutdown_s) for e in abandoned] == [("root/slow", 2)]
    slow = next(row for row in tree.snapshot() if row.path == "root/slow")
    assert slow.state is ActorState.FAILED
    assert slow.last_error is not None and slow.last_error.type == "ShutdownTimeout"
    assert journal.kinds("slow") == ["start", "stopping"]  # cut off mid-cleanup
    assert journal.kinds("first") == ["start", "stop"]  # the rest still stopped in order


# ---- children at run time --------------------------------------------------------------------


async def test_children_when_added_and_removed_at_run_time_then_tree_follows(autojump_clock):
    journal = Journal()
    factory: Callable[[], Actor] = lambda: Recorder(journal)  # noqa: E731
    async with open_tree(SupervisorSpec("strategies", [])) as tree:
        await tree.start_child(ChildSpec("mm", factory))
        await tree.start_child(ChildSpec("arb", factory))
        assert tree.child_names() == ["mm", "arb"]
        assert await tree.registry.lookup("arb").ask(Echo(2)) == 2
        with pytest.raises(DuplicateChildError):
            await tree.start_child(ChildSpec("mm", factory))
        await tree.terminate_child("mm")
        assert tree.child_names() == ["arb"]
        with pytest.raises(ChildNotFoundError):
            await tree.terminate_child("mm")
        await tree.start_child(ChildSpec("mm", factory))  # the name is free again
        await tree.restart_child("arb")
        rows = {row.path: row for row in tree.snapshot()}
        assert rows["strategies/arb"].restart_count == 1
    assert journal.kinds("mm") == ["start", "stop", "start", "stop"]


async def test_nested_supervisor_when_added_at_run_time_then_findable_and_running(
    autojump_clock,
):
    journal = Journal()
    async with open_tree(SupervisorSpec("root", [])) as tree:
        await tree.start_child(
            SupervisorSpec("feeds", [ChildSpec("feed", lambda: Recorder(journal))])
        )
        feeds = tree.find_supervisor("feeds")
        assert feeds.child_names() == ["feed"]
        assert await tree.registry.lookup("feed").ask(Echo(3)) == 3


async def test_ref_when_parent_supervisor_restarts_then_still_reaches_the_new_instance(
    autojump_clock,
):
    journal = Journal()
    spec = SupervisorSpec(
        "root",
        [SupervisorSpec("core", [ChildSpec("risk", lambda: Recorder(journal))])],
        backoff=BACKOFF_OFF,
    )
    async with open_tree(spec) as tree:
        risk = tree.registry.lookup("risk")  # taken once, as a strategy would
        await tree.restart_child("core")
        assert await risk.ask(Echo(9)) == 9
    assert journal.kinds("risk") == ["start", "stop", "start", "stop"]


# ---- snapshot --------------------------------------------------------------------------------


async def test_snapshot_when_running_then_reports_every_actor_with_state_and_counters(
    autojump_clock,
):
    journal = Journal()
    spec = SupervisorSpec(
        "root",
        [
            SupervisorSpec("core", [ChildSpec("risk", lambda: Recorder(journal))]),
            ChildSpec("mm", lambda: Recorder(journal)),
        ],
        backoff=BACKOFF_OFF,
    )
    async with open_tree(spec) as tree:
        await trio.sleep(10)
        await crash_and_wait(tree, "mm")
        await trio.sleep(5)
        rows = {row.path: row for row in tree.snapshot()}
    assert list(rows) == ["root", "root/core", "root/core/risk", "root/mm"]
    assert rows["root/core"].kind == "supervisor"
    assert rows["root/core/risk"].state is ActorState.RUNNING
    assert rows["root/core/risk"].uptime_s == pytest.approx(15, abs=0.01)
    assert rows["root/mm"].restart_count == 1
    assert rows["root/mm"].uptime_s == pytest.approx(5, abs=0.01)
    assert rows["root/mm"].last_error is not None
    assert (rows["root/mm"].last_error.type, rows["root/mm"].last_error.message) == (
        "RuntimeError", "told to crash",
    )
    assert rows["root/mm"].mailbox_depth == 0


def test_tree_when_actor_names_repeat_across_branches_then_refused_before_start():
    spec = SupervisorSpec(
        "root",
        [
            SupervisorSpec("feeds", [ChildSpec("paper", lambda: Recorder(Journal()))]),
            SupervisorSpec("core", [ChildSpec("paper", lambda: Recorder(Journal()))]),
        ],
    )
    with pytest.raises(DuplicateChildError, match="'paper'"):
        Supervisor(spec)


async def test_backoff_when_restarts_keep_failing_after_a_long_run_then_still_grows(
    autojump_clock,
):
    attempts: list[float] = []

    def factory() -> Recorder:
        attempts.append(trio.current_time())
        return Recorder(Journal(), fail_start=len(attempts) > 1)  # only the first start works

    spec = SupervisorSpec(
        "root",
        [ChildSpec("feed", factory)],
        intensity=Intensity(max_restarts=4, max_seconds=1000),
        backoff=Backoff(initial_s=1, multiplier=2, max_s=100, jitter=0, reset_after_s=30),
    )
    gave_up = False
    try:
        async with trio.open_nursery() as nursery:
            tree = Supervisor(spec)
            await nursery.start(tree.run)
            await trio.sleep(100)  # a long, stable run
            await tree.registry.lookup("feed").tell(Crash())
    except* SupervisorFailedError:
        gave_up = True  # the fifth restart is beyond intensity
    assert gave_up
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(attempts[1:])]
    assert gaps == [2, 4, 8]  # after the first retry at +1 s, not 1, 1, 1


# ---- regressions found in review -----------------------------------------------------------


class BrokenFactoryError(RuntimeError):
    pass


def broken_factory() -> Actor:
    raise BrokenFactoryError("config unreadable")


async def test_command_when_supervisor_is_stopping_then_fails_at_once(autojump_clock):
    journal = Journal()
    spec = SupervisorSpec("root", [ChildSpec("slow", lambda: SlowStopper(journal), shutdown_s=5)])
    async with trio.open_nursery() as nursery:
        tree = Supervisor(spec)
        await nursery.start(tree.run)
        tree.request_stop()
        await trio.sleep(1)  # mid-stop: slow is still in on_stop
        started = trio.current_time()
        with pytest.raises(SupervisionError, match=r"not running|stopping"):
            await tree.start_child(ChildSpec("late", lambda: Recorder(journal)))
        assert trio.current_time() == started


async def test_give_up_hook_when_it_issues_a_command_then_command_fails_fast(autojump_clock):
    outcomes: list[str] = []

    async def hook(failure: SupervisorFailedError) -> None:
        try:
            await root.start_child(ChildSpec("late", lambda: Recorder(Journal())))
        except SupervisionError:
            outcomes.append(f"refused at {trio.current_time()}")

    spec = SupervisorSpec("root", [ChildSpec("bad", broken_factory)],
                          intensity=Intensity(max_restarts=0, max_seconds=1))
    root = Supervisor(spec, on_give_up=hook)
    with pytest.raises(SupervisorFailedError):
        await root.run()
    assert outcomes == ["refused at 0.0"]


async def test_factory_when_it_raises_then_a_failed_start_that_escalates_to_the_hook(
    autojump_clock,
):
    hooked: list[str] = []

    async def hook(failure: SupervisorFailedError) -> None:
        hooked.append(str(failure))

    spec = SupervisorSpec("root", [ChildSpec("bad", broken_factory)],
                          intensity=Intensity(max_restarts=2, max_seconds=10), backoff=BACKOFF_OFF)
    with pytest.raises(SupervisorFailedError, match="BrokenFactoryError: config unreadable"):
        await Supervisor(spec, on_give_up=hook).run()
    assert len(hooked) == 1


async def test_start_child_when_nested_spec_reuses_a_live_name_then_refused_and_nothing_changes(
    autojump_clock,
):
    journal = Journal()
    spec = SupervisorSpec("root", [ChildSpec("a", lambda: Recorder(journal))])
    async with open_tree(spec) as tree:
        with pytest.raises(DuplicateChildError, match="'a'"):
            await tree.start_child(
                SupervisorSpec("branch", [ChildSpec("a", lambda: Recorder(journal))])
            )
        assert tree.child_names() == ["a"]
        assert await tree.registry.lookup("a").ask(Echo(1)) == 1


@pytest.mark.parametrize("strategy", [Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE])
async def test_start_pass_when_temporary_child_fails_to_start_then_later_siblings_still_start(
    autojump_clock, strategy: Strategy
):
    journal = Journal()
    spec = SupervisorSpec(
        "root",
        [
            ChildSpec("once", lambda: Recorder(journal, fail_start=True),
                      restart=Restart.TEMPORARY),
            ChildSpec("after", lambda: Recorder(journal)),
        ],
        strategy=strategy,
    )
    async with open_tree(spec) as tree:
        await trio.sleep(1)
        assert tree.child_names() == ["after"]
        assert await tree.registry.lookup("after").ask(Echo(2)) == 2


async def test_stop_when_requested_during_a_slow_start_then_returns_without_waiting(
    autojump_clock,
):
    class SlowStart(Actor):
        async def on_start(self) -> None:
            await trio.sleep(20)

    spec = SupervisorSpec("root", [ChildSpec(f"s{n}", SlowStart) for n in range(3)])
    tree = Supervisor(spec)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(tree.run)
        await trio.sleep(0.1)
        tree.request_stop()
    assert trio.current_time() == pytest.approx(0.1)


async def test_terminate_child_when_branch_then_its_actor_names_are_forgotten(autojump_clock):
    journal = Journal()
    spec = SupervisorSpec(
        "root", [SupervisorSpec("branch", [ChildSpec("a", lambda: Recorder(journal))])]
    )
    async with open_tree(spec) as tree:
        await tree.terminate_child("branch")
        assert "a" not in tree.registry
        await tree.start_child(ChildSpec("a", lambda: Recorder(journal)))  # a new, unrelated a
        assert await tree.registry.lookup("a").ask(Echo(3)) == 3


async def test_self_stop_when_on_stop_hangs_then_bounded_by_shutdown_timeout(autojump_clock):
    journal = Journal()
    spec = SupervisorSpec("root", [ChildSpec("slow", lambda: SlowStopper(journal),
                                             shutdown_s=2)], backoff=BACKOFF_OFF)
    async with open_tree(spec) as tree:
        await tree.registry.lookup("slow").tell(Exit())
        await trio.sleep(2.5)
        row = tree.snapshot()[1]
        assert row.restart_count == 1 and row.last_error is not None
        assert row.last_error.type == "TimeoutError"


class IgnoresCancellation(Actor):
    """Its Hold handler shields a slow call (a blocking REST call, say) from cancellation."""

    def __init__(self, live: list[int], peak: list[int]) -> None:
        self.live, self.peak = live, peak

    async def on_start(self) -> None:
        self.live.append(1)
        self.peak.append(len(self.live))

    async def on_hold(self, message: Hold) -> None:
        try:
            with trio.CancelScope(shield=True):
                await trio.sleep(5)
        finally:
            self.live.pop()


async def test_restart_when_old_instance_ignores_cancellation_then_new_one_waits_for_it(
    autojump_clock,
):
    live: list[int] = []
    peak: list[int] = []
    spec = SupervisorSpec("root", [ChildSpec("w", lambda: IgnoresCancellation(live, peak),
                                             shutdown_s=1)], backoff=BACKOFF_OFF)
    async with open_tree(spec) as tree:
        await tree.registry.lookup("w").tell(Hold())
        await trio.sleep(0.1)
        await tree.restart_child("w")  # stop asks, waits 1 s, cancels: the shield holds 5 s
        assert trio.current_time() == pytest.approx(5)
    assert peak == [1, 1]  # never two instances alive


async def test_kill_child_when_running_then_crash_without_cleanup_and_restart(autojump_clock):
    journal = Journal()
    async with open_tree(one_actor_spec(journal)) as tree:
        await tree.kill_child("rec")
        assert await tree.registry.lookup("rec").ask(Echo(4)) == 4
        row = tree.snapshot()[1]
        assert row.restart_count == 1 and row.last_error is not None
        assert row.last_error.type == "ChildKilledError"
    assert journal.kinds("rec")[:2] == ["start", "start"]  # no on_stop for the killed one


def one_actor_spec(journal: Journal) -> SupervisorSpec:
    return SupervisorSpec("root", [ChildSpec("rec", lambda: Recorder(journal))],
                          backoff=BACKOFF_OFF)


async def test_pause_child_when_a_sibling_crashes_under_one_for_all_then_stays_down(
    autojump_clock,
):
    journal = Journal()
    async with open_tree(abc(journal, Strategy.ONE_FOR_ALL)) as tree:
        await tree.pause_child("b")
        with pytest.raises(ActorNotRunningError):
            await tree.registry.lookup("b").tell(Echo(1))
        await crash_and_wait(tree, "a")  # the group restarts: a and c, not the paused b
        assert journal.kinds("b").count("start") == 1
        assert tree.snapshot()[2].state is ActorState.STOPPED
        await tree.resume_child("b")
        assert await tree.registry.lookup("b").ask(Echo(2)) == 2
