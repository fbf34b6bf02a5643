"""`steward status --json` and `steward kill` against a `steward run` subprocess on its own
STEWARD_HOME and port; the CLI finds the daemon's token file by itself."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.clients.harness import free_port
from tests.trading import EXAMPLES

STEWARD = [sys.executable, "-m", "supervisor.cli"]
READY_DEADLINE_S = 30.0


def start_daemon(home: Path, port: int) -> subprocess.Popen[str]:
    config = home.parent / "paper.toml"
    text = (EXAMPLES / "paper.toml").read_text().replace("127.0.0.1:50051", f"127.0.0.1:{port}")
    config.write_text(text)
    env = {**os.environ, "STEWARD_HOME": str(home)}
    return subprocess.Popen([*STEWARD, "run", "--plain", str(config)], env=env,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)


def wait_ready(process: subprocess.Popen[str]) -> list[str]:
    assert process.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + READY_DEADLINE_S
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        lines.append(line)
        if "daemon ready" in line:
            return lines
    process.kill()
    raise AssertionError(f"daemon not ready: {lines}")


def steward(home: Path, port: int, *args: str, token: str | None = None
            ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STEWARD_HOME": str(home), "STEWARD_ADDRESS": f"127.0.0.1:{port}"}
    env.pop("STEWARD_TOKEN", None)
    if token is not None:
        env["STEWARD_TOKEN"] = token
    return subprocess.run([*STEWARD, *args], env=env, capture_output=True, text=True,
                          timeout=30)


def test_cli_when_daemon_runs_then_status_json_kill_and_exit_codes(steward_home: Path):
    port = free_port()
    daemon = start_daemon(steward_home, port)
    try:
        wait_ready(daemon)
        status = steward(steward_home, port, "status", "--json")
        kill = steward(steward_home, port, "kill", "--reason", "cli test", "--json")
        again = steward(steward_home, port, "kill", "--reason", "cli test again")
        halted = steward(steward_home, port, "status", "--json")
        wrong = steward(steward_home, port, "status", token="not-the-token")
        unknown = steward(steward_home, port, "pause", "no-such-actor")
        human = steward(steward_home, port, "status")
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=30)
    finally:
        daemon.kill()
    gone = steward(steward_home, port, "status", "--timeout", "1")
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["trading"]["state"] == "ACTIVE" and data["actors"]
    assert kill.returncode == 0, kill.stderr
    assert json.loads(kill.stdout)["already_halted"] is False
    assert again.returncode == 0 and "already halted" in again.stdout
    assert json.loads(halted.stdout)["trading"]["state"] == "HALTED"
    assert wrong.returncode == 3 and "unauthenticated" in wrong.stderr
    assert unknown.returncode == 2 and "no-such-actor" in unknown.stderr
    assert human.returncode == 0 and "HALTED" in human.stdout and "root/core/risk" in human.stdout
    assert gone.returncode == 4
    assert daemon.returncode == 0
    token = (steward_home / "control.token").read_text().strip()
    assert token not in stderr  # the daemon's whole log
    assert stderr.index("control server stopped") < stderr.index("stopped root/strategies ")


def test_run_when_bind_not_loopback_then_refuses_to_start(steward_home: Path):
    config = steward_home.parent / "open.toml"
    config.write_text((EXAMPLES / "paper.toml").read_text().replace("127.0.0.1:50051",
                                                                    "0.0.0.0:50051"))
    result = subprocess.run([*STEWARD, "run", "--plain", str(config)],
                            env={**os.environ, "STEWARD_HOME": str(steward_home)},
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "not a loopback address" in result.stderr and "TLS" in result.stderr
    assert "daemon ready" not in result.stderr


def test_run_when_control_port_taken_then_tree_stopped_and_exit_2(steward_home: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        daemon = start_daemon(steward_home, taken.getsockname()[1])
        _, stderr = daemon.communicate(timeout=30)
    assert daemon.returncode == 2
    assert "cannot listen on 127.0.0.1:" in stderr
    assert "stopped root/core (" in stderr  # the tree stopped in order, not abandoned
    assert "daemon ready" not in stderr
