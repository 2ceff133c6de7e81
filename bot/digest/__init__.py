"""The daily health digest: built from the store's history, rendered for the terminal and chat."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from bot.digest.build import build_digest, previous_digest_time
from bot.digest.model import Digest

if TYPE_CHECKING:
    from bot.commands.base import CommandContext
    from bot.render.reply import ChatReply

__all__ = ["Digest", "build_digest", "build_digest_reply", "previous_digest_time"]


async def build_digest_reply(ctx: CommandContext) -> ChatReply:
    """What `/mailhealth` (no arguments) posts: refresh results that are too old, then the digest.

    Refreshed checks are recorded (history) but raise no alerts here: alerts belong to the
    scheduler's monitor runs, which post them to the digest channel.
    """
    from bot.mailchart import digest_chart, with_chart
    from bot.monitor import Monitor
    from bot.render import digest as render

    monitor = Monitor(ctx.config, ctx.store, clock=ctx.clock)

    loop = asyncio.get_running_loop()
    in_flight: list[asyncio.Task[None]] = []

    def progress(text: str) -> None:
        # engines report synchronously; the chat progress message is async. Forward one update at
        # a time and drop the ones that arrive meanwhile (the adapter throttles anyway).
        if in_flight and not in_flight[-1].done():
            return
        in_flight[:] = [loop.create_task(ctx.progress(text))]

    await ctx.progress("refreshing results that are too old for the digest…")
    for kind in ("blacklist", "relay", "mailsummary", "domain"):
        reports = await monitor.refresh_stale((kind,), progress)
        if reports:
            checked = sum(len(r.records) for r in reports)
            await ctx.progress(f"{kind}: checked {checked} item{'s' if checked != 1 else ''}")
    for task in in_flight:
        await task
    digest = build_digest(ctx.store, ctx.config, ctx.clock())
    return with_chart(render.chat_reply(digest), digest_chart(ctx.store, digest))
