"""`BackpackAuth`: ED25519 request signing as an `httpx.Auth` (STYLE §6.12, venues.md §2.2).

The signing string is built from what the request actually carries: the JSON body when there is
one (a JSON array is a batch), otherwise the query string. JSON numbers are signed as their token
text, so `"price": "1.50"` and `"clientId": 42` are signed exactly as sent. Key material lives in a
`_Credentials` holder whose repr is redacted; errors never include keys or signatures.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Generator, Mapping
from typing import Any

import httpx
from nacl.signing import SigningKey

from ._signing import (
    DEFAULT_WINDOW_MS,
    MAX_WINDOW_MS,
    batch_signing_string,
    sign_with,
    signing_key,
    signing_string,
)

INSTRUCTION_EXTENSION = "backpack_instruction"
"""Request extension that names the instruction explicitly, e.g.
`client.post(url, json=..., extensions={INSTRUCTION_EXTENSION: "orderExecute"})`."""

ENDPOINT_INSTRUCTIONS: Mapping[tuple[str, str], str] = {
    ("GET", "/api/v1/account"): "accountQuery",
    ("PATCH", "/api/v1/account"): "accountUpdate",
    ("GET", "/api/v1/capital"): "balanceQuery",
    ("GET", "/api/v1/capital/collateral"): "collateralQuery",
    ("POST", "/api/v1/order"): "orderExecute",
    ("POST", "/api/v1/orders"): "orderExecute",  # batch: a JSON array of orders
    ("DELETE", "/api/v1/order"): "orderCancel",
    ("DELETE", "/api/v1/orders"): "orderCancelAll",
    ("GET", "/api/v1/order"): "orderQuery",
    ("GET", "/api/v1/orders"): "orderQueryAll",
    ("GET", "/api/v1/position"): "positionQuery",
    ("GET", "/wapi/v1/history/fills"): "fillHistoryQueryAll",
    ("GET", "/wapi/v1/history/orders"): "orderHistoryQueryAll",
    ("GET", "/wapi/v1/history/funding"): "fundingHistoryQueryAll",
}
"""(method, path) → instruction for the endpoints whose instruction venues.md §2.3 names."""


def default_instruction_for(request: httpx.Request) -> str:
    """The instruction for a request: the explicit extension, else `ENDPOINT_INSTRUCTIONS`.

    Raises ValueError for an endpoint with no known instruction.
    """
    explicit = request.extensions.get(INSTRUCTION_EXTENSION)
    if explicit is not None:
        return str(explicit)
    try:
        return ENDPOINT_INSTRUCTIONS[(request.method, request.url.path)]
    except KeyError:
        raise ValueError(
            f"no Backpack instruction known for {request.method} {request.url.path}; "
            f"pass extensions={{{INSTRUCTION_EXTENSION!r}: ...}}"
        ) from None


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class _Credentials:
    """Holds the key pair; never shows it."""

    __slots__ = ("api_key", "key")

    def __init__(self, api_key: str, key: SigningKey) -> None:
        self.api_key = api_key
        self.key = key

    def __repr__(self) -> str:
        return "_Credentials(<redacted>)"

    def __reduce__(self) -> Any:
        raise TypeError("Backpack credentials cannot be pickled")


class BackpackAuth(httpx.Auth):
    """Signs each request with ED25519 and sets X-API-Key, X-Signature, X-Timestamp, X-Window.

    `api_key_b64` must be the public key of `secret_seed_b64` (checked: ValueError otherwise).
    `instruction_for` maps a request to its instruction (default: the request's
    `INSTRUCTION_EXTENSION`, else the documented endpoint table). `clock` returns wall-clock ms
    and is where a measured server-time offset belongs. Raises ValueError/TypeError while
    signing a request it cannot sign exactly (unknown endpoint, non-JSON body, float values
    other than JSON tokens, nested values, both a body and a query string).
    """

    requires_request_body = True

    def __init__(
        self,
        api_key_b64: str,
        secret_seed_b64: str,
        *,
        instruction_for: Callable[[httpx.Request], str] = default_instruction_for,
        window_ms: int = DEFAULT_WINDOW_MS,
        clock: Callable[[], int] = wall_clock_ms,
    ) -> None:
        if isinstance(window_ms, bool) or not 0 < window_ms <= MAX_WINDOW_MS:
            raise ValueError(f"window_ms must be in 1..{MAX_WINDOW_MS}, got {window_ms!r}")
        key = signing_key(secret_seed_b64)
        derived = base64.b64encode(bytes(key.verify_key)).decode("ascii")
        if api_key_b64 != derived:
            raise ValueError("Backpack API key is not the public key of the given secret")
        self._credentials = _Credentials(derived, key)
        self._instruction_for = instruction_for
        self.window_ms = window_ms
        self._clock = clock

    def __repr__(self) -> str:
        return f"BackpackAuth(api_key=<redacted>, window_ms={self.window_ms})"

    def signing_string_for(self, request: httpx.Request, timestamp_ms: int) -> str:
        """The exact string `auth_flow` signs for `request` at `timestamp_ms`."""
        instruction = self._instruction_for(request)
        body = _json_body(request)
        if body is not None and request.url.query:
            raise ValueError("cannot sign a request with both a JSON body and a query string")
        if isinstance(body, list):
            return batch_signing_string(instruction, body, timestamp_ms, self.window_ms)
        if isinstance(body, dict):
            return signing_string(instruction, body, timestamp_ms, self.window_ms)
        return signing_string(
            instruction, request.url.params.multi_items(), timestamp_ms, self.window_ms
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        timestamp_ms = self._clock()
        message = self.signing_string_for(request, timestamp_ms)
        request.headers["X-API-Key"] = self._credentials.api_key
        request.headers["X-Signature"] = sign_with(self._credentials.key, message)
        request.headers["X-Timestamp"] = str(timestamp_ms)
        request.headers["X-Window"] = str(self.window_ms)
        yield request

    def subscribe_signature(self) -> list[str]:
        """The `signature` field of a private WebSocket SUBSCRIBE (venues.md §2.5):
        `[<b64 verifying key>, <b64 signature>, <timestamp ms>, <window ms>]`, all strings as
        the official client sends them, signed over `instruction=subscribe&timestamp=…&window=…`
        at this auth's clock (so a measured server-time offset applies here too).

        The list holds a live signature: send it, never log it.
        """
        timestamp_ms = self._clock()
        message = signing_string("subscribe", {}, timestamp_ms, self.window_ms)
        return [self._credentials.api_key, sign_with(self._credentials.key, message),
                str(timestamp_ms), str(self.window_ms)]


def _json_body(request: httpx.Request) -> dict[str, object] | list[dict[str, object]] | None:
    content = request.content
    if not content:
        return None
    try:
        # Number tokens stay as their text, so "1.50" or 42 is signed exactly as it was sent.
        body = json.loads(content, parse_float=str, parse_int=str)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("Backpack request bodies must be JSON to be signed") from None
    if isinstance(body, dict):
        return body
    if isinstance(body, list) and all(isinstance(order, dict) for order in body):
        return body
    raise ValueError("Backpack request body must be a JSON object or an array of objects")
