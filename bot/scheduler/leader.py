"""One replica runs the scheduled jobs: the leader. Every replica answers Slack.

Leadership is held in the store: on PostgreSQL a session advisory lock (the server drops it the
moment the leader's connection dies), on SQLite a lease row renewed every RENEW_EVERY and taken
over once it has not been renewed for LEASE. Every replica asks on each tick, so a dead leader is
replaced within LEASE + RENEW_EVERY (a minute) on SQLite and within a tick on PostgreSQL.

Leadership is an optimisation of who works, not what keeps messages single: every message is also
claimed in the store (digest runs, posting claims), so two replicas that both believe they lead
for a moment still post each message once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

from bot.store import Store, utc_now

log = logging.getLogger("relaywatch.leader")

NAME = "scheduler"
LEASE = timedelta(seconds=45)
RENEW_EVERY = timedelta(seconds=15)

T = TypeVar("T")


class Leadership:
    def __init__(
        self,
        store: Store,
        holder: str,
        clock: Callable[[], datetime] = utc_now,
        lease: timedelta = LEASE,
    ) -> None:
        self.store = store
        self.holder = holder
        self.clock = clock
        self.lease = lease
        self.held = False

    def check(self) -> bool:
        """Takes or renews leadership; whether this replica leads now."""
        try:
            held = self.store.hold_leadership(NAME, self.holder, self.lease)
        except Exception:
            log.exception("could not reach the store for leadership; not leading")
            held = False
        if held != self.held:
            log.info(
                "leading the scheduled jobs" if held else "no longer leading",
                extra={"holder": self.holder},
            )
        self.held = held
        return held

    def resign(self) -> None:
        if self.held:
            self.held = False
            self.store.resign_leadership(NAME, self.holder)


def leader_only(
    leadership: Leadership, body: Callable[[], Awaitable[T]]
) -> Callable[[], Awaitable[T | None]]:
    """`body`, run only while this replica leads (checked, and renewed, on every call)."""

    async def run() -> T | None:
        if not leadership.check():
            return None
        try:
            return await body()
        except asyncio.CancelledError:
            # the bot is stopping (the shell session ended, SIGTERM): a job cut short is not a
            # failure, and its partial run was never recorded as clean
            log.info("scheduled job stopped with the bot", extra={"job": run.__name__})
            return None

    run.__name__ = getattr(body, "__name__", "job")
    return run
