"""Rate-limit refusals shared by the venue adapters (venues.md §1.9, §2.4).

`RateLimitedError` is a `VenueRejectedError` with reason `RATE_LIMITED`, so code that only knows
the base class still sees "the venue said no; do not retry as is". Gateways that know more back
off for `retry_after_s` when the venue said how long, and treat `ip_banned` (HTTP 418: the IP was
banned for ignoring 429s) as an outage of minutes to days rather than a pause.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from ._exceptions import RejectReason, VenueRejectedError


class RateLimitedError(VenueRejectedError):
    """HTTP 429/418 or a venue's "too many requests" code: back off before the next request."""

    def __init__(
        self,
        venue: str,
        message: str,
        *,
        retry_after_s: float | None = None,
        ip_banned: bool = False,
        code: str = "",
    ) -> None:
        super().__init__(venue, RejectReason.RATE_LIMITED, message, code)
        self.retry_after_s = retry_after_s
        """Seconds the venue asked us to wait (`Retry-After`), or None when it did not say."""
        self.ip_banned = ip_banned
        """HTTP 418: the IP is banned (Aster: 2 minutes to 3 days), not merely throttled."""


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup that also works on a plain dict (httpx.Headers already is)."""
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    for key, candidate in headers.items():
        if key.lower() == wanted:
            return candidate
    return None


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """`Retry-After` in seconds, or None if absent or not a non-negative number.

    The venues document only the seconds form (venues.md §1.9, AS1), so an HTTP-date is ignored
    rather than guessed at; the caller then falls back to its own back-off.
    """
    raw = header(headers, "Retry-After")
    if raw is None:
        return None
    try:
        seconds = float(raw.strip())
    except ValueError:
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds
