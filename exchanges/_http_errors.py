"""The venue's words in our error messages: whitespace collapsed, secrets masked, size capped.

Shared by the venues' `error_from_response`. An HTML error page (WAF, gateway) can echo the
signed URL back at us, so anything shaped like a signature or key is masked before it reaches
an exception, a log line or the control plane.
"""

from __future__ import annotations

import re
from typing import Final

import httpx

MAX_MESSAGE_CHARS: Final = 200
"""Enough for any documented venue message; an HTML error page is cut short."""


def venue_words(text: str, secret: re.Pattern[str]) -> str:
    """`text` on one line, each `secret` match's value (its third group) masked, capped.

    `secret` has three groups: the name, the separator, the value to mask.
    """
    text = secret.sub(r"\1\2<redacted>", " ".join(text.split()))
    if len(text) > MAX_MESSAGE_CHARS:
        return text[:MAX_MESSAGE_CHARS] + "…"
    return text


def describe(code: int | str | None, words: str) -> str:
    """The venue's words with its code, when it gave one."""
    return words if code is None else f"{words} (code {code})"


def may_be_error_object(body: bytes) -> bool:
    """Whether a 2xx body could be a venue's error object: only a JSON object can.

    Lists of orders, markets or trades (the large answers) are passed over without a parse.
    """
    return body.lstrip()[:1] == b"{"


def never_sent(error: httpx.RequestError) -> bool:
    """True when httpx failed before a byte of the request left: no connection was made.

    Such a placement cannot have created an order, so it is a plain transport error (retry
    with the same client id) rather than an unknown outcome to reconcile. Every other failure
    (read/write timeouts, a dropped connection, a cut-off body) may follow execution.
    """
    return isinstance(error, httpx.ConnectError | httpx.ConnectTimeout)
