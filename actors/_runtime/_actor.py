"""The actor base class and the loop that runs one actor instance.

An actor owns its state and changes it only in its handlers, one message at a time. Handlers
are found by rule: a coroutine method `on_<snake_case_of_type>(self, message: Type)` handles
`Type`. The table is built once per class, at class definition, so the hot path is one dict
lookup, and a misnamed handler or a mutable message type fails at import, not at 3 a.m.

Message types must be frozen msgspec Structs or frozen dataclasses defined at module level (so
a later process codec can import them), or immutable builtins.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import logging
import re
import typing
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Final

import msgspec
import trio

from ._ask import Ask
from ._exceptions import AskFailedError
from ._mailbox import Mailbox, MailboxPolicy

if TYPE_CHECKING:
    from ._ref import ActorRef
    from ._registry import Registry

logger = logging.getLogger(__name__)

Handler = Callable[[Any, Any], Awaitable[Any]]

_LIFECYCLE_HOOKS: Final = frozenset({"on_start", "on_stop", "on_unhandled"})
_IMMUTABLE_BUILTINS: Final = (str, bytes, int, float, bool, Decimal, tuple, frozenset, type(None))
_CAMEL_BOUNDARY: Final = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_MAX_ERROR_TEXT: Final = 300  # error text goes to status and events; keep it a line, not a dump


class _Stop:
    """The runtime's stop request. Travels on the system lane, ahead of queued messages."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "STOP"


STOP: Final = _Stop()


@dataclass(frozen=True, slots=True)
class ActorContext:
    """What the runtime tells an instance about itself when it starts."""

    name: str
    path: str
    """Position in the supervision tree, e.g. `root/core/risk`."""
    ref: ActorRef
    registry: Registry
    shutdown_s: float
    """How long on_stop may take before the supervisor cuts it off."""


class Actor:
    """Base of every actor. Subclasses add `on_<message>` handlers and may override hooks.

    `__init__` takes configuration and refs and does no I/O; `on_start` does the I/O needed
    before the actor can serve (the supervisor waits for it: ready means ready); `on_stop`
    releases what `on_start` took, and runs on a requested stop and after a crash.

    `mailbox_policy` is the actor's explicit choice of capacity and overflow behaviour.
    """

    mailbox_policy: ClassVar[MailboxPolicy] = MailboxPolicy()
    _handlers: ClassVar[Mapping[type, Handler]] = MappingProxyType({})

    # Class-level defaults so subclasses need not call super().__init__().
    _context: ActorContext | None = None
    _stop_requested: bool = False
    _nursery: trio.Nursery | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._handlers = MappingProxyType(_build_handler_table(cls))

    # ---- what the runtime gives an instance ----------------------------------------------

    @property
    def context(self) -> ActorContext:
        if self._context is None:
            raise RuntimeError(f"{type(self).__name__} has not been started by a supervisor")
        return self._context

    @property
    def name(self) -> str:
        return self.context.name

    @property
    def ref(self) -> ActorRef:
        return self.context.ref

    @property
    def registry(self) -> Registry:
        return self.context.registry

    def stop(self) -> None:
        """Finish after the current message: a normal exit (transient children stay down)."""
        self._stop_requested = True

    def spawn(self, function: Callable[..., Awaitable[object]], *args: object) -> None:
        """Run `function(*args)` beside the handle loop for this instance's life.

        For work a mailbox cannot do: reading a venue stream, a timer. The task is cancelled
        when the instance stops; an exception escaping it is the instance's crash. Let it
        talk to its actor through `self.ref.tell`, so state still changes in one place.
        """
        if self._nursery is None:
            raise RuntimeError(f"{type(self).__name__}.spawn: only while the instance runs")
        self._nursery.start_soon(function, *args)

    # ---- hooks -------------------------------------------------------------------------

    async def on_start(self) -> None:
        """Acquire what the actor needs to serve. Raising here counts as a crash."""

    async def on_stop(self) -> None:
        """Release what on_start acquired. Bounded by the child's shutdown timeout."""

    async def on_unhandled(self, message: object) -> None:
        """A message with no handler arrived by tell. Logged and dropped by default."""
        logger.warning("%s: no handler for %s; dropped", self.name, type(message).__name__)

    @classmethod
    def handled_types(cls) -> frozenset[type]:
        return frozenset(cls._handlers)


