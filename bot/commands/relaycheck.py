"""/relaycheck: test a mail server (or every watched server) for open relaying, from chat."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from bot.checks.relay import chat_policy, lookup_for, run_relay
from bot.commands.base import CommandContext, CommandDenied, CommandUsageError
from bot.render.relay import chat_reply
from bot.render.reply import ChatReply
from handlers.relay import TargetError, TargetNotAllowed

NAME = "relaycheck"
USAGE = "/relaycheck [host[:port] ... | --mx domain] [--confirm] [--tls auto|require|off]"
SUMMARY = "test mail servers for open relaying (no argument: every server on the watch list)"

log = logging.getLogger("relaywatch.commands.relaycheck")


async def run(ctx: CommandContext, text: str) -> ChatReply:
    targets, mx_domains, confirm, tls = parse_args(text)
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
    forward = _LatestProgress(ctx.progress)
    forwarder = asyncio.create_task(forward.run())
    try:
        outcome = await run_relay(
            config,
            targets,
            mx_domains=mx_domains,
            confirm=confirm,
            tls=tls,
            policy=policy,
            lookup=lookup,
            progress=forward,
        )
    except TargetNotAllowed as exc:
        raise CommandDenied(str(exc)) from None
    except TargetError as exc:
        raise CommandUsageError(f"{exc}. Usage: {USAGE}") from None
    finally:
        forwarder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await forwarder
    ctx.store.record_check(outcome.kind, outcome.subject, outcome.status, outcome.data)
    return chat_reply(outcome, rerun=text.strip())


def parse_args(text: str) -> tuple[list[str], list[str], bool, str | None]:
    """'mx.example.com:25 --mx example.org --confirm' → (targets, mx domains, confirm, tls)."""
    words = text.split()
    targets: list[str] = []
    mx_domains: list[str] = []
    confirm = False
    tls: str | None = None
    index = 0
    while index < len(words):
        word = words[index]
        if word in ("--mx", "--tls"):
            if index + 1 >= len(words):
                raise CommandUsageError(f"{word} needs a value. Usage: {USAGE}")
            value = words[index + 1]
            if word == "--mx":
                mx_domains.append(value)
            elif value in ("auto", "require", "off"):
                tls = value
            else:
                raise CommandUsageError(f"--tls takes auto, require or off, not {value!r}")
            index += 2
            continue
        if word == "--confirm":
            confirm = True
        elif word.startswith("-"):
            raise CommandUsageError(f"unknown option {word!r}. Usage: {USAGE}")
        else:
            targets.append(_unlink(word))
        index += 1
    return targets, mx_domains, confirm, tls


def _unlink(word: str) -> str:
    # Slack turns names into links: <http://mx.example.com|mx.example.com> or <mailto:…|…>
    if word.startswith("<") and word.endswith(">"):
        inner = word[1:-1]
        return inner.partition("|")[2] or inner.removeprefix("http://").removeprefix("https://")
    return word


class _LatestProgress:
    """Engines report progress synchronously; chat updates are async and throttled by the
    adapter. Forward only the newest sentence, one update at a time."""

    def __init__(self, send: Callable[[str], Awaitable[None]]) -> None:
        self.send = send
        self.latest = ""
        self.changed = asyncio.Event()

    def __call__(self, text: str) -> None:
        self.latest = text
        self.changed.set()

    async def run(self) -> None:
        while True:
            await self.changed.wait()
            self.changed.clear()
            try:
                await self.send(self.latest)
            except Exception:  # a failed progress update must not fail the check
                log.warning("progress update failed", exc_info=True)
