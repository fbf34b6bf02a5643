"""The fleet: `fleet.toml` parsing, and `steward kill --fleet` against three `steward run`
daemons on 127.0.0.2-4, one of them frozen with SIGSTOP (real clock, bounded)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clients import Fleet, FleetError, fleet_status, kill_fleet, load_fleet
from tests.trading import EXAMPLES

STEWARD = [sys.executable, "-m", "supervisor.cli"]
READY_DEADLINE_S = 30.0
STOP_DEADLINE_S = 15.0
KILL_DEADLINE_S = 2.0
STARTUP_ALLOWANCE_S = 1.0  # the CLI's own interpreter start, on top of the fleet's deadline
ADDRESSES = ("127.0.0.2", "127.0.0.3", "127.0.0.4")  # all of 127.0.0.0/8 is loopback on Linux


def fleet_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fleet.toml"
    path.write_text(text)
    return path


# ---- the file -------------------------------------------------------------------------------


def test_load_fleet_when_example_then_parses():
    fleet = load_fleet(EXAMPLES / "fleet" / "fleet.toml")
    assert [host.name for host in fleet.hosts] == ["local", "ams-1"]
    assert fleet.hosts[1].tls and fleet.hosts[1].token_env == "STEWARD_TOKEN_AMS1"
    assert fleet.warnings == []


@pytest.mark.parametrize(("text", "words"), [
    ('[[hosts]]\nname = "a"\naddress = "127.0.0.1:1"\ntoken_env = "T"\ncolour = "red"\n',
     "colour"),
    ('[[hosts]]\nname = "a"\naddress = "127.0.0.1:1"\n', "exactly one of token_env"),
    ('[[hosts]]\nname = "a"\naddress = "127.0.0.1:1"\ntoken_env = "T"\ntoken_file = "f"\n',
     "got token_env, token_file"),
    ('[[hosts]]\nname = "a"\naddress = "127.0.0.1:1"\ntoken_env = "T"\n'
     '[[hosts]]\nname = "a"\naddress = "127.0.0.1:2"\ntoken_env = "T"\n', "appears twice"),
    ('[[hosts]]\nname = "a"\naddress = "nowhere"\ntoken_env = "T"\n', "host:port"),
    ('[[hosts]]\nname = "a"\naddress = "127.0.0.1:1"\ntoken_env = "T"\ncert_file = "c"\n',
     "go together"),
    ("hosts = []\n", "no [[hosts]]"),
    ("[[hosts]\n", "not valid TOML"),
])
def test_load_fleet_when_wrong_then_fleet_error_says_why(tmp_path: Path, text: str, words: str):
    with pytest.raises(FleetError) as caught:
        load_fleet(fleet_file(tmp_path, text))
    assert words in str(caught.value)


def test_kill_fleet_when_hosts_misconfigured_then_each_named_and_none_raises(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("NO_SUCH_TOKEN_VAR", raising=False)
    port = free_port("127.0.0.1")  # nothing listens there: retried until the deadline
    fleet = load_fleet(fleet_file(tmp_path, f"""
[[hosts]]
name = "no-env"
address = "127.0.0.1:{port}"
token_env = "NO_SUCH_TOKEN_VAR"

[[hosts]]
name = "no-file"
address = "127.0.0.1:{port}"
token_file = "missing.token"

[[hosts]]
name = "bare-remote"
address = "192.0.2.1:50051"
token = "inline-secret"

[[hosts]]
name = "down"
address = "127.0.0.1:{port}"
token = "inline-secret"

