"""One command's trip through Slack: progress message, dispatch, then result or ephemeral answer."""

from __future__ import annotations

import logging

import aiohttp
from slack_sdk.errors import SlackApiError

from bot.delivery import ProgressMessage
from bot.dispatch import Invocation, new_error_id
from bot.render.reply import ChatReply, context, escape, mention, plain_reply
from bot.slack.poster import DeliveryError, slack_error
from bot.slack.services import BotServices

log = logging.getLogger("relaywatch.slack")

# errors that mean "the bot cannot post in this channel", which an admin fixes by inviting it
NOT_A_MEMBER = ("not_in_channel", "channel_not_found", "is_archived")


async def run_command(
    services: BotServices,
    inv: Invocation,
    *,
    thread_ts: str | None = None,
    response_url: str | None = None,
) -> str | None:
    """Runs `inv` and delivers its reply; returns the result message's ts (None: ephemeral)."""
    progress = ProgressMessage(
        services.poster,
        inv.channel_id,
        title=f"`{escape(inv.line)}`: checking…",
        thread_ts=thread_ts,
        interval=services.progress_interval,
        first_after=services.progress_first_after,
    )
    progress.start()
    result = await services.dispatcher.run(inv, progress)
    reply = result.reply
    if reply.ephemeral:
        await progress.discard()
        await answer_privately(services, inv, reply, thread_ts, response_url)
        return None
    reply = with_requester(reply, inv)
    try:
        return await progress.finish(reply)
    except (DeliveryError, aiohttp.ClientError, OSError, TimeoutError) as exc:
        await _deliver_privately(services, inv, reply, thread_ts, response_url, progress, exc)
        return None
    except SlackApiError as exc:
        if exc.response.get("error") not in NOT_A_MEMBER:
            await _deliver_privately(services, inv, reply, thread_ts, response_url, progress, exc)
            return None
        hint = (
            f"I cannot post in this channel ({exc.response.get('error')}): invite me with "
            "`/invite @relaywatch`, or run the command where I am a member. The result:"
        )
        await answer_privately(
            services,
            inv,
            ChatReply(
                text=f"{hint}\n{reply.text}", blocks=[*plain_reply(hint).blocks, *reply.blocks]
            ),
            thread_ts,
            response_url,
        )
        return None


async def _deliver_privately(
    services: BotServices,
    inv: Invocation,
    reply: ChatReply,
    thread_ts: str | None,
    response_url: str | None,
    progress: ProgressMessage,
    exc: BaseException,
) -> None:
    """The channel would not take the result even after retries: the requester still gets it."""
    error_id = new_error_id()
    log.warning(
        "cannot deliver a result to the channel",
        extra={"error_id": error_id, "error": slack_error(exc), "command": inv.command},
    )
    await progress.discard()
    note = (
        f"I could not post this in the channel (Slack said {slack_error(exc)}; "
        f"error id {error_id})."
    )
    private = ChatReply(
        text=f"{note}\n{reply.text}", blocks=[*plain_reply(note).blocks, *reply.blocks]
    )
    try:
        await answer_privately(services, inv, private, thread_ts, response_url)
    except Exception:
        log.exception("cannot deliver the result at all", extra={"error_id": error_id})


def with_requester(reply: ChatReply, inv: Invocation) -> ChatReply:
    """Adds who asked for this, so a result in a busy channel explains itself."""
    if not reply.blocks:
        return reply
    note = context(f"{mention(inv.user_id)} ran `{escape(inv.line)}`")
    return ChatReply(
        text=reply.text,
        blocks=[*reply.blocks, note],
        thread=reply.thread,
        file=reply.file,
        ephemeral=reply.ephemeral,
    )


async def answer_privately(
    services: BotServices,
    inv: Invocation,
    reply: ChatReply,
    thread_ts: str | None,
    response_url: str | None,
) -> None:
    if response_url:
        await services.poster.respond(response_url, reply)
    else:
        await services.poster.post_ephemeral(inv.channel_id, inv.user_id, reply, thread_ts)
