"""Our string client ids ↔ Backpack's uint32 `clientId` (venues.md §4 pitfall 7).

Backpack takes `clientId` as a uint32; Steward's ids are strings. `ClientIdMap` gives each string
the first 4 bytes of its BLAKE2b digest, so the same id maps to the same number in every process
(a restarted gateway can reconcile by clientId) unless a collision moved it. A collision — a
number already held by a different live string — is resolved by linear probing (n+1 mod 2**32),
which is deterministic only within this process. The table is bounded: past `capacity` the
least recently mapped id is forgotten, its number can be given out again, and `to_client_id`
returns None for it. Send the int as a JSON number; it is signed as the same plain integer.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

UINT32_SPACE = 2**32
DEFAULT_CAPACITY = 65536


def uint32_of(client_id: str) -> int:
    """The preferred (pre-collision) uint32 for a string id: BLAKE2b, first 4 bytes, big-endian."""
    return int.from_bytes(hashlib.blake2b(client_id.encode("utf-8"), digest_size=4).digest(), "big")


class ClientIdMap:
    """A bounded two-way table string id ↔ uint32, collisions resolved by probing."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._by_id: OrderedDict[str, int] = OrderedDict()
        self._by_number: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def to_uint32(self, client_id: str) -> int:
        """The uint32 for `client_id`, allocating (and possibly evicting the oldest) if new."""
        number = self._by_id.get(client_id)
        if number is not None:
            self._by_id.move_to_end(client_id)
            return number
        if len(self._by_id) >= self.capacity:
            _, old_number = self._by_id.popitem(last=False)
            del self._by_number[old_number]
        number = uint32_of(client_id)
        while number in self._by_number:  # terminates: capacity < 2**32 numbers are held
            number = (number + 1) % UINT32_SPACE
        self._by_id[client_id] = number
        self._by_number[number] = client_id
        return number

    def to_client_id(self, number: int) -> str | None:
        """The string id that `number` stands for, or None if unknown here (or evicted)."""
        return self._by_number.get(number)
