"""/mailqueue: what is queued and from whom; admins hold, release or delete-from-hold mail.

Every action is a dry run first: the reply says what would be touched and carries a confirm
button (with Slack's confirmation dialog) that runs the same command with --yes. The dispatcher
audits both, and re-checks that the person pressing is an admin.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.checks.queue import queue_options, run_queue
from bot.commands.base import CommandContext, CommandDenied, CommandUsageError
from bot.render.queue import chat_reply, plan_reply
from bot.render.reply import ChatReply, escape, plain_reply
from handlers.queue import (
    QUEUE_ACTIONS,
    QueueIdError,
    QueueReadError,
    Selection,
    SelectionError,
    parse_selection,
    queue_action,
)

NAME = "mailqueue"
HINT = "[hold|release|delete sender|account <address> | hold|release|delete client <ip>]"
USAGE = f"/{NAME} {HINT}"
SUMMARY = "show the mail queue by sender, account and client; admins hold, release or delete mail"


@dataclass(frozen=True)
class QueueRequest:
    action: str  # "" (show the queue), hold, release or delete
    selection: Selection | None = None
    confirmed: bool = False  # --yes: the confirm button's second step

    @property
    def args(self) -> str:
        assert self.selection is not None
        return f"{self.action} {self.selection.kind} {self.selection.value or '<>'}"


def parse_args(text: str) -> QueueRequest:
    """The request in the text; bad input raises CommandUsageError (nothing is read or run)."""
    words = text.split()
    if not words:
        return QueueRequest("")
    action = words[0].lower()
    if action not in QUEUE_ACTIONS:
        raise CommandUsageError(f"unknown action {action!r}")
    confirmed = "--yes" in words
    rest = [w for w in words[1:] if w != "--yes"]
    if len(rest) != 2:
        raise CommandUsageError(f"say whose mail to {action}: sender, account or client, and who")
    try:
        return QueueRequest(action, parse_selection(rest[0], rest[1]), confirmed)
    except SelectionError as exc:
        raise CommandUsageError(str(exc)) from None


async def run(ctx: CommandContext, text: str) -> ChatReply:
    request = parse_args(text)
    if not request.action:
        await ctx.progress("reading the mail queue…")
        outcome = await run_queue(ctx.config, ctx.store)
        ctx.store.record_check(outcome.kind, outcome.subject, outcome.status, outcome.data)
        return chat_reply(outcome.data, ctx.requester.is_admin)
    action, selection, confirmed = request.action, request.selection, request.confirmed
    assert selection is not None
    if not ctx.requester.is_admin:
        raise CommandDenied(f"only admins may {action} queued mail")
    await ctx.progress(f"{'applying' if confirmed else 'planning'} {action} of {selection}…")
    try:
        result = await queue_action(
            action, selection, queue_options(ctx.config), dry_run=not confirmed
        )
    except (QueueReadError, QueueIdError) as exc:
        return plain_reply(f":large_yellow_circle: could not {action}: {escape(str(exc))}")
    return plan_reply(result, request.args)
