"""Delivering a command's life cycle through any ChatPoster: the throttled "checking…" message
that progress updates and the result replaces, and the background tasks that run commands
after the transport has acknowledged them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Coroutine
from typing import Any

from bot.poster import ChatPoster
from bot.render.reply import ChatReply, context, escape, sections

log = logging.getLogger("relaywatch.delivery")


def progress_reply(title: str, text: str) -> ChatReply:
    """`title` is mrkdwn (the caller escaped what the user typed); `text` is an engine's plain
    progress line, which can name a target or quote a server."""
    return ChatReply(
        text=f"{title} {escape(text)}".strip(),
        blocks=[
            *sections(f":hourglass_flowing_sand: {title}"),
            context(escape(text) or "starting"),
        ],
    )


class ProgressMessage:
    """A command's progress message, posted lazily and updated at most every `interval` seconds.

    Nothing is posted for a command that answers within `first_after` seconds (the result is
    simply posted); a slower one gets a "checking…" message that its progress edits and its
    result finally replaces. Calling it never waits on the network, so engines may report
    progress as often as they like.
    """

    def __init__(
        self,
        poster: ChatPoster,
        channel: str,
        title: str = "checking…",
        thread_ts: str | None = None,
        interval: float = 1.0,
        first_after: float = 0.3,
    ) -> None:
        self.poster = poster
        self.channel = channel
        self.title = title
        self.thread_ts = thread_ts
        self.interval = interval
        self.first_after = first_after
        self.ts: str | None = None
        self._lock = asyncio.Lock()
        self._pending: str | None = None
        self._finished = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._not_before = 0.0  # loop time before which no post/update may go out

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._not_before = loop.time() + self.first_after
        self._pending = ""
        self._schedule()

    async def __call__(self, text: str) -> None:
        if self._finished:
            return
        self._pending = text
        if not any(not t.done() for t in self._tasks):
            self._schedule()

    def _schedule(self) -> None:
        task = asyncio.create_task(self._flush_later())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush_later(self) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(max(0.0, self._not_before - loop.time()))
        async with self._lock:
            text, self._pending = self._pending, None
            if self._finished or text is None:
                return
            reply = progress_reply(self.title, text)
            try:
                if self.ts is None:
                    self.ts = await self.poster.post(self.channel, reply, thread_ts=self.thread_ts)
                else:
                    await self.poster.update(self.channel, self.ts, reply)
            except Exception as exc:
                # A lost progress update is cosmetic; the result is still delivered.
                log.warning("progress update failed", extra={"error": str(exc)})
            self._not_before = loop.time() + self.interval
        if self._pending is not None and not self._finished:
            self._schedule()

    async def finish(self, reply: ChatReply) -> str:
        """Replaces the progress message with `reply` (or posts it); returns the message ts."""
        self._finished = True
        async with self._lock:  # an in-flight post completes first, so its ts is known
            self._cancel()
            if self.ts is None:
                self.ts = await self.poster.post(self.channel, reply, thread_ts=self.thread_ts)
                return self.ts
            stale = self.ts
            try:
                await self.poster.update(self.channel, stale, reply)
                return stale
            except Exception as exc:
                # the result must not be lost with the edit: post it as a new message
                log.warning(
                    "cannot replace the progress message; posting the result anew",
                    extra={"error": str(exc)},
                )
            self.ts = await self.poster.post(self.channel, reply, thread_ts=self.thread_ts)
            await self._retire(stale)
            return self.ts

    async def _retire(self, ts: str, note: str = "(answered below)") -> None:
        """Removes a "checking…" message whose result went elsewhere (or says where it went)."""
        delete = getattr(self.poster, "delete", None)
        if delete is not None:
            try:
                await delete(self.channel, ts)
                return
            except Exception as exc:
                log.warning("cannot remove the progress message", extra={"error": str(exc)})
        try:
            await self.poster.update(self.channel, ts, ChatReply(text=note))
        except Exception as exc:
            log.warning("cannot retire the progress message", extra={"error": str(exc)})

    async def discard(self) -> None:
        """The result is going elsewhere (an ephemeral reply): remove the progress message."""
        self._finished = True
        async with self._lock:
            self._cancel()
            if self.ts is not None:
                await self._retire(self.ts, "(answered privately)")
                self.ts = None

    def _cancel(self) -> None:
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()


class BackgroundWork:
    """Commands run as tasks after the ack; kept here so shutdown and tests can wait for them."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, work: Coroutine[Any, Any, Any], name: str = "") -> asyncio.Task[Any]:
        task = asyncio.create_task(self._guarded(work, name), name=name or None)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @staticmethod
    async def _guarded(work: Awaitable[Any], name: str) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:
            # Dispatch already turns command failures into replies; this catches delivery
            # failures (Slack down, channel gone) so one bad request never stops the bot.
            log.exception("background work failed", extra={"work": name})

    def __len__(self) -> int:
        return len(self._tasks)

    async def drain(self, within: float | None = None) -> bool:
        """Waits for running work (and work it starts); False if `within` seconds passed first."""
        loop = asyncio.get_running_loop()
        deadline = None if within is None else loop.time() + within
        while self._tasks:
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return False
            await asyncio.wait(set(self._tasks), timeout=remaining)
        return True

    async def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)
