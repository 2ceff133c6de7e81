"""/contain: block, hold or throttle a compromised account, host or sender, with an expiry.

Admins only, for every subcommand: the entry changes what the mail server accepts (through the
policy service), and the list names accounts under suspicion. The alert buttons run this same
command (value = its arguments), so a button press is authorized and audited exactly like typing.
"""

from __future__ import annotations

import re

from bot.commands.base import CommandContext, CommandDenied, CommandUsageError
from bot.config import Config
from bot.containment import apply_request, limits_of
from bot.render.containment import chat_reply, who
from bot.render.reply import ChatReply, escape, plain_reply
from handlers.policy.containment import ContainmentError, parse_request

NAME = "contain"
# the forms an admin types, from the same grammar the parser reads (tested: each form parses);
# kinds: account (a SASL login, the default for a name), host (an IP or CIDR), sender,
# sender_domain; a throttle takes a rate like 20/h, a block --cut to end live sessions too
HINT = (
    "block|hold [account] <account> [<duration>] [<reason>] | block|hold host <ip> [<duration>] | "
    "throttle [account] <account> <rate> [<duration>] | release account <account> | list [--all]"
)
USAGE = f"/{NAME} {HINT}"
SUMMARY = "block, hold or throttle a compromised account or host, with an expiry (admins)"

# Slack sends addresses and names as links: <mailto:a@b.example|a@b.example>, <http://x|x>
_LINK = re.compile(r"<(?:mailto:|https?://)?([^>|]*)(?:\|([^>]*))?>")


def parse_args(text: str, config: Config | None = None) -> object:
    """The request in the text; bad input raises CommandUsageError (nothing changes)."""
    words = unlink(text).split()
    if words and words[0].lower() == "dismiss":
        return words
    try:
        return parse_request(words, limits_of(config or Config()))
    except ContainmentError as exc:
        raise CommandUsageError(str(exc)) from None


async def run(ctx: CommandContext, text: str) -> ChatReply:
    if not ctx.requester.is_admin:
        raise CommandDenied(
            "only relaywatch admins may contain accounts or hosts; ask an admin "
            "(the alert's buttons and `/contain` work for them)"
        )
    words = unlink(text).split()
    if words and words[0].lower() == "dismiss":
        return dismiss(ctx, words[1:])
    try:
        request = parse_request(words, limits_of(ctx.config))
    except ContainmentError as exc:
        raise CommandUsageError(str(exc)) from None
    outcome = apply_request(
        ctx.store,
        request,
        set_by=ctx.requester.user_id,
        channel=ctx.requester.channel_id,
        thread_ts=ctx.thread_ts,
        clock=ctx.clock,
    )
    return chat_reply(outcome, ctx.clock(), ctx.config.policy.listen)


def dismiss(ctx: CommandContext, words: list[str]) -> ChatReply:
    """The alert's Dismiss button: close the alert, contain nothing."""
    if len(words) != 1 or not words[0].isdigit():
        raise CommandUsageError("dismiss takes an alert number")
    alert = next((a for a in ctx.store.alerts("open") if a.id == int(words[0])), None)
    if alert is None:
        return plain_reply(f"alert #{words[0]} is not open (any more)", ephemeral=True)
    ctx.store.acknowledge_alert(alert.id, ctx.requester.user_id)
    alert = ctx.store.open_alert(alert.subject_key) or alert
    ctx.store.update_alert(alert, alert.summary + " (dismissed)", close=True)
    return plain_reply(
        f":heavy_minus_sign: Dismissed by {who(ctx.requester.user_id)}: nothing was contained "
        f"for `{escape(alert.subject_key.split(':', 2)[-1])}`; the alert is closed."
    )


def unlink(text: str) -> str:
    return _LINK.sub(lambda m: m.group(2) or m.group(1), text)
