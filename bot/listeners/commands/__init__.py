"""Slash commands: /relaycheck, /blacklist, /mailsummary, /mailhealth (and any chat command).

The ack goes back at once with a short "on it"; the work runs as a background task that posts
progress and the result, so Slack's 3-second limit never depends on how long a check takes.
"""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.dispatch import Invocation
from bot.render.reply import escape, inert
from bot.slack.flow import run_command
from bot.slack.services import services_of

# Any slash command routed to this app; unknown names get an ephemeral "unknown command".
ANY_COMMAND = re.compile(r"^/[\w.-]+$")


def register(app: AsyncApp) -> None:
    app.command(ANY_COMMAND)(handle_slash_command)


async def handle_slash_command(ack: AsyncAck, command: dict[str, Any], context: Any) -> None:
    services = services_of(context)
    inv = Invocation(
        command=str(command.get("command") or "").lstrip("/").lower(),
        args=(command.get("text") or "").strip(),
        user_id=str(command.get("user_id") or ""),
        channel_id=str(command.get("channel_id") or ""),
        channel_name=command.get("channel_name") or "",
        source="slack",
    )
    # Admission (rate limit, known command, allowed channel) is in memory; a refusal is answered
    # in the ack itself, so a flood of refused commands costs no Slack API call at all.
    refusal = services.dispatcher.admit(inv)
    if refusal is not None:
        await ack(text=inert(f":no_entry: {refusal.shown}"))
        return
    await ack(text=inert(f":hourglass_flowing_sand: on it: `{escape(inv.line)}`"))
    services.work.spawn(
        run_command(services, inv, response_url=command.get("response_url")), name=inv.line
    )
