"""How many heavy checks chat may run at once: per user and overall, the rest queued in order.

Twelve people asking for a year of mail logs at once must not take the server's memory; each
waits its turn, told that it is queued and where.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field


@dataclass
class JobGate:
    per_user: int = 1
    admin_per_user: int = 2
    total: int = 4
    _running: dict[str, int] = field(default_factory=dict)
    _queue: list[tuple[str, bool, asyncio.Future[None]]] = field(default_factory=list)

    @property
    def running(self) -> int:
        return sum(self._running.values())

    @property
    def queued(self) -> int:
        return len(self._queue)

    def _may_start(self, user_id: str, is_admin: bool) -> bool:
        mine = self._running.get(user_id, 0)
        limit = self.admin_per_user if is_admin else self.per_user
        return mine < limit and self.running < self.total

    @contextlib.asynccontextmanager
    async def slot(
        self,
        user_id: str,
        is_admin: bool,
        on_queued: Callable[[int], Awaitable[None]] | None = None,
    ) -> AsyncIterator[None]:
        """Holds a place while the job runs; waits in line (first come, first served) if full."""
        waiting: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((user_id, is_admin, waiting))
        self._wake()
        if not waiting.done():
            try:
                if on_queued is not None:
                    with contextlib.suppress(Exception):
                        await on_queued(len(self._queue) - 1)
                await waiting
            except BaseException:
                self._forget(user_id, waiting)
                raise
        try:
            yield
        finally:
            self._running[user_id] -= 1
            if not self._running[user_id]:
                del self._running[user_id]
            self._wake()

    def _forget(self, user_id: str, waiting: asyncio.Future[None]) -> None:
        """A queued job was cancelled: leave the line, and hand back a place it was given."""
        self._queue = [entry for entry in self._queue if entry[2] is not waiting]
        if waiting.done() and not waiting.cancelled():
            self._running[user_id] -= 1
            if not self._running[user_id]:
                del self._running[user_id]
            self._wake()
        else:
            waiting.cancel()

    def _wake(self) -> None:
        """Starts every queued job that may start now, oldest first (skipping blocked users)."""
        for entry in list(self._queue):
            user_id, is_admin, waiting = entry
            if waiting.done():
                self._queue.remove(entry)
                continue
            if self._may_start(user_id, is_admin):
                self._queue.remove(entry)
                self._running[user_id] = self._running.get(user_id, 0) + 1
                waiting.set_result(None)
