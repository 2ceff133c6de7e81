"""Writing the audit log without blocking the event loop and without losing rows.

Rows are written in a worker thread (SQLite's busy wait would otherwise stall every other request,
acks included); a write that finds the store locked is retried with backoff until it lands or a
bounded time has passed. Refusals (rate limit, wrong channel, unknown command) are coalesced: the
first refusal of a user in a minute is one row, the rest of that minute one more row with a count,
so a flood of refused requests cannot turn into a flood of writes.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.store import Store, StoreError

log = logging.getLogger("relaywatch.audit")

# backoff between attempts to write a row while the store is locked or failing (seconds)
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
REFUSAL_WINDOW = 60.0


@dataclass(frozen=True)
class AuditRow:
    user_id: str
    command: str
    args: str
    allowed: bool
    reason: str = ""
    channel_id: str = ""


# store faults that clear by themselves (another process's lock, a disk being freed); a damaged,
# foreign or closed store does not get better by waiting, so its row goes to the log at once
_PASSING_KINDS = ("locked", "full")


def _passing(exc: Exception) -> bool:
    if isinstance(exc, StoreError):
        return getattr(exc, "kind", "locked") in _PASSING_KINDS
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


class AuditWriter:
    """Writes rows off the event loop, retrying while the store is locked."""

    def __init__(
        self,
        store: Store,
        delays: tuple[float, ...] = RETRY_DELAYS,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.store = store
        self.delays = delays
        self.sleep = sleep
        self._tasks: set[asyncio.Task[bool]] = set()
        self.lost = 0

    async def write(self, row: AuditRow) -> bool:
        """Writes `row`; False (logged with the row) if every attempt failed."""
        for attempt, delay in enumerate((*self.delays, None)):
            try:
                await asyncio.to_thread(
                    self.store.audit,
                    row.user_id,
                    row.command,
                    row.args,
                    row.allowed,
                    row.reason,
                    row.channel_id,
                )
                return True
            except (sqlite3.Error, StoreError) as exc:
                if delay is None or not _passing(exc):
                    break
                if attempt == 0:
                    log.warning("audit write failed; retrying", extra={"error": str(exc)})
                await self.sleep(delay)
        self.lost += 1
        # the log keeps the row, so nothing an auditor needs disappears silently
        log.error("audit row could not be written", extra={"row": row.__dict__})
        return False

    def submit(self, row: AuditRow) -> None:
        """Queues `row` for writing without waiting (callers that must answer first)."""
        task = asyncio.get_running_loop().create_task(self.write(row))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


@dataclass
class _Window:
    started: float
    command: str
    channel_id: str
    extra: int = 0
    reasons: set[str] = field(default_factory=set)


class RefusalLog:
    """Coalesces refusals per user: at most two audit rows per user per minute."""

    def __init__(
        self,
        writer: AuditWriter,
        clock: Callable[[], float] = time.monotonic,
        window: float = REFUSAL_WINDOW,
    ) -> None:
        self.writer = writer
        self.clock = clock
        self.window = window
        self._open: dict[str, _Window] = {}

    def record(
        self, user_id: str, command: str, args: str, kind: str, reason: str, channel: str
    ) -> bool:
        """Records one refusal; True when it is the user's first in this window (answer it)."""
        now = self.clock()
        self.flush(expired_only=True)
        current = self._open.get(user_id)
        if current is None:
            self._open[user_id] = _Window(now, command, channel)
            self.writer.submit(AuditRow(user_id, command, args, False, reason, channel))
            return True
        current.extra += 1
        current.reasons.add(kind)
        return False

    def flush(self, expired_only: bool = False) -> None:
        """Writes the count rows of closed windows (all windows when `expired_only` is False)."""
        now = self.clock()
        for user_id, window in list(self._open.items()):
            if expired_only and now - window.started < self.window:
                continue
            del self._open[user_id]
            if window.extra:
                reasons = ", ".join(sorted(window.reasons))
                self.writer.submit(
                    AuditRow(
                        user_id,
                        window.command,
                        "",
                        False,
                        f"{window.extra} more refused within {self.window:.0f} s ({reasons})",
                        window.channel_id,
                    )
                )
