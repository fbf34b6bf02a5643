"""Who may call what on the control plane: bearer tokens with roles, checked by an interceptor.

Tokens are kept only as sha256 digests and compared with `hmac.compare_digest` against every
known digest (no early exit), so neither memory nor timing gives one away. A token itself never
reaches a log line, an error, a status or the config file: the config names the environment
variable that holds it.

Roles: viewer (status, params, reflection), operator (viewer + update params, pause, resume and
restart actors, resume trading), admin (everything), kill (EmergencyStop only, for remote kill
switches). Reflection accepts any valid token, health none. A missing, duplicated or unknown
token is UNAUTHENTICATED; a known token outside its role, or an unknown method, is
PERMISSION_DENIED. Over mTLS the caller is the token name with the client certificate's CN.
"""

from __future__ import annotations

import contextvars
import enum
import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import grpc

# Under STEWARD_HOME: the admin token made when the config names none (mode 0600). One name,
# shared with the clients, which read it.
from clients._token import TOKEN_FILE as TOKEN_FILE

from ._config import ControlConfig

logger = logging.getLogger("steward.control.auth")

LOCAL_TOKEN_NAME: Final = "local-admin"
BEARER: Final = "Bearer "  # `authorization: Bearer <token>`, as grpcurl's -H sends it
SERVICE: Final = "/steward.v1.Control/"
HEALTH: Final = "/grpc.health.v1.Health/"
REFLECTION_PREFIXES: Final = ("/grpc.reflection.v1alpha.ServerReflection/",
                              "/grpc.reflection.v1.ServerReflection/")


class Role(enum.Enum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"
    KILL = "kill"


_VIEW: Final = frozenset({"GetStatus", "GetParams", "WatchEvents"})
_OPERATE: Final = _VIEW | {"UpdateParams", "PauseActor", "ResumeActor", "RestartActor",
                           "Resume"}
ROLE_METHODS: Final[Mapping[Role, frozenset[str]]] = {
    Role.VIEWER: _VIEW,
    Role.OPERATOR: _OPERATE,
    Role.ADMIN: _OPERATE | {"EmergencyStop"},
    Role.KILL: frozenset({"EmergencyStop"}),
}

_caller: contextvars.ContextVar[str] = contextvars.ContextVar("steward_control_caller",
                                                             default="unknown")


class AuthConfigError(Exception):
    """The configured tokens cannot be used (a missing environment variable, a bad role)."""


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def current_caller() -> str:
    """The token name of the RPC this handler thread is serving (set by the interceptor)."""
    return _caller.get()


class TokenTable:
    """Token digests with their names and roles."""

    def __init__(self, entries: list[tuple[str, Role, bytes]]) -> None:
        self._entries = entries

    def identify(self, token: str) -> tuple[str, Role] | None:
        found: tuple[str, Role] | None = None
        candidate = digest(token)
        for name, role, known in self._entries:
            # Compare with every entry: how long this takes says nothing about which matched.
            if hmac.compare_digest(candidate, known) and found is None:
                found = (name, role)
        return found


def load_tokens(config: ControlConfig, home: Path,
                environ: Mapping[str, str] | None = None) -> TokenTable:
    """The configured tokens (read from their environment variables), or, with none configured,
    the local admin token in STEWARD_HOME/control.token, made on first use."""
    env = os.environ if environ is None else environ
    if not config.tokens:
        return TokenTable([(LOCAL_TOKEN_NAME, Role.ADMIN, digest(local_admin_token(home)))])
    entries = []
    for entry in config.tokens:
        value = env.get(entry.token_env, "")
        if not value:
            raise AuthConfigError(f"control token {entry.name!r}: environment variable "
                                  f"{entry.token_env} is not set")
        entries.append((entry.name, Role(entry.role), digest(value)))
    return TokenTable(entries)


def local_admin_token(home: Path) -> str:
    """Read STEWARD_HOME/control.token, creating it (mode 0600) with a fresh token if absent."""
    path = home / TOKEN_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)
        token = path.read_text().strip()
        if token:
            return token
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    logger.info("made an admin control token in %s", path)
    return token


def _role_allows(role: Role, method: str) -> bool:
    if method.startswith(REFLECTION_PREFIXES):
        return True
    if not method.startswith(SERVICE):
        return False
    return method.removeprefix(SERVICE) in ROLE_METHODS[role]


class TokenInterceptor(grpc.ServerInterceptor):
    """Checks `authorization: Bearer <token>` on every call but health, and records the
    caller's token name for the handler (`current_caller`)."""

    def __init__(self, tokens: TokenTable) -> None:
        self._tokens = tokens

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method = handler_call_details.method
        if method.startswith(HEALTH):
            return continuation(handler_call_details)
        values = [value for key, value in (handler_call_details.invocation_metadata or ())
                  if key == "authorization"]
        if len(values) != 1:
            return _deny(continuation(handler_call_details), grpc.StatusCode.UNAUTHENTICATED,
                         "exactly one authorization header is required")
        value = values[0]
        token = value[len(BEARER):] if isinstance(value, str) and value.startswith(BEARER) else ""
        who = self._tokens.identify(token) if token else None
        if who is None:
            return _deny(continuation(handler_call_details), grpc.StatusCode.UNAUTHENTICATED,
                         "unknown token")
        name, role = who
        if not _role_allows(role, method):
            logger.warning("control: %s (%s) denied %s", name, role.value, method)
            return _deny(continuation(handler_call_details), grpc.StatusCode.PERMISSION_DENIED,
                         f"role {role.value} may not call {method}")
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        behavior = handler.unary_unary

        def as_caller(request: Any, context: grpc.ServicerContext) -> Any:
            _caller.set(caller_identity(name, context))  # the pool thread's: set every call
            return behavior(request, context)

        replaced: grpc.RpcMethodHandler[Any, Any] = handler._replace(  # type: ignore[attr-defined]
            unary_unary=as_caller)
        return replaced


def caller_identity(name: str, context: grpc.ServicerContext) -> str:
    """Who is calling, for the journal: the token name, with the client certificate's CN when
    the connection is mTLS (`ops (CN=desk-1)`)."""
    found = context.auth_context().get("x509_common_name")
    names: list[bytes | str] = [] if found is None else (
        [found] if isinstance(found, bytes) else list(found))
    common = ", ".join(n.decode(errors="replace") if isinstance(n, bytes) else n
                       for n in names)
    return f"{name} (CN={common})" if common else name


def _deny(handler: grpc.RpcMethodHandler[Any, Any] | None, code: grpc.StatusCode,
          details: str) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler of the same kind (unary/stream) as the method's, that aborts."""

    def abort(request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(code, details)

    if handler is None or not (handler.request_streaming or handler.response_streaming):
        return grpc.unary_unary_rpc_method_handler(abort)
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(abort)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(abort)
    return grpc.unary_stream_rpc_method_handler(abort)
