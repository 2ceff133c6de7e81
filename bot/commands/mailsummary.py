"""/mailsummary [window]: the mail-log summary and the suspects, from chat.

Only the window can be chosen: the logs themselves always come from the configuration, so nobody
in chat can make the bot read a file of their choosing.
"""

from __future__ import annotations

import logging

from bot.checks.mailsummary import run_mailsummary
from bot.commands.base import CommandContext, CommandUsageError, forwarded_progress
from bot.render.mailsummary import chat_reply
from bot.render.reply import ChatReply
from handlers.logsummary.timefmt import TimeSpecError, window_from_specs

NAME = "mailsummary"
USAGE = "/mailsummary [window]  (24h, 90m, 7d, or since [until] as 2026-11-27T00:00)"
# a check that may take minutes and memory: chat runs a bounded number at once (bot.jobs)
HEAVY = True
SUMMARY = "summarise the mail log and name accounts or hosts that look compromised"

log = logging.getLogger("relaywatch.commands.mailsummary")


def parse_window(text: str) -> tuple[str | None, str | None]:
    """'' → (None, None): the configured window; '7d' → ('7d', None); 'A B' → (A, B)."""
    words = text.split()
    if len(words) > 2:
        raise CommandUsageError("too many words")
    for word in words:
        if "/" in word or "\\" in word or word.startswith((".", "~")):
            raise CommandUsageError(
                "/mailsummary takes a time window, not a file: the logs it reads are set in the "
                "configuration"
            )
    since = words[0] if words else None
    until = words[1] if len(words) > 1 else None
    return since, until


async def run(ctx: CommandContext, text: str) -> ChatReply:
    since, until = parse_window(text)
    now = ctx.clock()
    try:
        window = window_from_specs(since or ctx.config.logs.window, until, now)
    except TimeSpecError as exc:  # bad input: nothing runs
        raise CommandUsageError(str(exc)) from None
    limits = ctx.config.limits
    days = (
        limits.admin_mailsummary_max_days if ctx.requester.is_admin else limits.mailsummary_max_days
    )
    end = window.until if window.until is not None else now.timestamp()
    if window.since is not None and end - window.since > days * 86400:
        advice = "" if ctx.requester.is_admin else "; admins may ask for longer windows"
        raise CommandUsageError(f"the window can be at most {days:g} days from chat{advice}")
    shown = " – ".join(w for w in (since, until) if w) or ctx.config.logs.window
    await ctx.progress(f"reading the mail logs ({shown})…")
    try:
        async with forwarded_progress(ctx.progress) as progress:
            outcome = await run_mailsummary(
                ctx.config,
                since=since,
                until=until,
                store=ctx.store,
                progress=progress,
                now=ctx.clock(),
            )
    except TimeSpecError as exc:
        raise CommandUsageError(str(exc)) from None
    check_id = ctx.store.record_check(outcome.kind, outcome.subject, outcome.status, outcome.data)
    return chat_reply(outcome, rerun=text.strip(), check_id=check_id)
