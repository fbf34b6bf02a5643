"""The one error a market-data decoder raises: the venue sent something we cannot read.

A `ValueError`, not a `VenueError`: nothing was asked of the venue, so there is no request to
retry or reconcile. The stream reader drops the message (or resyncs the book) and goes on.
"""

from __future__ import annotations

from typing import Final

MAX_EXCERPT_CHARS: Final = 200
"""Raw payloads can be megabytes (depth snapshots); the message quotes at most this much."""


class MalformedMessageError(ValueError):
    """A WebSocket message that is not JSON, lacks a field, or holds a non-numeric number.

    `venue` and `stream` say where it came from, `reason` what was wrong (msgspec's words,
    with the JSON path), and `excerpt` the start of the raw payload.
    """

    def __init__(self, venue: str, stream: str, reason: str, raw: bytes | str) -> None:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes | bytearray) else raw
        if len(text) > MAX_EXCERPT_CHARS:
            text = text[:MAX_EXCERPT_CHARS] + f"... ({len(text)} chars)"
        self.venue = venue
        self.stream = stream
        self.reason = reason
        self.excerpt = text
        super().__init__(f"malformed {venue} {stream} message: {reason}; raw: {text}")
