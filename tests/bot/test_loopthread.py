"""The scheduler's own loop: its store calls wait for a locked store without stalling the bot's."""

from __future__ import annotations

import asyncio
import threading

from bot.loopthread import LoopThread
from bot.store import Store
from tests.bot.test_app_store_locked import write_lock_held


async def test_work_runs_in_another_thread_and_close_cancels_the_rest() -> None:
    worker = LoopThread()
    forever = asyncio.Event()

    async def where() -> str:
        return threading.current_thread().name

    async def start_forever() -> None:
        asyncio.get_running_loop().create_task(asyncio.wait_for(forever.wait(), 60))

    assert await worker.call(where) == "relaywatch-scheduler"
    await worker.call(start_forever)
    await worker.close()
    assert worker.loop.is_closed()


async def test_a_store_write_waiting_for_the_lock_does_not_stall_this_loop(tmp_path) -> None:
    path = tmp_path / "rw.db"
    Store(path).close()
    worker = LoopThread()
    gaps: list[float] = []

    async def heartbeat() -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(0.02)
            gaps.append(loop.time() - last)
            last = loop.time()

    async def scheduled_job() -> None:  # a monitor run recording its check
        with Store(path) as store:
            store.record_check("blacklist", "192.0.2.1", "ok", {})

    beat = asyncio.create_task(heartbeat())
    try:
        async with write_lock_held(path, 1.0):
            await worker.call(scheduled_job)
    finally:
        beat.cancel()
        await worker.close()
    assert gaps and max(gaps) < 0.5
    with Store(path) as store:
        assert len(store.checks("blacklist")) == 1
