"""What grpcurl does, with no .proto at hand: list services through reflection, then call
GetStatus and EmergencyStop from JSON using only descriptors fetched by reflection."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import trio
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from supervisor._auth import Role
from tests.clients.harness import TOKENS, blocking, served_daemon


class Bearer(grpc.UnaryUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):  # type: ignore[misc]
    """Adds the token to every call, reflection included (what grpcurl's -H does)."""

    def __init__(self, token: str) -> None:
        self._metadata = [("authorization", f"Bearer {token}")]

    def _details(self, details: Any) -> Any:
        return details._replace(metadata=[*(details.metadata or []), *self._metadata])

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any,
                              request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_stream(self, continuation: Callable[..., Any], details: Any,
                                requests: Any) -> Any:
        return continuation(self._details(details), requests)


def call_from_json(channel: grpc.Channel, pool: descriptor_pool.DescriptorPool, method: str,
                   body: str) -> dict[str, Any]:
    service = pool.FindServiceByName("steward.v1.Control")
    descriptor = service.FindMethodByName(method)
    request_class = message_factory.GetMessageClass(descriptor.input_type)
    reply_class = message_factory.GetMessageClass(descriptor.output_type)
    call = channel.unary_unary(f"/{service.full_name}/{method}",
                               request_serializer=lambda m: m.SerializeToString(),
                               response_deserializer=reply_class.FromString)
    reply = call(json_format.Parse(body, request_class()), timeout=15)
    return json_format.MessageToDict(reply)


def reflect_and_call(address: str) -> dict[str, Any]:
    with grpc.insecure_channel(address) as raw:
        channel = grpc.intercept_channel(raw, Bearer(TOKENS[Role.ADMIN]))
        database = ProtoReflectionDescriptorDatabase(channel)
        services = sorted(database.get_services())
        pool = descriptor_pool.DescriptorPool(database)
        status = call_from_json(channel, pool, "GetStatus", "{}")
        stop = call_from_json(channel, pool, "EmergencyStop",
                              '{"reason": "grpcurl-style kill", "flatten": false}')
        after = call_from_json(channel, pool, "GetStatus", "{}")
    return {"services": services, "status": status, "stop": stop, "after": after}


async def test_reflection_only_client_when_listing_and_calling_then_status_and_stop_work(
    steward_home: Path,
):
    with trio.fail_after(20):
        async with served_daemon(steward_home) as served:
            out = await blocking(reflect_and_call, served.address)
    assert "steward.v1.Control" in out["services"]
    assert "grpc.health.v1.Health" in out["services"]
    assert out["status"]["name"] == "paper"
    assert out["status"]["trading"]["state"] == "TRADING_STATE_ACTIVE"
    assert any(a["path"] == "root/core/risk" for a in out["status"]["actors"])
    assert {a["venue"] for a in out["stop"]["accounts"]} == {"paper-a", "paper-b"}
    assert out["after"]["trading"]["state"] == "TRADING_STATE_HALTED"
