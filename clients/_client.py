"""ControlClient: one method per Control RPC, plain Python data back, a deadline on every call.

Replies are dicts in the proto's field names (proto3 JSON with proto names and every field
present); decimals stay strings, enums are short names (`"HALTED"`, `"RUNNING"`). Strategy
parameters come back as a dict and their schema as a parsed JSON schema.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, Final, TypeVar

import grpc
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from protos import control_pb2 as pb
from protos import control_pb2_grpc

from ._exceptions import from_rpc_error
from ._tls import TlsOptions
from ._token import default_address, default_token

DEFAULT_TIMEOUT_S: Final = 5.0
"""Per call. EmergencyStop's steps are bounded at 3 s each on the daemon."""
KILL_TIMEOUT_S: Final = 15.0  # halt, pause, cancel-all and flatten each get up to 3 s

M = TypeVar("M", bound=Message)


class ControlClient:
    """A connection to one daemon's control plane. Use as a context manager (or `close()`).

    `token` defaults to $STEWARD_TOKEN, else the local daemon's token file; `address` to
    $STEWARD_ADDRESS, else 127.0.0.1:50051. `tls`: TlsOptions for a TLS (or, with a client
    certificate, mTLS) channel; None, a plaintext one. Every method raises a
    ControlClientError subclass (see `clients._exceptions`) instead of grpc.RpcError.
    """

    def __init__(self, address: str | None = None, *, token: str | None = None,
                 tls: TlsOptions | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.address = address or default_address()
        self.timeout_s = timeout_s
        token = token if token is not None else default_token()
        self._metadata = () if token is None else (("authorization", f"Bearer {token}"),)
        self._channel = _channel(self.address, tls)
        self._stub = control_pb2_grpc.ControlStub(self._channel)

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    # ---- the RPCs ---------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        reply = self._call(self._stub.GetStatus, pb.GetStatusRequest())
        data = _plain(reply)
        data["trading"]["state"] = _short(data["trading"]["state"], "TRADING_STATE_")
        for actor in data["actors"]:
            actor["state"] = _short(actor["state"], "ACTOR_STATE_")
        return data

    def get_params(self, actor: str) -> dict[str, Any]:
        return _params(self._call(self._stub.GetParams, pb.GetParamsRequest(actor=actor)))

    def update_params(self, actor: str, params: dict[str, Any], *,
                      dry_run: bool = False) -> dict[str, Any]:
        request = pb.UpdateParamsRequest(actor=actor, dry_run=dry_run)
        request.params.update(params)
        return _params(self._call(self._stub.UpdateParams, request))

    def pause_actor(self, name: str) -> dict[str, Any]:
        return _plain(self._call(self._stub.PauseActor, pb.ActorRequest(name=name)))

    def resume_actor(self, name: str) -> dict[str, Any]:
        return _plain(self._call(self._stub.ResumeActor, pb.ActorRequest(name=name)))

    def restart_actor(self, name: str) -> dict[str, Any]:
        return _plain(self._call(self._stub.RestartActor, pb.ActorRequest(name=name)))

    def emergency_stop(self, reason: str, *, flatten: bool = False) -> dict[str, Any]:
        request = pb.EmergencyStopRequest(reason=reason, flatten=flatten)
        return _plain(self._call(self._stub.EmergencyStop, request,
                                 max(self.timeout_s, KILL_TIMEOUT_S)))

    def resume(self, reason: str) -> dict[str, Any]:
        data = _plain(self._call(self._stub.Resume, pb.ResumeRequest(reason=reason)))
        data["state"] = _short(data["state"], "TRADING_STATE_")
        return data

    def watch_events(self, kinds: Iterable[str] = (), *,
                     timeout_s: float | None = None) -> Iterator[dict[str, Any]]:
        """The daemon's events as they happen, one dict each (`detail` parsed; `dropped`:
        events missed just before this one). Runs until the daemon stops the stream, the
        optional `timeout_s` passes, or the caller stops iterating (the stream is cancelled)."""
        stream = self._stub.WatchEvents(pb.WatchRequest(kinds=list(kinds)), timeout=timeout_s,
                                        metadata=self._metadata)
        try:
            for event in stream:
                data = _plain(event)
                data["seq"] = int(data["seq"])
                data["ts_ns"] = int(data["ts_ns"])
                data["dropped"] = int(data["dropped"])
                data["detail"] = json.loads(data.pop("detail_json") or "{}")
                yield data
        except grpc.RpcError as exc:
            if exc.code() is grpc.StatusCode.CANCELLED:
                return
            raise from_rpc_error(exc) from None
        finally:
            stream.cancel()

    # ---- helpers ----------------------------------------------------------------------------

    def _call(self, method: Callable[..., M], request: Message,
              timeout_s: float | None = None) -> M:
        try:
            return method(request, timeout=timeout_s or self.timeout_s, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None


def _channel(address: str, tls: TlsOptions | None) -> grpc.Channel:
    if tls is None:
        return grpc.insecure_channel(address)
    return grpc.secure_channel(address, tls.channel_credentials(),
                               options=tls.channel_options())


def _plain(message: Message) -> dict[str, Any]:
    """What `json_format.MessageToDict(message, preserving_proto_field_name=True,
    always_print_fields_with_no_presence=True)` gives, without its generic machinery: the
    status reply is converted on every poll, and that was most of a GetStatus call's cost.
    Well-known types (Struct, ...) still go through json_format."""
    out: dict[str, Any] = {}
    for field in message.DESCRIPTOR.fields:
        value = getattr(message, field.name)
        if field.is_repeated:
            out[field.name] = [_value(field, item) for item in value]
        elif field.has_presence and not message.HasField(field.name):
            continue
        else:
            out[field.name] = _value(field, value)
    return out


_INT64 = frozenset({
    FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED64,
})


def _value(field: Any, value: Any) -> Any:
    # `field` is a FieldDescriptor; its stubs type the upb variant and the optional
    # message/enum types loosely, and this runs per field of every status reply.
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        if field.message_type.full_name.startswith("google.protobuf."):
            return json_format.MessageToDict(value, preserving_proto_field_name=True)
        return _plain(value)
    if field.type == FieldDescriptor.TYPE_ENUM:
        enum_value = field.enum_type.values_by_number.get(value)
        return value if enum_value is None else enum_value.name
    if field.type in _INT64:
        return str(value)  # as proto3 JSON writes 64-bit integers
    return value


def _short(name: str, prefix: str) -> str:
    return name.removeprefix(prefix)


def _whole(value: Any) -> Any:
    """A Struct's numbers are doubles: `max_orders = 2` comes back 2.0; give it back as 2."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _params(message: pb.Params) -> dict[str, Any]:
    return {
        "actor": message.actor,
        "params": {key: _whole(value) for key, value in
                   json_format.MessageToDict(message.params).items()},
        "schema": json.loads(message.schema_json) if message.schema_json else {},
        "accepted": message.accepted,
        "dry_run": message.dry_run,
    }
