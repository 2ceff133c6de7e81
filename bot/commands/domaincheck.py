"""/domaincheck: does this sending domain pass what Gmail, Yahoo and Microsoft check?"""

from __future__ import annotations

from bot.checks.domaincheck import parse_inputs, run_domaincheck, watched_domains
from bot.commands.base import CommandContext, CommandUsageError, forwarded_progress, unlink_word
from bot.render.domaincheck import chat_reply
from bot.render.reply import ChatReply

NAME = "domaincheck"
HINT = "[<domain> ...] [--ip <ip> ...] [--selector <selector> ...] [--helo <host>]"
USAGE = f"/{NAME} {HINT}"
SUMMARY = (
    "check a sending domain's SPF, DKIM, DMARC, reverse DNS, MTA-STS and TLS-RPT "
    "(no argument: the watched domains)"
)

_OPTIONS = {"--ip": "ips", "--selector": "selectors", "--helo": "helo"}


async def run(ctx: CommandContext, text: str) -> ChatReply:
    domains, options = parse_args(text)
    if not domains:
        domains = watched_domains(ctx.store)
        if not domains:
            raise CommandUsageError(
                "the watch list has no domains; name one (`/domaincheck example.com`) or ask an "
                "admin to run `/mailhealth watch add example.com`"
            )
    try:  # bad input: nothing runs
        parse_inputs(ctx.config, domains, options["ips"], options["selectors"], options["helo"])
    except ValueError as exc:
        raise CommandUsageError(str(exc)) from None
    for target in [*domains, *options["ips"]]:
        ctx.require_watched(target)
    count = len(domains)
    await ctx.progress(
        f"checking SPF, DKIM, DMARC, reverse DNS and MTA-STS of {count} "
        f"domain{'s' if count != 1 else ''}…"
    )
    try:
        async with forwarded_progress(ctx.progress) as progress:
            outcome = await run_domaincheck(
                ctx.config,
                domains,
                ips=options["ips"],
                selectors=options["selectors"],
                helo=options["helo"],
                progress=progress,
                store=ctx.store,
            )
    except ValueError as exc:
        raise CommandUsageError(str(exc)) from None
    check_id = ctx.store.record_check(outcome.kind, outcome.subject, outcome.status, outcome.data)
    return chat_reply(outcome, rerun=text.strip(), check_id=check_id)


def parse_args(text: str) -> tuple[list[str], dict[str, list[str]]]:
    """'example.com --ip 192.0.2.1 --selector s1' → (domains, {ips, selectors, helo})."""
    words = text.split()
    domains: list[str] = []
    options: dict[str, list[str]] = {key: [] for key in _OPTIONS.values()}
    index = 0
    while index < len(words):
        word = words[index]
        if word in _OPTIONS:
            if index + 1 >= len(words):
                raise CommandUsageError(f"{word} needs a value")
            options[_OPTIONS[word]].append(unlink_word(words[index + 1]))
            index += 2
            continue
        if word.startswith("-"):
            raise CommandUsageError(f"unknown option {word!r}")
        domains.append(unlink_word(word))
        index += 1
    return domains, options
