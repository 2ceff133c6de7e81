"""Containment changes as they happen, for each replica's policy service.

`containment_changes(location)` is an async iterator of containment revisions: it yields the
current revision at once, then each new one. On PostgreSQL it LISTENs on the channel every
containment write NOTIFYs (bot.store), so a block set through any replica reaches the others in
milliseconds; it also rereads the revision every `poll_seconds`, the fallback for a notification
lost to a dropped connection (it reconnects). On SQLite (one machine) it polls the revision.

The policy service awaits it and rereads `Store.active_containments()` on each yield:

    async for revision in containment_changes(config.store_location):
        entries = store.active_containments()
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from bot.store import Store
from bot.store_pg import CONTAINMENT_CHANNEL, is_postgres, redact

log = logging.getLogger("relaywatch.store.changes")

DEFAULT_POLL_SECONDS = 1.0


async def containment_changes(
    location: str | Path, poll_seconds: float = DEFAULT_POLL_SECONDS
) -> AsyncIterator[int]:
    """Yields the containment revision now and after every change, until cancelled."""
    if isinstance(location, str) and is_postgres(location):
        source = _listen(location, poll_seconds)
    else:
        source = _poll(location, poll_seconds)
    last: int | None = None
    async for revision in source:
        if revision != last:
            last = revision
            yield revision


async def on_containment_change(
    location: str | Path,
    callback: Callable[[int], Awaitable[None] | None],
    poll_seconds: float = DEFAULT_POLL_SECONDS,
) -> None:
    """Calls `callback(revision)` on every change until cancelled (run it as a task)."""
    async for revision in containment_changes(location, poll_seconds):
        result = callback(revision)
        if asyncio.iscoroutine(result):
            await result


async def _poll(location: str | Path, poll_seconds: float) -> AsyncIterator[int]:
    # one indexed read of a one-row table on a local file: cheap enough for the event loop
    store = Store(location)
    try:
        while True:
            yield store.containment_revision()
            await asyncio.sleep(poll_seconds)
    finally:
        store.close()


async def _listen(url: str, poll_seconds: float) -> AsyncIterator[int]:
    import psycopg

    while True:
        try:
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                await conn.execute(f"LISTEN {CONTAINMENT_CHANNEL}")
                while True:
                    # read after LISTEN: a change committed in between is seen either way
                    yield await _revision(conn)
                    # wakes on a notification, or after poll_seconds to reread anyway
                    async for _ in conn.notifies(timeout=poll_seconds, stop_after=1):
                        pass
        except psycopg.OperationalError as exc:
            log.warning(
                "lost the store's change notifications; reconnecting",
                extra={"store": redact(url), "reason": str(exc).strip()[:200]},
            )
            await asyncio.sleep(poll_seconds)


async def _revision(conn: Any) -> int:
    cursor = await conn.execute("SELECT revision FROM containment_revision WHERE id = 1")
    row = await cursor.fetchone()
    return int(row[0]) if row else 0
