"""Aster HTTP responses → typed venue errors (venues.md §1.9, §4; `exchanges/_exceptions.py`).

Aster is a Binance clone: an error body is `{"code": -1121, "msg": "Invalid symbol."}`. The
HTTP status decides first, because it says what the venue did with the request:

HTTP status (venues.md §1.9 unless noted):
- 2xx: success → None; a `{code<0, msg}` body is still mapped by code (batch items, Binance).
- 429: a rate limit was broken → `RateLimitedError` with `retry_after_s` from `Retry-After`.
- 418: IP auto-banned for ignoring 429s, 2 min to 3 days → `RateLimitedError(ip_banned=True)`.
- 503: execution status UNKNOWN (§1.9, §4.9) → `OrderOutcomeUnknownError` on order placement,
  else `VenueTransportError`. Other 5xx → `VenueTransportError`.
- 401 (not in the doc; plain HTTP meaning) → `VenueAuthError`, unless the code maps below.
- 403: WAF block → `VenueRejectedError(INVALID)`, unless the code maps below.
- other 4xx → by code:

    code   doc name / words [source]                                   → error or reason
    -1003  too many requests [§1.9]                                    → RateLimitedError
    -1021  "Timestamp for this request is outside of the recvWindow."  → TIMESTAMP
           [§1.9, §4.1]
    -1022  invalid signature [§1.9]                                    → VenueAuthError
    -1111  BAD_PRECISION "Precision is over the maximum defined for    → QTY_STEP (see below)
           this asset." [§1.9, §4.2]
    -1121  "Invalid symbol." [§1.9]                                    → UNKNOWN_SYMBOL
    -1125  invalid listenKey [§1.9]                                    → INVALID (re-create key)
    -2010  NEW_ORDER_REJECTED [§1.9]                                   → INVALID
    -2011  CANCEL_REJECTED, "Unknown order sent." [§1.9]               → UNKNOWN_ORDER for that
                                                                         text, else INVALID
    -2013  "Order does not exist." [§1.9]                              → UNKNOWN_ORDER
    -2019  margin insufficient [§1.9]                                  → INSUFFICIENT_MARGIN
    -2021  order would immediately trigger [§1.9]                      → INVALID
    -2022  ReduceOnly rejected [§1.9]                                  → REDUCE_ONLY_WOULD_INCREASE
    -4014  price not a tick multiple [§1.9]                            → PRICE_TICK
    -4023  qty not a step multiple [§1.9]                              → QTY_STEP
    -4164  MIN_NOTIONAL [§1.9, §4.3]                                   → MIN_NOTIONAL
    -5022  Binance GTX would take; in no Aster doc [§1.9, §4.4]        → POST_ONLY_WOULD_TAKE
    -5060  PERCENT_PRICE limit; ccxt only [§1.9, CX-AS]                → INVALID
    -5076  "Total order value should be more than 5 USDT"; ccxt only   → MIN_NOTIONAL
           [§1.9, §4.3]
    other                                                              → INVALID, code kept

-1111 trap: the doc's words do not say whether the price or the quantity had too many decimals,
and both carry their own "not a multiple" codes (-4014, -4023). We say QTY_STEP because rounding
the quantity down to `stepSize` is the usual fix in the reports (§4.2); whichever it is, the
remedy is the same (round price to tick and quantity to step), and `code` stays "-1111".

Error messages carry the venue's code and words, truncated, with anything that looks like a
signature or API key masked: an HTML error page may echo the signed URL.
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
from ._auth import VENUE

_REASONS: Mapping[int, RejectReason] = {
    -1021: RejectReason.TIMESTAMP,
    -1111: RejectReason.QTY_STEP,  # ambiguous: see the module docstring
    -1121: RejectReason.UNKNOWN_SYMBOL,
    -1125: RejectReason.INVALID,
    -2010: RejectReason.INVALID,
    -2013: RejectReason.UNKNOWN_ORDER,
    -2019: RejectReason.INSUFFICIENT_MARGIN,
    -2021: RejectReason.INVALID,
    -2022: RejectReason.REDUCE_ONLY_WOULD_INCREASE,
    -4014: RejectReason.PRICE_TICK,
    -4023: RejectReason.QTY_STEP,
    -4164: RejectReason.MIN_NOTIONAL,
    -5022: RejectReason.POST_ONLY_WOULD_TAKE,
    -5060: RejectReason.INVALID,
    -5076: RejectReason.MIN_NOTIONAL,
}
_RATE_LIMIT_CODES = frozenset({-1003})
_AUTH_CODES = frozenset({-1022})
_CANCEL_REJECTED = -2011
_UNKNOWN_ORDER_WORDS = "unknown order"  # the doc's -2011 text: "Unknown order sent."
_NEW_ORDER_REJECTED = -2010
_DUPLICATE_WORDS = "duplicate"  # Binance's -2010 words for a reused id: "Duplicate order sent."

_SECRET = re.compile(r"(signature|x-mbx-apikey|apikey|api_key)(\s*[=:]\s*)[^&\s\"'<>,;]+", re.I)
_WEIGHT_PREFIXES = ("x-mbx-used-weight", "x-mbx-order-count")


def error_from_response(
    status_code: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    client_id: str | None,
    is_order_placement: bool,
) -> VenueError | None:
    """The error an Aster response stands for, or None when it is a success.

    `client_id` is the client order id the request concerns, if any; `is_order_placement` says
    whether the request could have created an order (a 503 then leaves its outcome unknown).
    Returns rather than raises so the caller can `raise ... from` its own context.
    """
    if 200 <= status_code < 300 and not may_be_error_object(body):
        return None  # a list, a number: never `{code, msg}`; large answers are not parsed twice
    code, words = _parse(body)
    if 200 <= status_code < 300:
        if code is None or code >= 0:  # Binance-style `{"code": 200, "msg": "success"}` is fine
            return None
        return _from_code(code, words, headers)
    if status_code in (418, 429):
        return _rate_limited(status_code, code, words, headers)
    if status_code == 503:
        described = describe(code, words)
        # §1.9: "HTTP 503 means the execution status is UNKNOWN": the order may exist.
        if is_order_placement:
            return OrderOutcomeUnknownError(VENUE, client_id or "", f"HTTP 503: {described}")
        return VenueTransportError(VENUE, f"HTTP 503: {described}")
    if status_code >= 500:
        return VenueTransportError(VENUE, f"HTTP {status_code}: {describe(code, words)}")
    if code is not None and (code in _REASONS or code in _AUTH_CODES or code in _RATE_LIMIT_CODES
                             or code == _CANCEL_REJECTED):
        return _from_code(code, words, headers)
    if status_code == 401:
        return VenueAuthError(VENUE, f"HTTP 401: {describe(code, words)}")
    if status_code == 403:
        return VenueRejectedError(VENUE, RejectReason.INVALID, f"HTTP 403 (WAF block): {words}",
                                  _code_text(code))
    if code is not None:
        return _from_code(code, words, headers)
    return VenueRejectedError(VENUE, RejectReason.INVALID, f"HTTP {status_code}: {words}")


def used_weight(headers: Mapping[str, str]) -> dict[str, int]:
    """Usage counters from `X-MBX-USED-WEIGHT-(n)(unit)` and `X-MBX-ORDER-COUNT-(n)(unit)` (§1.9).

    Keys are the lowercased header names without `x-mbx-`, e.g. `{"used-weight-1m": 12,
    "order-count-10s": 1}`. Weight limits are per IP, order counts per account; values that are
    not integers are skipped.
    """
    usage: dict[str, int] = {}
    for name, value in headers.items():
        lowered = name.lower()
        if not lowered.startswith(_WEIGHT_PREFIXES):
            continue
        try:
            usage[lowered.removeprefix("x-mbx-")] = int(value.strip())
        except ValueError:
            continue
    return usage


def _from_code(code: int, words: str, headers: Mapping[str, str]) -> VenueError:
    text = _code_text(code)
    if code in _AUTH_CODES:
        return VenueAuthError(VENUE, f"{words} (code {text})")
    if code in _RATE_LIMIT_CODES:
        return RateLimitedError(VENUE, words, retry_after_s=retry_after_s(headers), code=text)
    if code == _CANCEL_REJECTED:
        reason = (RejectReason.UNKNOWN_ORDER if _UNKNOWN_ORDER_WORDS in words.lower()
                  else RejectReason.INVALID)
        return VenueRejectedError(VENUE, reason, words, text)
    if code == _NEW_ORDER_REJECTED and _DUPLICATE_WORDS in words.lower():
        # After an unknown outcome the retry with the same id lands here: the first one exists.
        return VenueRejectedError(VENUE, RejectReason.DUPLICATE_CLIENT_ID, words, text)
    return VenueRejectedError(VENUE, _REASONS.get(code, RejectReason.INVALID), words, text)


def _rate_limited(status_code: int, code: int | None, words: str,
                  headers: Mapping[str, str]) -> RateLimitedError:
    if status_code == 418:
        message = f"HTTP 418: IP banned for ignoring 429s (2 minutes to 3 days): {words}"
    else:
        message = f"HTTP 429: rate limit broken, back off: {words}"
    return RateLimitedError(VENUE, message, retry_after_s=retry_after_s(headers),
                            ip_banned=status_code == 418, code=_code_text(code))


def _parse(body: bytes) -> tuple[int | None, str]:
    """(code, the venue's words): the JSON `code`/`msg` when present, else the raw text."""
    try:
        decoded = json.loads(body)
    except ValueError:  # includes UnicodeDecodeError: HTML pages, empty bodies
        return None, venue_words(body.decode("utf-8", "replace"), _SECRET)
    if isinstance(decoded, dict):
        code = decoded.get("code")
        msg = decoded.get("msg")
        if isinstance(code, int) and not isinstance(code, bool):
            return code, venue_words(msg if isinstance(msg, str) else "", _SECRET)
    return None, venue_words(body.decode("utf-8", "replace"), _SECRET)



def _code_text(code: int | None) -> str:
    return "" if code is None else str(code)