[[hosts]]
name = "bad-tls"
address = "127.0.0.1:{port}"
token_env = "HOME"
ca_file = "missing-ca.pem"
"""))
    assert len(fleet.warnings) == 2 and "bare-remote" in fleet.warnings[0]
    started = time.monotonic()
    outcomes = kill_fleet(fleet, "test", deadline_s=0.5)
    elapsed = time.monotonic() - started
    by_name = {o.name: o for o in outcomes}
    assert [o.name for o in outcomes] == ["no-env", "no-file", "bare-remote", "down", "bad-tls"]
    assert not any(o.halted for o in outcomes)
    assert "$NO_SUCH_TOKEN_VAR is not set" in by_name["no-env"].error
    assert "missing.token" in by_name["no-file"].error
    assert "clear text" in by_name["bare-remote"].error
    assert "unavailable" in by_name["down"].error and by_name["down"].attempts > 1
    assert "missing-ca.pem" in by_name["bad-tls"].error
    assert all("inline-secret" not in o.error for o in outcomes)
    assert elapsed < 0.5 + 0.5


# ---- three real daemons ---------------------------------------------------------------------


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def start_daemon(home: Path, bind: str) -> tuple[subprocess.Popen[bytes], Path]:
    home.mkdir(parents=True)
    log = home.parent / f"{home.name}.log"
    env = {**os.environ, "STEWARD_HOME": str(home), "STEWARD_CONTROL_BIND": bind}
    with log.open("wb") as sink:  # a file, not a pipe: nobody has to drain it
        process = subprocess.Popen([*STEWARD, "run", "--plain", str(EXAMPLES / "paper.toml")],
                                   env=env, stdout=subprocess.DEVNULL, stderr=sink)
    return process, log


def wait_all_ready(daemons: list[tuple[subprocess.Popen[bytes], Path]]) -> None:
    deadline = time.monotonic() + READY_DEADLINE_S
    for process, log in daemons:
        while "daemon ready" not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"daemon not ready: {log.read_text(errors='replace')}")
            time.sleep(0.05)


def stop_all(daemons: list[tuple[subprocess.Popen[bytes], Path]]) -> None:
    for process, _ in daemons:
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_DEADLINE_S
    for process, _ in daemons:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def steward(*args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items()
           if key not in ("STEWARD_TOKEN", "STEWARD_ADDRESS")}
    return subprocess.run([*STEWARD, *args], env=env, capture_output=True, text=True,
                          timeout=30)


def test_kill_fleet_when_one_daemon_frozen_then_others_halted_and_frozen_one_named(
        tmp_path: Path):
    daemons: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        entries = []
        for index, ip in enumerate(ADDRESSES):
            name = f"host-{index + 2}"
            home = tmp_path / name
            address = f"{ip}:{free_port(ip)}"
            daemons.append(start_daemon(home, address))
            entries.append(f'[[hosts]]\nname = "{name}"\naddress = "{address}"\n'
                           f'token_file = "{home / "control.token"}"\n')
        path = fleet_file(tmp_path, "\n".join(entries))
        wait_all_ready(daemons)
        before = steward("fleet", "status", "--fleet", str(path), "--json")
        frozen, _ = daemons[1]
        frozen.send_signal(signal.SIGSTOP)

        started = time.monotonic()
        kill = steward("kill", "--fleet", str(path), "--reason", "fleet test",
                       "--deadline", str(KILL_DEADLINE_S), "--json")
        elapsed = time.monotonic() - started
        after = fleet_status(Fleet(path, [h for h in load_fleet(path).hosts
                                          if h.name != "host-3"]), deadline_s=2.0)
        human = steward("fleet", "status", "--fleet", str(path), "--deadline", "0.5")
    finally:
        stop_all(daemons)

    assert before.returncode == 0, before.stderr
    assert [h["state"] for h in json.loads(before.stdout)["hosts"]] == ["ACTIVE"] * 3

    assert kill.returncode == 1, kill.stderr
    assert elapsed < KILL_DEADLINE_S + STARTUP_ALLOWANCE_S, elapsed
    report = json.loads(kill.stdout)
    assert report["halted"] is False
    by_name = {host["name"]: host for host in report["hosts"]}
    assert by_name["host-2"]["halted"] and by_name["host-4"]["halted"]
    assert not by_name["host-2"]["already_halted"] and not by_name["host-2"]["error"]
    assert not by_name["host-3"]["halted"] and "deadline" in by_name["host-3"]["error"]
    assert by_name["host-3"]["elapsed_ms"] < (KILL_DEADLINE_S + 0.2) * 1000
    assert "not confirmed HALTED: host-3" in kill.stderr
    assert "host-2" not in kill.stderr and "host-4" not in kill.stderr

    assert [(o.name, o.state, o.open_orders) for o in after] == [
        ("host-2", "HALTED", 0), ("host-4", "HALTED", 0)]
    assert human.returncode == 1 and "host-3" in human.stderr and "HALTED" in human.stdout
