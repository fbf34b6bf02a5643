"""The control server's edges: refusing what it cannot serve safely, and stopping without a
hang while a call is stuck in trio. Real gRPC on loopback, real clock, bounded."""

from __future__ import annotations

import time
from typing import cast

import grpc
import pytest
import trio

from protos import control_pb2 as pb
from protos import control_pb2_grpc
from supervisor._auth import Role
from supervisor._control import ControlService
from supervisor._grpc import STOP_GRACE_S, ControlServerError, check_bind, serve_control
from tests.clients.harness import TOKENS, blocking, token_table


class StuckService:
    """A ControlService whose status never answers."""

    def __init__(self) -> None:
        self.entered = trio.Event()

    def attach_background(self, nursery: trio.Nursery) -> None:
        pass

    async def status(self) -> object:
        self.entered.set()
        await trio.sleep_forever()
        raise AssertionError("unreachable")


@pytest.mark.parametrize("bind", ["0.0.0.0:50051", "10.1.2.3:1", "example.com:50051", "[::]:1"])
def test_check_bind_when_not_loopback_then_refused(bind: str):
    with pytest.raises(ControlServerError, match="TLS"):
        check_bind(bind)


@pytest.mark.parametrize("bind", ["127.0.0.1:50051", "localhost:0", "[::1]:50051"])
def test_check_bind_when_loopback_then_allowed(bind: str):
    check_bind(bind)


async def test_serve_when_port_taken_then_second_server_fails_loudly():
    service = cast(ControlService, StuckService())
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            first = await nursery.start(serve_control, service, "127.0.0.1:0", token_table())
            with pytest.raises(ControlServerError, match="cannot listen"):
                await nursery.start(serve_control, service, f"127.0.0.1:{first.port}",
                                    token_table())
            await first.stop()


def stuck_call(port: int) -> grpc.StatusCode:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            control_pb2_grpc.ControlStub(channel).GetStatus(
                pb.GetStatusRequest(), timeout=20,
                metadata=(("authorization", f"Bearer {TOKENS[Role.VIEWER]}"),))
        except grpc.RpcError as exc:
            return exc.code()  # type: ignore[attr-defined, no-any-return]
    return grpc.StatusCode.OK


async def test_stop_when_call_stuck_in_trio_then_stops_within_grace_and_call_fails():
    stuck = StuckService()
    codes: list[grpc.StatusCode] = []
    with trio.fail_after(15):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(serve_control, cast(ControlService, stuck),
                                         "127.0.0.1:0", token_table())

            async def call() -> None:
                codes.append(await blocking(stuck_call, server.port))

            nursery.start_soon(call)
            await stuck.entered.wait()
            started = time.monotonic()
            await server.stop()
            stopped_s = time.monotonic() - started
    assert stopped_s < STOP_GRACE_S + 1
    assert codes and codes[0] is not grpc.StatusCode.OK
