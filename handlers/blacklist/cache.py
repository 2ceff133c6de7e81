"""A bounded answer cache that honours TTLs (and negative TTLs from the zone's SOA).

Bounded on purpose: checking a /16 against 60 lists must not keep four million answers around.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class AnswerCache:
    """question bytes → (status, raw answer) until the TTL runs out; oldest evicted first."""

    def __init__(self, max_entries: int = 20_000, clock: Callable[[], float] = time.monotonic):
        self.max_entries = max_entries
        self.clock = clock
        # OrderedDict: evicting the oldest is O(1); a dict's next(iter()) is not, after deletes
        self._entries: OrderedDict[bytes, tuple[float, str, bytes | None]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> tuple[str, bytes | None] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self.clock():
            del self._entries[key]
            return None
        return entry[1], entry[2]

    def put(self, key: bytes, status: str, data: bytes | None, ttl: float) -> None:
        if ttl <= 0 or self.max_entries <= 0:
            return
        entries = self._entries
        if key not in entries and len(entries) >= self.max_entries:
            entries.popitem(last=False)
        entries[key] = (self.clock() + ttl, status, data)

    def clear(self) -> None:
        self._entries.clear()
