"""Our client ids as Aster `newClientOrderId`s (venues.md §1.6, §4 pitfall 7).

Aster takes `newClientOrderId` matching `^[\\.A-Z\\:/a-z0-9_-]{1,36}$` (the Binance rule). Ids
that already match are sent as they are, so the venue echoes back exactly our id. Any other id
maps to `CLIENT_ID_PREFIX` + a BLAKE2b hex digest: the same id maps the same way in every process,
so a restarted gateway can still find its orders by `origClientOrderId`. A mapped id cannot be
turned back into ours; keep the pair (the journal does) if you need the reverse.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

MAX_CLIENT_ID_LEN: Final = 36
CLIENT_ID_PATTERN: Final = re.compile(r"[\.A-Z\:/a-z0-9_-]{1,36}")
"""Used with `fullmatch`: `$` in `re.match` would also accept a trailing newline."""
CLIENT_ID_RULE: Final = r"^[\.A-Z\:/a-z0-9_-]{1,36}$"
CLIENT_ID_PREFIX: Final = "h-"
"""Marks a mapped id. 2 + 32 hex = 34 ≤ 36 characters; 128 bits make collisions moot."""
_DIGEST_BYTES: Final = 16


def check_client_id(client_id: str) -> str:
    """`client_id` itself if Aster accepts it as `newClientOrderId`, else ValueError."""
    if CLIENT_ID_PATTERN.fullmatch(client_id) is None:
        raise ValueError(f"Aster newClientOrderId {client_id!r} does not match {CLIENT_ID_RULE}")
    return client_id


def venue_client_id(our_id: str) -> str:
    """The `newClientOrderId` to send for `our_id`: unchanged when valid, else a stable hash.

    The hash form never collides with a valid id that a caller could also send unless that id
    itself starts with `h-` and 32 hex digits, so don't mint ids of that shape.
    """
    if CLIENT_ID_PATTERN.fullmatch(our_id) is not None:
        return our_id
    digest = hashlib.blake2b(our_id.encode("utf-8"), digest_size=_DIGEST_BYTES).hexdigest()
    return check_client_id(CLIENT_ID_PREFIX + digest)
