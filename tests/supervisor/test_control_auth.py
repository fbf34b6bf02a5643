"""The control plane's auth matrix over real gRPC on loopback: every RPC × no token, a wrong
token, a duplicated header and each role. Allowed calls use harmless requests (an unknown actor,
an empty reason), so "allowed" means any code but UNAUTHENTICATED / PERMISSION_DENIED."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
import trio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from protos import control_pb2 as pb
from protos import control_pb2_grpc
from supervisor._auth import ROLE_METHODS, Role, TokenTable, digest, load_tokens
from supervisor._config import ControlConfig, ControlTokenConfig
from tests.clients.harness import TOKENS, blocking, served_daemon

DENIED = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}
REQUESTS = {
    "GetStatus": pb.GetStatusRequest(),
    "GetParams": pb.GetParamsRequest(actor="mm-btc-a"),
    "UpdateParams": pb.UpdateParamsRequest(actor="no-such-strategy"),
    "PauseActor": pb.ActorRequest(name="no-such-actor"),
    "ResumeActor": pb.ActorRequest(name="no-such-actor"),
    "RestartActor": pb.ActorRequest(name="no-such-actor"),
    "EmergencyStop": pb.EmergencyStopRequest(reason=""),  # refused before anything happens
    "Resume": pb.ResumeRequest(reason=""),
}


def call_code(channel: grpc.Channel, method: str,
              metadata: tuple[tuple[str, str], ...]) -> grpc.StatusCode:
    stub = control_pb2_grpc.ControlStub(channel)
    try:
        getattr(stub, method)(REQUESTS[method], timeout=5, metadata=metadata)
    except grpc.RpcError as exc:
        return exc.code()  # type: ignore[attr-defined, no-any-return]
    return grpc.StatusCode.OK


def bearer(token: str) -> tuple[str, str]:
    return ("authorization", f"Bearer {token}")


def matrix(address: str) -> dict[tuple[str, str], grpc.StatusCode]:
    codes = {}
    with grpc.insecure_channel(address) as channel:
        for method in REQUESTS:
            codes[(method, "none")] = call_code(channel, method, ())
            codes[(method, "wrong")] = call_code(channel, method, (bearer("not-a-token"),))
            codes[(method, "duplicate")] = call_code(
                channel, method, (bearer(TOKENS[Role.ADMIN]), bearer(TOKENS[Role.ADMIN])))
            for role, token in TOKENS.items():
                codes[(method, role.value)] = call_code(channel, method, (bearer(token),))
    return codes


async def test_every_rpc_when_called_per_token_then_auth_codes_match_roles(steward_home: Path):
    with trio.fail_after(20):
        async with served_daemon(steward_home) as served:
            codes = await blocking(matrix, served.address)
    for method in REQUESTS:
        assert codes[(method, "none")] is grpc.StatusCode.UNAUTHENTICATED, method
        assert codes[(method, "wrong")] is grpc.StatusCode.UNAUTHENTICATED, method
        assert codes[(method, "duplicate")] is grpc.StatusCode.UNAUTHENTICATED, method
        for role in Role:
            code = codes[(method, role.value)]
            if method in ROLE_METHODS[role]:
                assert code not in DENIED, (method, role, code)
            else:
                assert code is grpc.StatusCode.PERMISSION_DENIED, (method, role, code)
    # The table itself, spelled out: what each role may do.
    assert {m for m in REQUESTS if codes[(m, "viewer")] not in DENIED} == {"GetStatus",
                                                                          "GetParams"}
    assert {m for m in REQUESTS if codes[(m, "kill")] not in DENIED} == {"EmergencyStop"}
    assert {m for m in REQUESTS if codes[(m, "admin")] not in DENIED} == set(REQUESTS)
    assert {m for m in REQUESTS if codes[(m, "operator")] not in DENIED} == (
        set(REQUESTS) - {"EmergencyStop"})


def health_and_reflection(address: str) -> dict[str, object]:
    out: dict[str, object] = {}
    with grpc.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        out["health"] = health.Check(health_pb2.HealthCheckRequest(service="steward.v1.Control"),
                                     timeout=5).status
        reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        for name, metadata in (("none", ()), ("kill", (bearer(TOKENS[Role.KILL]),))):
            try:
                replies = list(reflect.ServerReflectionInfo(iter([request]), timeout=5,
                                                            metadata=metadata))
                out[name] = sorted(s.name for s in replies[0].list_services_response.service)
            except grpc.RpcError as exc:
                out[name] = exc.code()  # type: ignore[attr-defined]
        unknown = channel.unary_unary("/steward.v1.Control/NoSuchMethod")
        try:
            unknown(b"", timeout=5, metadata=(bearer(TOKENS[Role.ADMIN]),))
        except grpc.RpcError as exc:
            out["unknown"] = exc.code()  # type: ignore[attr-defined]
    return out


async def test_health_and_reflection_when_called_then_health_open_and_reflection_any_token(
    steward_home: Path,
):
    with trio.fail_after(20):
        async with served_daemon(steward_home) as served:
            out = await blocking(health_and_reflection, served.address)
    assert out["health"] == health_pb2.HealthCheckResponse.SERVING
    assert out["none"] is grpc.StatusCode.UNAUTHENTICATED  # reflection (a stream) denied too
    assert out["kill"] == ["grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection",
                           "steward.v1.Control"]
    assert out["unknown"] is grpc.StatusCode.PERMISSION_DENIED


def test_load_tokens_when_none_configured_then_admin_token_file_made_0600_and_reused(
    tmp_path: Path,
):
    first = load_tokens(ControlConfig(), tmp_path)
    path = tmp_path / "control.token"
    token = path.read_text().strip()
    assert path.stat().st_mode & 0o777 == 0o600
    assert first.identify(token) == ("local-admin", Role.ADMIN)
    assert load_tokens(ControlConfig(), tmp_path).identify(token) == ("local-admin", Role.ADMIN)
    assert first.identify("other") is None


def test_load_tokens_when_configured_then_read_from_env_and_missing_env_refused(tmp_path: Path):
    config = ControlConfig(tokens=[ControlTokenConfig(name="ops", role="operator",
                                                      token_env="OPS_TOKEN")])
    table = load_tokens(config, tmp_path, {"OPS_TOKEN": "s3cret"})
    assert table.identify("s3cret") == ("ops", Role.OPERATOR)
    assert not (tmp_path / "control.token").exists()
    with pytest.raises(Exception, match="OPS_TOKEN") as info:
        load_tokens(config, tmp_path, {})
    assert "s3cret" not in str(info.value)


def test_token_table_when_token_unknown_then_none_and_digests_only():
    table = TokenTable([("a", Role.VIEWER, digest("plain-token-value"))])
    assert table.identify("plain-token-value") == ("a", Role.VIEWER)
    assert table.identify("other-token-value") is None
    assert "plain-token-value" not in repr(vars(table))
