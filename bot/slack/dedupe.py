"""Slack redelivers an event it thinks was not acknowledged (same event_id, X-Slack-Retry-Num):
remember recent event ids so each event runs once."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

# Slack retries three times within about five minutes; keep ids a little longer than that.
EVENT_TTL_SECONDS = 600.0
MAX_REMEMBERED_EVENTS = 10_000


class SeenEvents:
    """A bounded, time-limited set of event ids (oldest forgotten first)."""

    def __init__(
        self,
        ttl: float = EVENT_TTL_SECONDS,
        capacity: int = MAX_REMEMBERED_EVENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.capacity = capacity
        self.clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def first_time(self, event_id: str) -> bool:
        """True the first time `event_id` is seen within the TTL; False for a redelivery."""
        now = self.clock()
        while self._seen:
            oldest, at = next(iter(self._seen.items()))
            if now - at < self.ttl and len(self._seen) < self.capacity:
                break
            del self._seen[oldest]
        if not event_id:
            return True  # nothing to match a retry on
        if event_id in self._seen:
            return False
        self._seen[event_id] = now
        return True

    def __len__(self) -> int:
        return len(self._seen)
