"""Backpack ED25519 signing: pure functions, no I/O (venues.md §2.2, §3.5).

The signing string is `instruction=<name>`, then the request's keys sorted as `&k=v`, then
`&timestamp=<ms>&window=<ms>`. A batch repeats `instruction=orderExecute` before each order and
appends timestamp and window once. Values are rendered exactly as sent: booleans `true`/`false`,
strings unquoted, integers in plain decimal. Floats and `Decimal`s are refused, because their
text is not guaranteed to equal the text in the body; format them to the string you send.

Errors name what is wrong, never the key material.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping

from nacl.signing import SigningKey

DEFAULT_WINDOW_MS = 5000
MAX_WINDOW_MS = 60000
BATCH_INSTRUCTION = "orderExecute"

Value = str | int | bool
"""What a signed value may be: str (sent as is, e.g. "1.50"), int (e.g. clientId), bool."""


def render_value(key: str, value: object) -> str:
    """The text a value contributes to the signing string.

    Raises TypeError for floats, Decimals, None and containers (their rendering is ambiguous).
    """
    # bool before int: bool is an int subclass, and str(True) == "True" breaks the signature.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    raise TypeError(
        f"cannot sign {key!r}: {type(value).__name__} values are not supported; "
        "send and sign str (decimals as their exact string), int or bool"
    )


def _pairs(params: Iterable[tuple[str, object]]) -> str:
    # sorted() on (key, index) keeps repeated keys in their given order.
    items = sorted(
        ((k, i, v) for i, (k, v) in enumerate(params)), key=lambda t: (t[0], t[1])
    )
    return "".join(f"&{k}={render_value(k, v)}" for k, _, v in items)


def _items(params: Mapping[str, object] | Iterable[tuple[str, object]]) -> list[tuple[str, object]]:
    if isinstance(params, Mapping):
        return list(params.items())
    return list(params)


def _suffix(timestamp_ms: int, window_ms: int) -> str:
    if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, int) or timestamp_ms < 0:
        raise ValueError(f"timestamp_ms must be a non-negative int of ms, got {timestamp_ms!r}")
    if isinstance(window_ms, bool) or not isinstance(window_ms, int):
        raise ValueError(f"window_ms must be an int, got {window_ms!r}")
    if not 0 < window_ms <= MAX_WINDOW_MS:
        raise ValueError(f"window_ms must be in 1..{MAX_WINDOW_MS}, got {window_ms}")
    return f"&timestamp={timestamp_ms}&window={window_ms}"


def signing_string(
    instruction: str,
    params: Mapping[str, object] | Iterable[tuple[str, object]],
    timestamp_ms: int,
    window_ms: int = DEFAULT_WINDOW_MS,
) -> str:
    """`instruction=<instruction>[&k=v sorted by key]&timestamp=<ms>&window=<ms>`.

    `params` are the body keys (or query keys), as a mapping or as (key, value) pairs; repeated
    keys keep their relative order. Sorting is by code point, which is alphabetical for the
    venue's camelCase keys.
    """
    if not instruction:
        raise ValueError("instruction must not be empty")
    return f"instruction={instruction}{_pairs(_items(params))}{_suffix(timestamp_ms, window_ms)}"


def batch_signing_string(
    instruction: str,
    orders: Iterable[Mapping[str, object]],
    timestamp_ms: int,
    window_ms: int = DEFAULT_WINDOW_MS,
) -> str:
    """The batch rule: `instruction=<i>&<order 1 sorted>&instruction=<i>&<order 2 sorted>...`,
    then timestamp and window once. Batch orders go to POST /api/v1/orders with `orderExecute`.
    """
    if not instruction:
        raise ValueError("instruction must not be empty")
    parts = [f"instruction={instruction}{_pairs(_items(order))}" for order in orders]
    if not parts:
        raise ValueError("a batch needs at least one order")
    return "&".join(parts) + _suffix(timestamp_ms, window_ms)


def _seed(private_key_seed_b64: str) -> bytes:
    try:
        seed = base64.b64decode(private_key_seed_b64, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise ValueError("Backpack secret is not valid base64") from None
    if len(seed) != 32:
        # A 64-byte seed‖public key (accepted by ccxt) is refused: the docs print a 32-byte seed.
        raise ValueError(f"Backpack secret must decode to a 32-byte ED25519 seed, got {len(seed)}")
    return seed


def signing_key(private_key_seed_b64: str) -> SigningKey:
    """The ED25519 signing key for a base64 32-byte seed. Raises ValueError (without the key)."""
    return SigningKey(_seed(private_key_seed_b64))


def public_key_b64(private_key_seed_b64: str) -> str:
    """The API key (base64 ED25519 public key) that belongs to a base64 seed."""
    return base64.b64encode(bytes(signing_key(private_key_seed_b64).verify_key)).decode("ascii")


def sign_with(key: SigningKey, message: str | bytes) -> str:
    """Base64 of the 64-byte ED25519 signature of `message` (str is UTF-8 encoded)."""
    data = message.encode("utf-8") if isinstance(message, str) else message
    return base64.b64encode(key.sign(data).signature).decode("ascii")


def sign(private_key_seed_b64: str, message: str | bytes) -> str:
    """Base64 of the ED25519 signature of `message` with the base64 32-byte seed."""
    return sign_with(signing_key(private_key_seed_b64), message)
