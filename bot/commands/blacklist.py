"""/blacklist: is this IP, range, domain or host on a spam blocklist? (No argument: watch list.)"""

from __future__ import annotations

import logging

from bot.checks.blacklist import parse_targets, run_blacklist
from bot.commands.base import CommandContext, CommandUsageError, forwarded_progress, unlink_word
from bot.render.blacklist import chat_reply
from bot.render.reply import ChatReply
from bot.watchlist import blacklist_targets
from handlers.blacklist import BlacklistSetupError, TargetError

NAME = "blacklist"
# the usage hint: Slack's manifest, `/mailhealth help` and usage errors all show it; <x> is a value
HINT = "[<ip> | <cidr> | <domain> | <host> ... | --mx <domain>]"
USAGE = f"/{NAME} {HINT}"
# a check that may take minutes and memory: chat runs a bounded number at once (bot.jobs)
HEAVY = True
SUMMARY = "check addresses and domains on ~60 DNS blocklists (no argument: the watch list)"

log = logging.getLogger("relaywatch.commands.blacklist")


async def run(ctx: CommandContext, text: str) -> ChatReply:
    targets, mx_domains = parse_args(text)
    if not targets and not mx_domains:
        targets = blacklist_targets(ctx.store)
        if not targets:
            raise CommandUsageError(
                "the watch list has no IPs, ranges or domains; name one (`/blacklist 192.0.2.10`)"
                " or ask an admin to run `/mailhealth watch add 192.0.2.10`"
            )
    else:
        try:
            parse_targets(ctx.config, targets, mx_domains)  # bad input: nothing runs
        except TargetError as exc:
            raise CommandUsageError(str(exc)) from None
        for target in [*targets, *mx_domains]:
            ctx.require_watched(target)
    count = len(set(targets)) + len(set(mx_domains))  # a name typed twice is checked once
    await ctx.progress(f"checking {count} target{'s' if count != 1 else ''} on the DNS blocklists…")
    try:
        async with forwarded_progress(ctx.progress) as progress:
            outcome = await run_blacklist(
                ctx.config, targets, mx_domains=mx_domains, progress=progress
            )
    except (TargetError, BlacklistSetupError) as exc:
        raise CommandUsageError(str(exc)) from None
    check_id = ctx.store.record_check(outcome.kind, outcome.subject, outcome.status, outcome.data)
    return chat_reply(outcome, rerun=text.strip(), check_id=check_id)


def parse_args(text: str) -> tuple[list[str], list[str]]:
    """'192.0.2.1 example.com --mx example.org' → (targets, MX domains)."""
    words = text.split()
    targets: list[str] = []
    mx_domains: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        if word == "--mx":
            if index + 1 >= len(words):
                raise CommandUsageError("--mx needs a domain")
            mx_domains.append(unlink_word(words[index + 1]))
            index += 2
            continue
        if word.startswith("-"):
            raise CommandUsageError(f"unknown option {word!r}")
        targets.append(unlink_word(word))
        index += 1
    return targets, mx_domains
