"""Aster request authentication as `httpx.Auth` flows (venues.md §1.3, §1.4; STYLE §6.12).

Both flows sign the bytes that go on the wire: they append their parameters to the request's
query string, or to its `application/x-www-form-urlencoded` body when it has one, sign the
result, and append `signature` last. Credentials never reach a repr, a log line or an error
message; errors name environment variables, never their values.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Generator, Mapping
from urllib.parse import urlencode

import httpx
from eth_keys.datatypes import PrivateKey

from .._exceptions import VenueAuthError
from ._signing import (
    MAINNET_CHAIN_ID,
    eip712_signature,
    hmac_payload,
    hmac_signature,
    private_key_of,
)

VENUE = "aster"
API_KEY_HEADER = "X-MBX-APIKEY"
DEFAULT_RECV_WINDOW_MS = 5000  # the venue's default; it must not exceed 60000 (§1.3)
MAX_RECV_WINDOW_MS = 60_000
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

API_KEY_ENV = "ASTER_API_KEY"
API_SECRET_ENV = "ASTER_API_SECRET"
USER_ENV = "ASTER_USER"
SIGNER_ENV = "ASTER_SIGNER"
PRIVATE_KEY_ENV = "ASTER_PRIVATE_KEY"
HMAC_ENVS = (API_KEY_ENV, API_SECRET_ENV)
WALLET_ENVS = (USER_ENV, SIGNER_ENV, PRIVATE_KEY_ENV)


def wall_clock_ms() -> int:
    """Local wall-clock time in ms; the caller adds the server offset (`offset_ms`)."""
    return time.time_ns() // 1_000_000


def wall_clock_us() -> int:
    """Local wall-clock time in µs (V3 nonces)."""
    return time.time_ns() // 1_000


def _is_form(request: httpx.Request) -> bool:
    content_type = str(request.headers.get("Content-Type", ""))
    return content_type.split(";")[0].strip().lower() == FORM_CONTENT_TYPE


def _join(left: str, right: str) -> str:
    return f"{left}&{right}" if left and right else left or right


def _with_params(request: httpx.Request, query: str, body: str | None) -> httpx.Request:
    """A copy of `request` that sends exactly `query` and (if not None) `body`."""
    url = request.url.copy_with(query=query.encode("ascii") if query else None)
    if body is None:
        return httpx.Request(request.method, url, headers=request.headers,
                             stream=request.stream, extensions=request.extensions)
    headers = httpx.Headers(request.headers)
    headers.pop("Content-Length", None)  # recomputed for the new body
    headers["Content-Type"] = FORM_CONTENT_TYPE
    return httpx.Request(request.method, url, headers=headers, content=body.encode("ascii"),
                         extensions=request.extensions)


def _split(request: httpx.Request) -> tuple[str, str | None]:
    """(query as sent, form body as sent or None when the parameters go in the query)."""
    query = request.url.query.decode("ascii")
    content = request.content
    if content and not _is_form(request):
        raise VenueAuthError(VENUE, "signed requests must use a form-urlencoded body")
    if content or (_is_form(request) and request.method != "GET"):
        return query, content.decode("ascii")
    return query, None


class _WalletKey:
    """Holds the parsed API-wallet key; eth-keys' own repr prints the key in hex."""

    __slots__ = ("key",)

    def __init__(self, key: PrivateKey) -> None:
        self.key = key

    def __repr__(self) -> str:
        return "<redacted secp256k1 key>"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("a wallet key cannot be pickled")


class AsterHmacAuth(httpx.Auth):
    """V1 auth: `X-MBX-APIKEY` header plus `recvWindow`, `timestamp` and an HMAC-SHA256
    `signature` over query + body as sent (venues.md §1.3).

    `clock` returns local ms; `offset_ms` (server time − local time, from `GET /fapi/v1/time`)
    is added to it. The parameters go into the form body when the request has one, else into
    the query string; `signature` is always the last parameter.
    """

    requires_request_body = True

    __slots__ = ("_api_key", "_clock", "_secret", "offset_ms", "recv_window_ms")

    def __init__(self, api_key: str, secret: str, *, recv_window_ms: int = DEFAULT_RECV_WINDOW_MS,
                 offset_ms: int = 0, clock: Callable[[], int] = wall_clock_ms) -> None:
        if not api_key or not secret:
            raise VenueAuthError(VENUE, "HMAC auth needs both an API key and a secret")
        if not 0 < recv_window_ms <= MAX_RECV_WINDOW_MS:
            raise ValueError(f"recv_window_ms must be in (0, {MAX_RECV_WINDOW_MS}]")
        self._api_key = api_key
        self._secret = secret
        self._clock = clock
        self.offset_ms = offset_ms
        self.recv_window_ms = recv_window_ms

    def __repr__(self) -> str:
        return (f"AsterHmacAuth(api_key=<redacted>, secret=<redacted>, "
                f"recv_window_ms={self.recv_window_ms}, offset_ms={self.offset_ms})")

    __str__ = __repr__

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("AsterHmacAuth holds credentials and cannot be pickled")

    def sign(self, request: httpx.Request) -> httpx.Request:
        """The request to send: timing and signature added, API-key header set."""
        query, body = _split(request)
        extra = urlencode([("recvWindow", str(self.recv_window_ms)),
                           ("timestamp", str(self._clock() + self.offset_ms))])
        if body is None:
            query = _join(query, extra)
            query = f"{query}&signature={hmac_signature(self._secret, hmac_payload(query, ''))}"
        else:
            body = _join(body, extra)
            body = f"{body}&signature={hmac_signature(self._secret, hmac_payload(query, body))}"
        signed = _with_params(request, query, body)
        signed.headers[API_KEY_HEADER] = self._api_key
        return signed

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        yield self.sign(request)


