"""/mailqueue: what is queued and from whom; admins hold, release or delete-from-hold mail.

Every action is a dry run first: the reply says what would be touched and carries a confirm
button (with Slack's confirmation dialog) that runs the same command with --yes. The dispatcher
audits both, and re-checks that the person pressing is an admin.
"""

from __future__ import annotations

from bot.checks.queue import queue_options, run_queue
from bot.commands.base import CommandContext, CommandDenied, CommandUsageError
from bot.render.queue import chat_reply, plan_reply
from bot.render.reply import ChatReply, escape, plain_reply
from handlers.queue import (
    QUEUE_ACTIONS,
    QueueIdError,
    QueueReadError,
    SelectionError,
    parse_selection,
    queue_action,
)

NAME = "mailqueue"
USAGE = "/mailqueue [hold|release|delete sender|account|client <value>]"
SUMMARY = "show the mail queue by sender, account and client; admins hold, release or delete mail"


async def run(ctx: CommandContext, text: str) -> ChatReply:
    words = text.split()
    if not words:
        await ctx.progress("reading the mail queue…")
        outcome = await run_queue(ctx.config, ctx.store)
        ctx.store.record_check(outcome.kind, outcome.subject, outcome.status, outcome.data)
        return chat_reply(outcome.data, ctx.requester.is_admin)
    action = words[0].lower()
    if action not in QUEUE_ACTIONS:
        raise CommandUsageError(f"unknown action {action!r}")
    confirmed = "--yes" in words
    rest = [w for w in words[1:] if w != "--yes"]
    if len(rest) != 2:
        raise CommandUsageError(f"say whose mail to {action}: sender, account or client, and who")
    if not ctx.requester.is_admin:
        raise CommandDenied(f"only admins may {action} queued mail")
    try:
        selection = parse_selection(rest[0], rest[1])
    except SelectionError as exc:
        raise CommandUsageError(str(exc)) from None
    await ctx.progress(f"{'applying' if confirmed else 'planning'} {action} of {selection}…")
    try:
        result = await queue_action(
            action, selection, queue_options(ctx.config), dry_run=not confirmed
        )
    except (QueueReadError, QueueIdError) as exc:
        return plain_reply(f":large_yellow_circle: could not {action}: {escape(str(exc))}")
    return plan_reply(result, f"{action} {rest[0]} {rest[1]}")
