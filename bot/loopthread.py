"""An event loop of its own in a thread, for work that touches the store on a schedule.

The scheduler's jobs (monitors, the digest) call the SQLite store synchronously; in the bot's own
loop a job that meets another process's write lock would hold up every Slack acknowledgement for
as long as SQLite waits. In this loop it only holds up the schedule.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    def __init__(self, name: str = "relaywatch-scheduler") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    async def call(self, work: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Runs `work()` in this thread's loop; waits for it without blocking the caller's loop."""
        future = asyncio.run_coroutine_threadsafe(work(), self.loop)
        return await asyncio.wrap_future(future)

    async def close(self) -> None:
        """Stops the loop once what runs in it has finished its current step."""

        async def shutdown() -> None:
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        await self.call(shutdown)
        self.loop.call_soon_threadsafe(self.loop.stop)
        await asyncio.to_thread(self._thread.join, 10)
        if not self._thread.is_alive():
            self.loop.close()