class AsterWalletAuth(httpx.Auth):
    """V3 API-wallet auth: appends `user`, `signer`, `nonce` (µs) and an EIP-712 `signature`
    over the parameter string as sent (venues.md §1.4, current doc).

    `private_key` is the API wallet's (the `signer`'s) key; it must derive `signer`. Nonces are
    `clock_us() + offset_ms * 1000`, forced strictly increasing per auth object, because the
    venue rejects a reused nonce and, once it holds 100, any nonce below the oldest.
    Parameters go into the form body when the request has one, else into the query string; a
    request with both a query and a body is refused (the doc does not say how to sign it).
    """

    requires_request_body = True

    __slots__ = ("_clock_us", "_key", "_last_nonce", "_lock", "chain_id", "offset_ms", "signer",
                 "user")

    def __init__(self, user: str, signer: str, private_key: str, *, offset_ms: int = 0,
                 clock_us: Callable[[], int] = wall_clock_us,
                 chain_id: int = MAINNET_CHAIN_ID) -> None:
        if not user or not signer or not private_key:
            raise VenueAuthError(VENUE, "wallet auth needs user, signer and private key")
        try:
            key = private_key_of(private_key)
        except Exception:  # its message may quote the key
            raise VenueAuthError(VENUE, "the private key is not a valid secp256k1 key") from None
        derived = key.public_key.to_checksum_address()
        if derived.lower() != signer.lower():
            raise VenueAuthError(VENUE, f"the private key does not belong to signer {signer}")
        self.user = user
        self.signer = signer
        self._key = _WalletKey(key)
        self._clock_us = clock_us
        self.offset_ms = offset_ms
        self.chain_id = chain_id
        self._last_nonce = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"AsterWalletAuth(user={self.user!r}, signer={self.signer!r}, "
                f"private_key=<redacted>, chain_id={self.chain_id}, offset_ms={self.offset_ms})")

    __str__ = __repr__

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("AsterWalletAuth holds credentials and cannot be pickled")

    def next_nonce(self) -> int:
        """A µs nonce, strictly greater than any this object handed out before."""
        with self._lock:
            nonce = max(self._clock_us() + self.offset_ms * 1000, self._last_nonce + 1)
            self._last_nonce = nonce
            return nonce

    def sign(self, request: httpx.Request) -> httpx.Request:
        """The request to send: `user`, `signer`, `nonce` and `signature` appended."""
        query, body = _split(request)
        if query and body:
            raise VenueAuthError(VENUE, "V3 signing takes parameters in the query or the body, "
                                        "not both")
        extra = urlencode([("user", self.user), ("signer", self.signer),
                           ("nonce", str(self.next_nonce()))])
        msg = _join(body if body is not None else query, extra)
        signed_params = f"{msg}&signature={eip712_signature(self._key.key, msg, self.chain_id)}"
        if body is None:
            return _with_params(request, signed_params, None)
        return _with_params(request, "", signed_params)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        yield self.sign(request)


def auth_from_env(environ: Mapping[str, str] | None = None, *, offset_ms: int = 0,
                  chain_id: int = MAINNET_CHAIN_ID) -> AsterHmacAuth | AsterWalletAuth:
    """The auth scheme the environment configures.

    V3 (`ASTER_USER`, `ASTER_SIGNER`, `ASTER_PRIVATE_KEY`) wins when any of its variables is set,
    since Aster no longer issues V1 keys; otherwise V1 (`ASTER_API_KEY`, `ASTER_API_SECRET`).
    Raises `VenueAuthError` naming the missing variables (names only, never values).
    """
    env = os.environ if environ is None else environ

    def missing(names: tuple[str, ...]) -> list[str]:
        return [name for name in names if not env.get(name)]

    if len(missing(WALLET_ENVS)) < len(WALLET_ENVS):
        if absent := missing(WALLET_ENVS):
            raise VenueAuthError(VENUE, f"V3 API-wallet credentials incomplete: set "
                                        f"{', '.join(absent)}")
        return AsterWalletAuth(env[USER_ENV], env[SIGNER_ENV], env[PRIVATE_KEY_ENV],
                               offset_ms=offset_ms, chain_id=chain_id)
    if len(missing(HMAC_ENVS)) < len(HMAC_ENVS):
        if absent := missing(HMAC_ENVS):
            raise VenueAuthError(VENUE, f"V1 HMAC credentials incomplete: set {', '.join(absent)}")
        return AsterHmacAuth(env[API_KEY_ENV], env[API_SECRET_ENV], offset_ms=offset_ms)
    raise VenueAuthError(VENUE, f"no Aster credentials: set {', '.join(WALLET_ENVS)} (V3) "
                                f"or {', '.join(HMAC_ENVS)} (V1)")
