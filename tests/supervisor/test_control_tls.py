"""The control plane over TLS and mTLS, with certificates made by trustme: real gRPC on
loopback, real clock, bounded. A non-loopback bind is allowed only with TLS (the bind check is
unit-tested: nothing here listens beyond loopback)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio
import trustme

from clients import ControlClient, TlsConfigError, TlsOptions, Unauthenticated, Unavailable
from supervisor._auth import Role
from supervisor._config import ConfigError, ControlConfig, load_config
from supervisor._control import ControlService
from supervisor._grpc import (
    ControlServerError,
    ControlServerHandle,
    ServerTls,
    check_bind,
    load_server_tls,
    serve_control,
)
from supervisor.cli import main
from tests.clients.harness import TOKENS, blocking, token_table
from tests.supervisor.test_control import control_actions
from tests.trading import running_daemon

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "paper.toml"


@dataclass
class Pki:
    """A CA, the daemon's certificate (127.0.0.1 and localhost), a client certificate
    (CN=desk-1) and a CA that signed neither, all as files under `dir`."""

    dir: Path
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path
    foreign_cert: Path
    foreign_key: Path
    key_pem: bytes  # the server's key, to check it never leaks


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    directory = tmp_path / "pki"
    directory.mkdir()
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost", common_name="steward-daemon")
    client = ca.issue_cert("desk-1.example", common_name="desk-1")
    paths = {name: directory / f"{name}.pem" for name in
             ("ca", "server_cert", "server_key", "client_cert", "client_key", "other_ca",
              "foreign_cert", "foreign_key")}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    server.private_key_pem.write_to_path(str(paths["server_key"]))
    client.private_key_pem.write_to_path(str(paths["client_key"]))
    for path, blobs in ((paths["server_cert"], server.cert_chain_pems),
                        (paths["client_cert"], client.cert_chain_pems)):
        path.write_bytes(b"".join(blob.bytes() for blob in blobs))
    other = trustme.CA()
    other.cert_pem.write_to_path(str(paths["other_ca"]))
    foreign = other.issue_cert("desk-2.example", common_name="desk-2")
    foreign.private_key_pem.write_to_path(str(paths["foreign_key"]))
    foreign.cert_chain_pems[0].write_to_path(str(paths["foreign_cert"]))
    return Pki(directory, **paths, key_pem=server.private_key_pem.bytes())


def server_tls(pki: Pki, *, mutual: bool) -> ServerTls | None:
    return load_server_tls(ControlConfig(
        tls_cert_file=str(pki.server_cert), tls_key_file=str(pki.server_key),
        tls_client_ca_file=str(pki.ca) if mutual else None))


@asynccontextmanager
async def tls_daemon(home: Path, tls: ServerTls | None) -> AsyncIterator[ControlServerHandle]:
    async with running_daemon(home) as daemon:
        service = ControlService(daemon.root, daemon.assembly)
        async with trio.open_nursery() as nursery:
            server = await nursery.start(serve_control, service, "127.0.0.1:0", token_table(),
                                         tls)
            try:
                yield server
            finally:
                await server.stop()


def status_over(port: int, tls: TlsOptions | None, role: Role = Role.VIEWER,
                host: str = "127.0.0.1") -> dict[str, object] | Exception:
    try:
        with ControlClient(f"{host}:{port}", token=TOKENS[role], tls=tls,
                           timeout_s=5) as client:
            return client.status()
    except Exception as exc:
        return exc


def pause_over(port: int, tls: TlsOptions) -> dict[str, object]:
    with ControlClient(f"127.0.0.1:{port}", token=TOKENS[Role.OPERATOR], tls=tls,
                       timeout_s=5) as client:
        return client.pause_actor("mm-btc-a")


# ---- the bind check -------------------------------------------------------------------------


@pytest.mark.parametrize("bind", ["0.0.0.0:50051", "10.1.2.3:1", "example.com:50051", "[::]:1"])
def test_check_bind_when_not_loopback_with_tls_then_allowed(bind: str):
    check_bind(bind, tls=True)


def test_check_bind_when_not_loopback_without_tls_then_error_says_how_to_fix():
    with pytest.raises(ControlServerError, match="tls_cert_file"):
        check_bind("0.0.0.0:50051", tls=False)


# ---- TLS and mTLS over loopback -------------------------------------------------------------


async def test_status_when_tls_and_client_trusts_the_ca_then_works(steward_home, pki):
    with trio.fail_after(30):
        async with tls_daemon(steward_home, server_tls(pki, mutual=False)) as server:
            by_ip = await blocking(status_over, server.port, TlsOptions(ca_file=pki.ca))
            by_name = await blocking(status_over, server.port, TlsOptions(ca_file=pki.ca),
                                     Role.VIEWER, "localhost")
            plaintext = await blocking(status_over, server.port, None)
    assert isinstance(by_ip, dict) and by_ip["trading"]["state"] == "ACTIVE"
    assert isinstance(by_name, dict)
    assert isinstance(plaintext, Unavailable)  # a plaintext client cannot talk to a TLS server


def no_token_status(port: int, ca: Path) -> Exception | None:
    with ControlClient(f"127.0.0.1:{port}", token="", tls=TlsOptions(ca_file=ca)) as client:
        try:
            client.status()
        except Exception as exc:
            return exc
    return None


async def test_status_when_tls_and_no_token_then_still_unauthenticated(steward_home, pki):
    with trio.fail_after(30):
        async with tls_daemon(steward_home, server_tls(pki, mutual=False)) as server:
            error = await blocking(no_token_status, server.port, pki.ca)
    assert isinstance(error, Unauthenticated)


async def test_status_when_client_trusts_another_ca_then_unavailable(steward_home, pki):
    with trio.fail_after(30):
        async with tls_daemon(steward_home, server_tls(pki, mutual=False)) as server:
            error = await blocking(status_over, server.port, TlsOptions(ca_file=pki.other_ca))
    assert isinstance(error, Unavailable)


async def test_mtls_when_client_has_no_certificate_then_refused(steward_home, pki):
    with trio.fail_after(30):
        async with tls_daemon(steward_home, server_tls(pki, mutual=True)) as server:
            error = await blocking(status_over, server.port, TlsOptions(ca_file=pki.ca))
            foreign = await blocking(status_over, server.port, TlsOptions(
                ca_file=pki.ca, cert_file=pki.foreign_cert, key_file=pki.foreign_key))
    assert isinstance(error, Unavailable)
    assert isinstance(foreign, Unavailable)  # a client certificate from another CA


async def test_mtls_when_client_presents_a_certificate_then_works_and_cn_is_journaled(
    steward_home, pki, caplog
):
    caplog.set_level(logging.DEBUG)
    tls = TlsOptions(ca_file=pki.ca, cert_file=pki.client_cert, key_file=pki.client_key)
    with trio.fail_after(30):
        async with tls_daemon(steward_home, server_tls(pki, mutual=True)) as server:
            status = await blocking(status_over, server.port, tls)
            await blocking(pause_over, server.port, tls)
    assert isinstance(status, dict)
    actions = control_actions(steward_home)
    assert [(a["action"], a["who"]) for a in actions] == [("pause_actor",
                                                           "operator (CN=desk-1)")]
    # Neither the key nor a token reaches a log line.
    for secret in (pki.key_pem.decode(), *TOKENS.values()):
        assert secret not in caplog.text
    assert "mTLS" in caplog.text  # the server says how it listens


# ---- configuration --------------------------------------------------------------------------


def config_with_control(tmp_path: Path, control: str) -> Path:
    text = EXAMPLE.read_text().replace('[control]\nbind = "127.0.0.1:50051"\n',
                                       f"[control]\n{control}\n", 1)
    assert control in text
    path = tmp_path / "daemon.toml"
    path.write_text(text)
    return path


def test_load_config_when_tls_paths_relative_then_under_the_config_files_directory(
    tmp_path: Path, pki: Pki
):
    path = config_with_control(tmp_path, f'bind = "0.0.0.0:50051"\n'
                               f'tls_cert_file = "pki/{pki.server_cert.name}"\n'
                               f'tls_key_file = "pki/{pki.server_key.name}"\n'
                               f'tls_client_ca_file = "{pki.ca}"')
    control = load_config(path).control
    assert control.tls_cert_file == str(pki.server_cert)
    assert control.tls_key_file == str(pki.server_key)
    assert control.tls_client_ca_file == str(pki.ca)  # absolute: as given
    tls = load_server_tls(control)
    assert tls is not None and tls.mutual
    check_bind(control.bind, tls=tls is not None)
    assert pki.key_pem.decode() not in repr(tls)


@pytest.mark.parametrize(("control", "key", "reason"), [
    ('tls_cert_file = "pki/server_cert.pem"', "control.tls_key_file", "go together"),
    ('tls_client_ca_file = "pki/ca.pem"', "control.tls_client_ca_file", "tls_cert_file"),
    ('tls_cert_file = "pki/server_cert.pem"\ntls_key_file = "pki/nope.pem"',
     "control.tls_key_file", "no such file"),
])
def test_load_config_when_tls_incomplete_or_missing_then_error_names_the_key(
    tmp_path: Path, pki: Pki, control: str, key: str, reason: str
):
    with pytest.raises(ConfigError) as caught:
        load_config(config_with_control(tmp_path, control))
    assert caught.value.key == key and reason in caught.value.reason


def test_load_server_tls_when_key_not_pem_then_error_names_file_not_contents(tmp_path: Path,
                                                                           pki: Pki):
    bad = tmp_path / "key.pem"
    bad.write_text("hunter2-not-a-key")
    with pytest.raises(ControlServerError) as caught:
        load_server_tls(ControlConfig(tls_cert_file=str(pki.server_cert),
                                      tls_key_file=str(bad)))
    assert str(bad) in str(caught.value) and "hunter2" not in str(caught.value)
    assert load_server_tls(ControlConfig()) is None


def test_tls_options_when_cert_without_key_or_unreadable_then_clear_error(tmp_path: Path):
    with pytest.raises(TlsConfigError, match="needs its key"):
        TlsOptions(cert_file="client.pem")
    secret = tmp_path / "ca.pem"
    secret.write_text("hunter2")
    with pytest.raises(TlsConfigError) as caught:
        ControlClient("127.0.0.1:1", token="t", tls=TlsOptions(ca_file=secret))
    assert "not PEM" in str(caught.value) and "hunter2" not in str(caught.value)
    assert TlsOptions.from_env({}) is None
    assert TlsOptions.from_env({"STEWARD_TLS_CA": "ca.pem"}, key_file="k.pem",
                               cert_file="c.pem") == TlsOptions("ca.pem", "c.pem", "k.pem")


async def test_cli_when_tls_options_or_environment_given_then_status_over_tls(
    steward_home, pki, monkeypatch, capsys
):
    monkeypatch.setenv("STEWARD_TOKEN", TOKENS[Role.VIEWER])
    monkeypatch.delenv("STEWARD_TLS_CA", raising=False)
    with trio.fail_after(30):
        async with tls_daemon(steward_home, server_tls(pki, mutual=True)) as server:
            verb = ["status", "--json", "--host", f"127.0.0.1:{server.port}", "--timeout", "5"]
            mtls = ["--tls-cert", str(pki.client_cert), "--tls-key", str(pki.client_key)]
            by_flags = await blocking(main, [*verb, "--tls-ca", str(pki.ca), *mtls])
            monkeypatch.setenv("STEWARD_TLS_CA", str(pki.ca))
            by_env = await blocking(main, [*verb, *mtls])
            no_cert = await blocking(main, verb)
            half = await blocking(main, [*verb, "--tls-cert", str(pki.client_cert)])
    assert (by_flags, by_env, no_cert, half) == (0, 0, 4, 2)
    assert "needs its key" in capsys.readouterr().err
