"""What a control call can fail with, chosen by class rather than by parsing messages.

```
ControlClientError              any other failure (the gRPC status code is kept)
├── Unauthenticated             no token, or one the daemon does not know
├── PermissionDenied            the token's role may not do this
├── InvalidArgument             the request is wrong as asked (the message names the field)
├── NotFound                    no such actor or strategy
├── FailedPrecondition          not possible in the daemon's current state
└── Unavailable                 no daemon answers at that address, or it is stopping
    └── DeadlineExceeded        it did not answer within the call's deadline
```
"""

from __future__ import annotations

import grpc


class ControlClientError(Exception):
    """A control call failed; `code` is the gRPC status code, `details` the daemon's words."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


class Unauthenticated(ControlClientError):
    pass


class PermissionDenied(ControlClientError):
    pass


class InvalidArgument(ControlClientError):
    pass


class NotFound(ControlClientError):
    pass


class FailedPrecondition(ControlClientError):
    pass


class Unavailable(ControlClientError):
    pass


class DeadlineExceeded(Unavailable):
    pass


_BY_CODE: dict[grpc.StatusCode, type[ControlClientError]] = {
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
}


def from_rpc_error(error: grpc.RpcError) -> ControlClientError:
    # The errors a call raises are also grpc.Call, which the type stubs cannot express.
    code_of = getattr(error, "code", None)
    details_of = getattr(error, "details", None)
    code = code_of() if callable(code_of) else grpc.StatusCode.UNKNOWN
    details = (details_of() if callable(details_of) else None) or str(error)
    return _BY_CODE.get(code, ControlClientError)(code, details)
