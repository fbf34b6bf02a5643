"""The daemon as an operator meets it: `steward` in a real subprocess, and its give-up path.

Subprocess tests use real time, bounded by explicit deadlines; nothing listens on a network.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from supervisor import BACKOFF_OFF, ChildSpec, Intensity, SupervisorSpec
from supervisor._assembly import daemon_tree
from supervisor._daemon import EXIT_GAVE_UP, run_daemon
from tests.clients.harness import free_port
from tests.stubs import Journal, Recorder

STEWARD = [sys.executable, "-m", "supervisor.cli"]
READY_DEADLINE_S = 30.0


def start_daemon(home: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "STEWARD_HOME": str(home),
           "STEWARD_CONTROL_BIND": f"127.0.0.1:{free_port()}"}
    return subprocess.Popen(
        [*STEWARD, "run"], env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )


def wait_for_line(process: subprocess.Popen[str], needle: str) -> list[str]:
    assert process.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + READY_DEADLINE_S
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        lines.append(line)
        if needle in line:
            return lines
    process.kill()
    raise AssertionError(f"no {needle!r} within {READY_DEADLINE_S} s; got {lines}")


def test_help_when_installed_then_lists_the_verbs():
    result = subprocess.run([*STEWARD, "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert "run" in result.stdout and "STEWARD_HOME" in result.stdout


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_run_when_signalled_then_stops_branches_in_reverse_and_exits_zero(steward_home, signum):
    daemon = start_daemon(steward_home)
    try:
        wait_for_line(daemon, "daemon ready")
        daemon.send_signal(signum)
        _, stderr = daemon.communicate(timeout=30)
    finally:
        daemon.kill()
    assert daemon.returncode == 0
    stopped = [line.split("stopped ")[1].split()[0] for line in stderr.splitlines()
               if "steward.daemon: stopped root/" in line]
    branches = [path for path in stopped if path.count("/") == 1]
    assert branches == ["root/strategies", "root/feeds", "root/core"]
    core = [path.rsplit("/", 1)[1] for path in stopped if path.startswith("root/core/")]
    assert core[-3:] == ["risk", "positions", "journal"]  # reverse of the start order
    assert all(name.startswith("gateway.") for name in core[:-3])
    assert "daemon stopped" in stderr


def test_run_when_home_in_use_then_second_daemon_refused_with_holder_pid(steward_home):
    first = start_daemon(steward_home)
    try:
        wait_for_line(first, "daemon ready")
        second = subprocess.run(
            [*STEWARD, "run"], env={**os.environ, "STEWARD_HOME": str(steward_home),
                                    "STEWARD_CONTROL_BIND": f"127.0.0.1:{free_port()}"},
            capture_output=True, text=True, timeout=30,
        )
        assert second.returncode == 2
        assert f"another steward daemon (pid {first.pid})" in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=30)


async def test_run_daemon_when_root_gives_up_then_halt_hook_runs_and_exit_code_says_so(
    autojump_clock, steward_home, caplog
):
    caplog.set_level(logging.INFO)
    journal = Journal()
    crash_loop = ChildSpec("crashy", lambda: Recorder(journal, fail_start=True))
    spec = daemon_tree(strategies=[crash_loop])
    fragile = SupervisorSpec(
        spec.name, spec.children, intensity=Intensity(max_restarts=0, max_seconds=1),
        backoff=BACKOFF_OFF,
    )
    assert await run_daemon(steward_home, spec=fragile) == EXIT_GAVE_UP
    assert "trading halted" in caplog.text
