"""Events: `@relaywatch blacklist 192.0.2.1` runs the command and answers in a thread."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.dispatch import Invocation, parse_command_line
from bot.render.reply import plain_reply
from bot.slack.flow import answer_privately, run_command
from bot.slack.services import services_of

MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")
# Slack turns "example.com" in a message into <http://example.com|example.com>; keep the label.
LINK = re.compile(r"<(?:https?://|mailto:)?([^>|]+)(?:\|([^>]*))?>")


def register(app: AsyncApp) -> None:
    app.event("app_mention")(handle_mention)


def mention_command(text: str) -> str:
    """'<@U0BOT> /blacklist 192.0.2.1' → 'blacklist 192.0.2.1'; empty → 'mailhealth help'."""
    line = MENTION.sub(" ", text)
    line = LINK.sub(lambda m: m.group(2) or m.group(1), line)
    line = line.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()
    return line.lstrip("/") or "mailhealth help"


async def handle_mention(event: dict[str, Any], body: dict[str, Any], context: Any) -> None:
    # Bolt acknowledges events itself; the command runs in the background like a slash command.
    if event.get("bot_id") or not event.get("user"):
        return
    services = services_of(context)
    if not services.seen_events.first_time(str(body.get("event_id") or "")):
        return  # Slack's redelivery of an event already being handled
    name, args = parse_command_line(mention_command(event.get("text") or ""))
    inv = Invocation(
        command=name,
        args=args,
        user_id=str(event["user"]),
        channel_id=str(event.get("channel") or ""),
        source="mention",
        thread_ts=event.get("thread_ts") or event["ts"],
    )
    thread_ts = inv.thread_ts
    refusal = services.dispatcher.admit(inv)
    if refusal is not None:
        # a mention has no ack to answer in: tell the user once a minute, then stay quiet
        if refusal.first:
            reply = plain_reply(f":no_entry: {refusal.shown}", ephemeral=True)
            services.work.spawn(
                answer_privately(services, inv, reply, thread_ts, None), name="refusal"
            )
        return
    services.work.spawn(run_command(services, inv, thread_ts=thread_ts), name=f"mention {inv.line}")