async def run_actor(
    actor: Actor,
    context: ActorContext,
    mailbox: Mailbox,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run one instance: on_start, report ready, handle messages until stopped, on_stop.

    Returns normally after a STOP or `actor.stop()`; raises what a handler, a spawned task or
    on_start raised (a crash), after giving on_stop a bounded, shielded chance to clean up.
    So on_stop runs after every instance that entered on_start and must cope with a partial
    start. A forced cancellation by the supervisor skips on_stop: the instance has used up
    its shutdown time already. An on_stop that overruns `shutdown_s` is a crash.
    """
    actor._context = context
    actor._stop_requested = False
    try:
        async with trio.open_nursery() as nursery:
            actor._nursery = nursery
            await actor.on_start()
            task_status.started()
            asked_by_supervisor = await _handle_until_stopped(actor, mailbox)
            nursery.cancel_scope.cancel()  # a normal stop ends the background tasks
    except Exception as group:
        crash = _unwrap(group)
        # Shielded, so a crash still gets its cleanup; but never past a deadline or a cancel
        # that was already upon us (the supervisor gave up waiting: -inf, on_stop's first
        # await is cut off), else the instance outlives the stop the supervisor reports.
        cleanup_deadline = min(trio.current_time() + context.shutdown_s,
                               trio.current_effective_deadline())
        with trio.move_on_at(cleanup_deadline, shield=True):
            try:
                await actor.on_stop()
            except Exception as cleanup_error:
                crash.add_note(f"on_stop also failed: {describe_error(cleanup_error)}")
        raise crash from None
    finally:
        actor._nursery = None
    if asked_by_supervisor:
        await actor.on_stop()  # the supervisor times this stop and cancels past shutdown_s
        return
    # After actor.stop() nobody else is timing this instance: bound on_stop here.
    with trio.move_on_after(context.shutdown_s) as scope:
        await actor.on_stop()
    if scope.cancelled_caught:
        raise TimeoutError(f"{context.path}: on_stop did not finish within "
                           f"{context.shutdown_s:g} s")


def _unwrap(error: Exception) -> Exception:
    """The one exception inside trio's strict groups, so status names the real cause."""
    while isinstance(error, ExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


async def _handle_until_stopped(actor: Actor, mailbox: Mailbox) -> bool:
    """Handle messages until a STOP (returns True) or `actor.stop()` (returns False)."""
    # The hot path: one receive, one dict lookup, one await per message.
    handlers = type(actor)._handlers
    receive = mailbox.receive
    while not actor._stop_requested:
        message = await receive()
        handler = handlers.get(message.__class__)
        if handler is not None:
            await handler(actor, message)
        elif message.__class__ is Ask:
            await _answer(actor, handlers, message)
        elif message is STOP:
            return True
        else:
            await actor.on_unhandled(message)
    return False


async def _answer(actor: Actor, handlers: Mapping[type, Handler], ask: Ask) -> None:
    message_type = type(ask.message).__name__
    handler = handlers.get(ask.message.__class__)
    if handler is None:
        ask.reply.fail(AskFailedError(actor.name, message_type, "UnhandledMessage", "no handler"))
        return
    try:
        result = await handler(actor, ask.message)
    except BaseException as exc:
        # Answer before the crash propagates, so the asker does not wait out its deadline.
        error_type, error_message = describe_error(exc).split(": ", 1)
        ask.reply.fail(AskFailedError(actor.name, message_type, error_type, error_message))
        raise
    ask.reply.set(result)


def describe_error(error: BaseException) -> str:
    """`Type: message`, one line, bounded; what status and events show of an error.

    A group of one exception (trio's strict nurseries make those) is described by its member.
    """
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    text = " ".join(str(error).split())
    if len(text) > _MAX_ERROR_TEXT:
        text = text[: _MAX_ERROR_TEXT - 1] + "…"
    return f"{type(error).__name__}: {text}"


# ---- the handler table ---------------------------------------------------------------------


def handler_name(message_type: type) -> str:
    """`on_order_filled` for `OrderFilled`: the rule that ties handlers to messages."""
    return "on_" + _CAMEL_BOUNDARY.sub("_", message_type.__name__).lower()


def _build_handler_table(cls: type[Actor]) -> dict[type, Handler]:
    table: dict[type, Handler] = {}
    for klass in reversed(cls.__mro__):  # bases first, so overrides win
        for attr, function in vars(klass).items():
            if not attr.startswith("on_") or attr in _LIFECYCLE_HOOKS:
                continue
            message_type = _handled_type(cls, attr, function)
            table[message_type] = function
    return table


def _handled_type(cls: type, attr: str, function: object) -> type:
    where = f"{cls.__qualname__}.{attr}"
    if not inspect.iscoroutinefunction(function):
        raise TypeError(f"{where}: handlers must be `async def`")
    parameters = list(inspect.signature(function).parameters)
    if len(parameters) != 2:
        raise TypeError(f"{where}: a handler takes (self, message)")
    try:
        hints = typing.get_type_hints(function)
    except NameError as exc:
        raise TypeError(f"{where}: cannot resolve annotations ({exc}); define messages at "
                        "module level") from exc
    message_type = hints.get(parameters[1])
    if not isinstance(message_type, type):
        raise TypeError(f"{where}: annotate the message parameter with one message class")
    expected = handler_name(message_type)
    if attr != expected:
        raise TypeError(f"{where} handles {message_type.__name__}; by rule it is named {expected}")
    if not _is_immutable(message_type):
        raise TypeError(f"{where}: {message_type.__name__} is mutable; messages are frozen "
                        "msgspec Structs, frozen dataclasses or immutable builtins")
    return message_type


def _is_immutable(message_type: type) -> bool:
    if issubclass(message_type, msgspec.Struct):
        return bool(message_type.__struct_config__.frozen)
    if dataclasses.is_dataclass(message_type):
        params = getattr(message_type, "__dataclass_params__", None)
        return bool(params is not None and params.frozen)
    return issubclass(message_type, (*_IMMUTABLE_BUILTINS, enum.Enum))
