"""Backpack HTTP responses → typed venue errors (venues.md §2.4, §4; `exchanges/_exceptions.py`).

An error body is `{"code": "<ApiErrorCode>", "message": "..."}` [BPO]. The HTTP status decides
first, because it says what the venue did with the request:

HTTP status:
- 2xx: success → None, 202 on cancel-all included ("accepted, not yet executed", §2.4); only a
  body that is nothing but `{code, message}` is mapped by code.
- 429: rate limited (no numbers are published, §2.4) → `RateLimitedError` (`retry_after_s`).
- 418: not documented for Backpack; read as on Aster, an IP ban → `RateLimitedError(ip_banned)`.
- 503: "System under maintenance." on order POST (§2.4, §4.9) → `OrderOutcomeUnknownError` on
  order placement, else `VenueTransportError`. Other 5xx → `VenueTransportError`.
- 401: "Request has expired" when the clock is off (§4.1) → TIMESTAMP; otherwise (no code)
  `VenueAuthError`.
- other 4xx → by code [§2.4]:

    INVALID_SIGNATURE, UNAUTHORIZED        → VenueAuthError (TIMESTAMP for "Request has expired")
    TOO_MANY_REQUESTS                      → RateLimitedError
    INSUFFICIENT_FUNDS, INSUFFICIENT_MARGIN → INSUFFICIENT_MARGIN
    INVALID_ORDER                          → DUPLICATE_CLIENT_ID for "Order with client ID
                                             already exists" (§2.4, §4.7), else INVALID
    RESOURCE_NOT_FOUND                     → UNKNOWN_ORDER when the request names an order
                                             (`client_id`, not a placement), else INVALID
    INVALID_PRICE, INVALID_QUANTITY        → INVALID (see below)
    INVALID_CLIENT_REQUEST, MAINTENANCE,   → INVALID, code kept
    TRADING_PAUSED, anything else

Traps: INVALID_ORDER, INVALID_PRICE and INVALID_QUANTITY each cover several causes (tick, step,
min/max, min notional, post-only) and the doc gives no message texts to tell them apart, so they
stay INVALID with the venue's words and code rather than a guessed reason. The post-only
rejection text is unconfirmed (§4.4). Messages never include the signature or API key headers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from .._exceptions import (
    OrderOutcomeUnknownError,
    RejectReason,
    VenueAuthError,
    VenueError,
    VenueRejectedError,
    VenueTransportError,
)
from .._http_errors import describe, may_be_error_object, venue_words
from .._rate_limits import RateLimitedError, retry_after_s

VENUE = "backpack"

_REASONS: Mapping[str, RejectReason] = {
    "INSUFFICIENT_FUNDS": RejectReason.INSUFFICIENT_MARGIN,
    "INSUFFICIENT_MARGIN": RejectReason.INSUFFICIENT_MARGIN,
}
_AUTH_CODES = frozenset({"INVALID_SIGNATURE", "UNAUTHORIZED"})
_RATE_LIMIT_CODES = frozenset({"TOO_MANY_REQUESTS"})
_EXPIRED_WORDS = "request has expired"  # §4.1: 401 when the clock is off
_DUPLICATE_WORDS = "order with client id already exists"  # §2.4, §4.7 (ccxt)

_SECRET = re.compile(r"(x-signature|x-api-key|signature)(\"?\s*[=:]\s*\"?)[^&\s\"'<>,;]+", re.I)


def error_from_response(
    status_code: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    client_id: str | None,
    is_order_placement: bool,
) -> VenueError | None:
    """The error a Backpack response stands for, or None when it is a success.

    `client_id` is the client id of the order the request concerns, if any (pass it for cancels
    and order queries too: it is what turns RESOURCE_NOT_FOUND into UNKNOWN_ORDER);
    `is_order_placement` says whether the request could have created an order. Returns rather
    than raises so the caller can `raise ... from` its own context.
    """
    if 200 <= status_code < 300 and not may_be_error_object(body):
        return None  # a list, a number: never `{code, message}`; answers are not parsed twice
    code, words = _parse(body)
    if 200 <= status_code < 300:
        if code is None or not _is_error_object(body):
            return None
        return _from_code(code, words, headers, client_id, is_order_placement)
    if status_code in (418, 429):
        if status_code == 418:
            message = f"HTTP 418: IP banned: {words}"
        else:
            message = f"HTTP 429: rate limited, back off: {words}"
        return RateLimitedError(VENUE, message, retry_after_s=retry_after_s(headers),
                                ip_banned=status_code == 418, code=code or "")
    if status_code == 503:
        described = describe(code, words)
        # §4.9: a 503 on order POST ("System under maintenance.") does not prove the order absent.
        if is_order_placement:
            return OrderOutcomeUnknownError(VENUE, client_id or "", f"HTTP 503: {described}")
        return VenueTransportError(VENUE, f"HTTP 503: {described}")
    if status_code >= 500:
        return VenueTransportError(VENUE, f"HTTP {status_code}: {describe(code, words)}")
    if code is None:
        if _EXPIRED_WORDS in words.lower():  # §4.1: plain 401 when the clock is off
            return VenueRejectedError(VENUE, RejectReason.TIMESTAMP, f"HTTP {status_code}: {words}")
        if status_code == 401:
            return VenueAuthError(VENUE, f"HTTP 401: {words}")
        return VenueRejectedError(VENUE, RejectReason.INVALID, f"HTTP {status_code}: {words}")
    return _from_code(code, words, headers, client_id, is_order_placement)


def _from_code(code: str, words: str, headers: Mapping[str, str], client_id: str | None,
               is_order_placement: bool) -> VenueError:
    if _EXPIRED_WORDS in words.lower():
        return VenueRejectedError(VENUE, RejectReason.TIMESTAMP, words, code)
    if code in _AUTH_CODES:
        return VenueAuthError(VENUE, f"{words} (code {code})")
    if code in _RATE_LIMIT_CODES:
        return RateLimitedError(VENUE, words, retry_after_s=retry_after_s(headers), code=code)
    reason = _reason(code, words, client_id, is_order_placement)
    return VenueRejectedError(VENUE, reason, words, code)


def _reason(code: str, words: str, client_id: str | None, is_order_placement: bool) -> RejectReason:
    if code == "INVALID_ORDER" and _DUPLICATE_WORDS in words.lower():
        return RejectReason.DUPLICATE_CLIENT_ID
    if code == "RESOURCE_NOT_FOUND":
        # The function does not see the path: an order named by the caller is what was not found.
        if client_id is not None and not is_order_placement:
            return RejectReason.UNKNOWN_ORDER
        return RejectReason.INVALID
    return _REASONS.get(code, RejectReason.INVALID)


def _is_error_object(body: bytes) -> bool:
    # An order or market object never has only these keys; a 2xx error body would.
    decoded = json.loads(body)
    return isinstance(decoded, dict) and set(decoded) <= {"code", "message"}


def _parse(body: bytes) -> tuple[str | None, str]:
    """(code, the venue's words): the JSON `code`/`message` when present, else the raw text."""
    try:
        decoded = json.loads(body)
    except ValueError:  # includes UnicodeDecodeError: HTML pages, empty bodies
        return None, venue_words(body.decode("utf-8", "replace"), _SECRET)
    if isinstance(decoded, dict):
        code = decoded.get("code")
        message = decoded.get("message")
        if isinstance(code, str) and code:
            return code, venue_words(message if isinstance(message, str) else "", _SECRET)
    return None, venue_words(body.decode("utf-8", "replace"), _SECRET)
