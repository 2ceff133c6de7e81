"""/mailsummary [window | --since WHEN [--until WHEN]]: the mail-log summary and suspects.

Only the window can be chosen: the logs themselves always come from the configuration, so nobody
in chat can make the bot read a file of their choosing.
"""

from __future__ import annotations

import logging
from datetime import datetime

from bot.checks.mailsummary import run_mailsummary
from bot.commands.base import CommandContext, CommandUsageError, forwarded_progress
from bot.mailchart import summary_chart, with_chart
from bot.render.mailsummary import chat_reply
from bot.render.reply import ChatReply
from handlers.logsummary.timefmt import TimeSpecError, window_from_specs

NAME = "mailsummary"
# the usage hint: Slack's manifest, `/mailhealth help` and usage errors all show it; <x> is a value
HINT = "[<window> | --since <when> [--until <when>]]"
USAGE = f"/{NAME} {HINT}"
SUMMARY = (
    "summarise the mail log and name accounts or hosts that look compromised "
    "(window: 24h, 90m, 7d; when: also a date such as 2026-11-27T00:00)"
)
# a check that may take minutes and memory: chat runs a bounded number at once (bot.jobs)
HEAVY = True

log = logging.getLogger("relaywatch.commands.mailsummary")


def parse_window(text: str) -> tuple[str | None, str | None]:
    """'' → (None, None): the configured window; '7d' or '--since 7d' → ('7d', None);
    'A B' or '--since A --until B' → (A, B). The words are checked by window_from_specs."""
    words = text.split()
    for word in words:
        if "/" in word or "\\" in word or word.startswith((".", "~")):
            raise CommandUsageError(
                "/mailsummary takes a time window, not a file: the logs it reads are set in the "
                "configuration"
            )
    if not any(word.startswith("--") for word in words):
        if len(words) > 2:
            raise CommandUsageError("too many words")
        return (words[0] if words else None), (words[1] if len(words) > 1 else None)
    found: dict[str, str] = {}
    while words:
        option = words.pop(0)
        if option not in ("--since", "--until"):
            raise CommandUsageError(f"unexpected {option!r}: give --since and --until a time each")
        if not words or words[0].startswith("--"):
            raise CommandUsageError(f"{option} needs a time (24h, 7d, 2026-11-27T00:00)")
        if option in found:
            raise CommandUsageError(f"{option} given twice")
        found[option] = words.pop(0)
    return found.get("--since"), found.get("--until")


def parse_args(text: str, now: datetime) -> tuple[str | None, str | None]:
    """The window the text asks for, checked; bad input raises CommandUsageError."""
    since, until = parse_window(text)
    try:
        window_from_specs(since, until, now)
    except TimeSpecError as exc:
        raise CommandUsageError(str(exc)) from None
    return since, until


async def run(ctx: CommandContext, text: str) -> ChatReply:
    since, until = parse_args(text, ctx.clock())  # bad input: nothing runs
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
    reply = chat_reply(
        outcome,
        rerun=text.strip(),
        check_id=check_id,
        throttle_rate=ctx.config.policy.throttle_rate,
    )
    return with_chart(reply, summary_chart(ctx.store, check_id))
