"""/mailhealth: post the health digest now, edit or show the watch list, and list the commands."""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass

from bot.commands.base import CommandContext, CommandDenied, CommandUsageError
from bot.render.reply import ChatReply, context, escape, header, mention, sections
from bot.store import WATCH_KINDS
from bot.watchlist import WatchValueError, classify

NAME = "mailhealth"
# the usage hint: Slack's manifest, `/mailhealth help` and usage errors all show it; <x> is a value
HINT = "[help | watch list | watch add|remove [ip|cidr|domain|server] <value>]"
USAGE = f"/{NAME} {HINT}"
SUMMARY = "post the mail health digest now; show or edit the watch list (edits: admins)"

WATCH_USAGE = (
    "/mailhealth watch add|remove [ip|cidr|domain|server] <value>  ·  /mailhealth watch list"
)


@dataclass(frozen=True)
class Request:
    """What `/mailhealth …` asks for: the digest, help, or a watch-list action."""

    action: str  # digest | help | list | add | remove
    kind: str | None = None  # ip | cidr | domain | server; None: inferred from the value
    value: str = ""


def parse_args(text: str) -> Request:
    """The request in the text; bad input raises CommandUsageError (nothing is looked up)."""
    words = text.split()
    if not words:
        return Request("digest")
    sub, rest = words[0].lower(), words[1:]
    if sub in ("help", "-h", "--help", "?"):
        return Request("help")
    if sub != "watch":
        raise CommandUsageError(f"unknown subcommand {sub!r}; try `/mailhealth help`")
    if not rest:
        raise CommandUsageError(f"say what to do with the watch list: {WATCH_USAGE}")
    action, rest = rest[0].lower(), rest[1:]
    if action in ("list", "ls", "show"):
        if rest:
            raise CommandUsageError(f"`watch list` takes no value; {WATCH_USAGE}")
        return Request("list")
    if action not in ("add", "remove", "rm", "del", "delete"):
        raise CommandUsageError(f"unknown watch action {action!r}; {WATCH_USAGE}")
    kind = None
    if len(rest) == 2 and rest[0].lower() in WATCH_KINDS:
        kind, rest = rest[0].lower(), rest[1:]
    if len(rest) != 1:
        raise CommandUsageError(f"give exactly one value to {action}; {WATCH_USAGE}")
    return Request("add" if action == "add" else "remove", kind, rest[0])


async def run(ctx: CommandContext, text: str) -> ChatReply:
    request = parse_args(text)
    if request.action == "digest":
        return await digest_now(ctx)
    if request.action == "help":
        return help_reply(ctx)
    if request.action == "list":
        return watch_list(ctx)
    return watch(ctx, request)


async def digest_now(ctx: CommandContext) -> ChatReply:
    """The digest comes from bot.digest (the scheduler's issue); absent there, say so."""
    try:
        digest = importlib.import_module("bot.digest")
    except ModuleNotFoundError as exc:
        if exc.name != "bot.digest":
            raise
        digest = None
    build = getattr(digest, "build_digest_reply", None)
    if build is None:
        return ChatReply(
            text="The health digest is not available in this build of relaywatch yet.",
            blocks=sections(
                ":information_source: The health digest is not available in this build of "
                "relaywatch yet. Meanwhile: `/blacklist`, `/relaycheck`, `/mailsummary`."
            ),
        )
    await ctx.progress("building the digest")
    reply = build(ctx)
    if inspect.isawaitable(reply):
        reply = await reply
    return reply


def watch(ctx: CommandContext, request: Request) -> ChatReply:
    if not ctx.requester.is_admin:
        raise CommandDenied(
            "only admins can edit the watch list; ask an admin, or see it with "
            "`/mailhealth watch list`."
        )
    try:
        item = classify(request.value, request.kind)
    except WatchValueError as exc:
        raise CommandUsageError(str(exc)) from None
    who = _who(ctx)
    if request.action == "add":
        added = ctx.store.add_watch(item.kind, item.value, added_by=_added_by(ctx))
        if not added:
            text = f"{item.kind} `{escape(item.value)}` is already on the watch list."
        else:
            text = (
                f":eyes: {who} added {item.kind} `{escape(item.value)}` to the watch list; "
                "the monitors and the next digest include it."
            )
    else:
        if not ctx.store.remove_watch(item.kind, item.value):
            raise CommandUsageError(
                f"{item.kind} {item.value} is not on the watch list (see `/mailhealth watch list`)"
            )
        text = (
            f":wastebasket: {who} removed {item.kind} `{escape(item.value)}` from the watch list."
        )
    plain = text.replace(":eyes: ", "").replace(":wastebasket: ", "").replace("`", "")
    return ChatReply(text=plain, blocks=sections(text))  # both already escaped


def watch_list(ctx: CommandContext) -> ChatReply:
    items = ctx.store.watch_list()
    if not items:
        text = (
            "The watch list is empty; an admin adds to it with `/mailhealth watch add 192.0.2.10`."
        )
        return ChatReply(text=text.replace("`", ""), blocks=sections(text))
    lines = [f"• {i.kind} `{escape(i.value)}` — added {i.added_at[:10]}" for i in items]
    plain = "\n".join(f"{i.kind} {escape(i.value)}" for i in items)
    return ChatReply(
        text=f"Watch list ({len(items)}):\n{plain}",
        blocks=[header(f"Watch list ({len(items)})"), *sections("\n".join(lines))],
    )


def help_reply(ctx: CommandContext) -> ChatReply:
    from bot.commands import chat_commands

    commands = chat_commands()
    lines = [f"`{escape(m.USAGE)}`\n    {escape(m.SUMMARY)}" for _, m in sorted(commands.items())]
    if ctx.requester.is_admin:
        role = "You are an admin: you may check any target and edit the watch list."
    else:
        role = (
            "You may check watch-list targets (and relay targets the config allows); "
            "admins may check anything and edit the watch list."
        )
    plain = "relaywatch commands:\n" + "\n".join(
        escape(f"{m.USAGE} — {m.SUMMARY}") for m in commands.values()
    )
    return ChatReply(
        text=plain,
        blocks=[
            header("relaywatch commands"),
            *sections("\n".join(lines)),
            context(f"{role} Mention me to answer in a thread: `@relaywatch blacklist 192.0.2.1`."),
        ],
        ephemeral=True,
    )


def _who(ctx: CommandContext) -> str:
    user = ctx.requester.user_id
    return "the shell operator" if ctx.requester.channel_id == "shell" else mention(user)


def _added_by(ctx: CommandContext) -> str:
    prefix = "shell" if ctx.requester.channel_id == "shell" else "slack"
    return f"{prefix}:{ctx.requester.user_id}"
