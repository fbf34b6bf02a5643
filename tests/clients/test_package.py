"""The clients package's front door and its exception tree."""

from __future__ import annotations

import grpc
import pytest

import clients
from clients._exceptions import from_rpc_error
from tests.test_exports import public_names


def test_all_when_read_then_sorted_and_matches_public_names():
    exported = list(clients.__all__)
    assert exported == sorted(exported, key=lambda n: (not n.isupper(), n))
    assert set(exported) == public_names(clients)


class FakeError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return "words"


@pytest.mark.parametrize(("code", "kind"), [
    (grpc.StatusCode.UNAUTHENTICATED, clients.Unauthenticated),
    (grpc.StatusCode.PERMISSION_DENIED, clients.PermissionDenied),
    (grpc.StatusCode.INVALID_ARGUMENT, clients.InvalidArgument),
    (grpc.StatusCode.NOT_FOUND, clients.NotFound),
    (grpc.StatusCode.FAILED_PRECONDITION, clients.FailedPrecondition),
    (grpc.StatusCode.UNAVAILABLE, clients.Unavailable),
    (grpc.StatusCode.DEADLINE_EXCEEDED, clients.DeadlineExceeded),
    (grpc.StatusCode.INTERNAL, clients.ControlClientError),
])
def test_from_rpc_error_when_code_then_its_class(code: grpc.StatusCode, kind: type):
    error = from_rpc_error(FakeError(code))
    assert type(error) is kind and error.code is code and error.details == "words"
    assert isinstance(error, clients.ControlClientError)
