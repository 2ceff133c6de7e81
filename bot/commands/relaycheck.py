"""/relaycheck: test a mail server (or every watched server) for open relaying, from chat."""

from __future__ import annotations

import logging

from bot.checks.relay import chat_policy, lookup_for, run_relay
from bot.commands.base import (
    CommandContext,
    CommandDenied,
    CommandUsageError,
    forwarded_progress,
    unlink_word,
)
from bot.render.relay import chat_reply
from bot.render.reply import ChatReply
from handlers.relay import TargetError, TargetNotAllowed

NAME = "relaycheck"
# the usage hint: Slack's manifest, `/mailhealth help` and usage errors all show it; <x> is a value
HINT = "[<host[:port]> ... | --mx <domain>] [--no-data] [--tls auto|require|off]"
USAGE = f"/{NAME} {HINT}"
# a check that may take minutes and memory: chat runs a bounded number at once (bot.jobs)
HEAVY = True
SUMMARY = "test mail servers for open relaying (no argument: every server on the watch list)"

log = logging.getLogger("relaywatch.commands.relaycheck")


async def run(ctx: CommandContext, text: str) -> ChatReply:
    targets, mx_domains, confirm, tls = parse_args(text)
    limits = ctx.config.limits
    most = (
        limits.admin_relaycheck_max_targets
        if ctx.requester.is_admin
        else limits.relaycheck_max_targets
    )
    if len(targets) + len(mx_domains) > most:
        who = "an admin" if ctx.requester.is_admin else "anyone but an admin"
        raise CommandUsageError(
            f"one /relaycheck checks at most {most} servers for {who}; "
            f"you named {len(targets) + len(mx_domains)}: split them up"
        )
    if not targets and not mx_domains:
        targets = [item.value for item in ctx.store.watch_list("server")]
        if not targets:
            raise CommandUsageError(
                "there are no mail servers on the watch list; name one "
                "(`/relaycheck mx.example.com`) or ask an admin to run "
                "`/mailhealth watch add server mx.example.com`"
            )
    config = ctx.config
    lookup = lookup_for(config)
    policy = await chat_policy(config, lookup, ctx.requester.is_admin, ctx.watch_covers)
    count = len(targets) + len(mx_domains)
    await ctx.progress(
        f"checking {count} mail server{'s' if count != 1 else ''} for open relaying…"
    )
    try:
        async with forwarded_progress(ctx.progress) as progress:
            outcome = await run_relay(
                config,
                targets,
                mx_domains=mx_domains,
                confirm=confirm,
                tls=tls,
                policy=policy,
                lookup=lookup,
                progress=progress,
            )
    except TargetNotAllowed as exc:
        raise CommandDenied(str(exc)) from None
    except TargetError as exc:
        raise CommandUsageError(str(exc)) from None
    check_id = ctx.store.record_check(outcome.kind, outcome.subject, outcome.status, outcome.data)
    return chat_reply(outcome, rerun=text.strip(), check_id=check_id)


def parse_args(text: str) -> tuple[list[str], list[str], bool, str | None]:
    """'mx.example.com:25 --mx example.org --no-data' → (targets, mx domains, confirm, tls);
    confirm (DATA after an accepted RCPT) is on unless --no-data; --confirm is accepted."""
    words = text.split()
    targets: list[str] = []
    mx_domains: list[str] = []
    confirm = True
    tls: str | None = None
    index = 0
    while index < len(words):
        word = words[index]
        if word in ("--mx", "--tls"):
            if index + 1 >= len(words):
                raise CommandUsageError(f"{word} needs a value")
            value = words[index + 1]
            if word == "--mx":
                mx_domains.append(value)
            elif value in ("auto", "require", "off"):
                tls = value
            else:
                raise CommandUsageError(f"--tls takes auto, require or off, not {value!r}")
            index += 2
            continue
        if word == "--no-data":
            confirm = False
        elif word == "--confirm":
            pass  # the default now; accepted so old habits and saved commands still work
        elif word.startswith("-"):
            raise CommandUsageError(f"unknown option {word!r}")
        else:
            targets.append(unlink_word(word))
        index += 1
    return targets, mx_domains, confirm, tls
