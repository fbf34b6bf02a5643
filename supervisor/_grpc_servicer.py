"""The `steward.v1.Control` servicer: each RPC is one ControlService call, translated.

Runs in the server's pool threads; the work runs in trio through the bridge. Errors map to
status codes: ControlError's code to NOT_FOUND / INVALID_ARGUMENT / FAILED_PRECONDITION, a
rejected UpdateParams to INVALID_ARGUMENT whose details name the field, a stopping daemon to
UNAVAILABLE. Other failures are logged here and answered INTERNAL without detail.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from concurrent import futures
from typing import Final, NoReturn, TypeVar

import grpc

from protos import control_pb2 as pb
from protos import control_pb2_grpc

from ._auth import current_caller
from ._control import ControlError, ControlService
from ._events_bus import TooManyWatchersError
from ._grpc_bridge import BridgeClosedError, TrioBridge
from ._grpc_convert import (
    event_message,
    params_from_struct,
    params_message,
    status_message,
    stop_message,
    trading_status,
)
from ._status_cache import StatusCache

logger = logging.getLogger("steward.control.server")

T = TypeVar("T")

WATCH_POLL_S: Final = 0.25  # how often an idle stream checks that its client is still there

CODES: Final = {
    "not_found": grpc.StatusCode.NOT_FOUND,
    "invalid_argument": grpc.StatusCode.INVALID_ARGUMENT,
    "failed_precondition": grpc.StatusCode.FAILED_PRECONDITION,
}


class ControlServicer(control_pb2_grpc.ControlServicer):
    def __init__(self, service: ControlService, bridge: TrioBridge,
                 cache: StatusCache | None = None) -> None:
        self._service = service
        self._bridge = bridge
        self._cache = cache

    def GetStatus(self, request: pb.GetStatusRequest,
                  context: grpc.ServicerContext) -> pb.Status:
        cached = None if self._cache is None else self._cache.fresh()
        if cached is not None:
            return cached
        return status_message(self._call(context, self._service.status))

    def GetParams(self, request: pb.GetParamsRequest,
                  context: grpc.ServicerContext) -> pb.Params:
        reply = self._call(context, self._service.get_params, request.actor)
        return params_message(request.actor, reply)

    def UpdateParams(self, request: pb.UpdateParamsRequest,
                     context: grpc.ServicerContext) -> pb.Params:
        params = params_from_struct(request.params)
        reply = self._change(context, self._service.update_params, request.actor, params,
                             request.dry_run, current_caller())
        if not reply.accepted:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"{request.actor}: parameters rejected: {reply.error}")
        return params_message(request.actor, reply, request.dry_run)

    def PauseActor(self, request: pb.ActorRequest,
                   context: grpc.ServicerContext) -> pb.ActorReply:
        self._change(context, self._service.pause_actor, request.name, current_caller())
        return pb.ActorReply(name=request.name, outcome="paused")

    def ResumeActor(self, request: pb.ActorRequest,
                    context: grpc.ServicerContext) -> pb.ActorReply:
        self._change(context, self._service.resume_actor, request.name, current_caller())
        return pb.ActorReply(name=request.name, outcome="resumed")

    def RestartActor(self, request: pb.ActorRequest,
                     context: grpc.ServicerContext) -> pb.ActorReply:
        self._change(context, self._service.restart_actor, request.name, current_caller())
        return pb.ActorReply(name=request.name, outcome="restarted")

    def EmergencyStop(self, request: pb.EmergencyStopRequest,
                      context: grpc.ServicerContext) -> pb.EmergencyStopReply:
        if not request.reason.strip():
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "reason: a reason is required")
        report = self._change(context, self._service.emergency_stop, request.reason,
                              request.flatten, current_caller())
        return stop_message(report)

    def Resume(self, request: pb.ResumeRequest,
               context: grpc.ServicerContext) -> pb.TradingStatus:
        if not request.reason.strip():
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "reason: a reason is required")
        changed = self._change(context, self._service.resume, request.reason,
                               current_caller())
        return trading_status(changed)

    def WatchEvents(self, request: pb.WatchRequest,
                    context: grpc.ServicerContext) -> Iterator[pb.Event]:
        # Runs in a pool thread for the stream's life, never in trio: the bus hands events
        # over through the watcher's own bounded buffer, so a slow reader only loses events.
        bus = self._service.events
        if bus is None:
            _abort(context, grpc.StatusCode.UNIMPLEMENTED, "this daemon publishes no events")
        try:
            watcher = bus.subscribe(request.kinds)
        except TooManyWatchersError as exc:
            _abort(context, grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        context.add_callback(watcher.close)  # the client went away: stop buffering for it
        try:
            while context.is_active():
                delivery = watcher.get(WATCH_POLL_S)
                if delivery is not None:
                    yield event_message(delivery)
                elif watcher.closed:
                    return  # the daemon is stopping: the stream ends cleanly
        finally:
            watcher.close()

    def _change(self, context: grpc.ServicerContext, afn: Callable[..., Awaitable[T]],
                *args: object) -> T:
        """A call that may change the daemon: the cached status is stale from its start to
        its end (a refresh racing with it is refused by generation)."""
        if self._cache is not None:
            self._cache.invalidate()
        try:
            return self._call(context, afn, *args)
        finally:
            if self._cache is not None:
                self._cache.invalidate()

    def _call(self, context: grpc.ServicerContext, afn: Callable[..., Awaitable[T]],
              *args: object) -> T:
        try:
            return self._bridge.run(afn, *args, timeout_s=context.time_remaining())
        except ControlError as exc:
            _abort(context, CODES.get(exc.code, grpc.StatusCode.FAILED_PRECONDITION), str(exc))
        except BridgeClosedError as exc:
            _abort(context, grpc.StatusCode.UNAVAILABLE, str(exc))
        except futures.TimeoutError:
            _abort(context, grpc.StatusCode.DEADLINE_EXCEEDED, "the daemon did not answer in time")
        except Exception:
            logger.exception("control call %s failed", getattr(afn, "__name__", afn))
            _abort(context, grpc.StatusCode.INTERNAL, "internal error (see the daemon's log)")


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, details: str) -> NoReturn:
    context.abort(code, details)
    raise AssertionError("context.abort returned")  # it raises
