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
        command=command["command"].lstrip("/").lower(),
        args=(command.get("text") or "").strip(),
        user_id=command["user_id"],
        channel_id=command["channel_id"],
        channel_name=command.get("channel_name") or "",
        source="slack",
    )
    # the ack goes straight to Slack, past the poster: what the user typed is echoed inert
    await ack(text=inert(f":hourglass_flowing_sand: on it: `{escape(inv.line)}`"))
    services.work.spawn(
        run_command(services, inv, response_url=command.get("response_url")), name=inv.line
    )
