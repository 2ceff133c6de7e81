"""ChatPoster over Slack's Web API: messages, edits, thread replies, file uploads, ephemerals."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.render.reply import ChatReply, inert, inert_payload, sections

log = logging.getLogger("relaywatch.slack")


def block_dicts(reply: ChatReply) -> list[dict[str, Any]]:
    """The blocks as sent: every text field made inert (see bot.render.reply.inert)."""
    blocks = reply.blocks or sections(reply.text)
    return inert_payload([b if isinstance(b, dict) else b.to_dict() for b in blocks])


def fallback_text(reply: ChatReply) -> str:
    """The plain-text fallback as sent (notifications, screen readers): inert like the blocks."""
    return inert(reply.text)


class SlackPoster:
    """Delivers ChatReply objects; every message carries its plain-text `text` fallback."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def post(self, channel: str, reply: ChatReply, thread_ts: str | None = None) -> str:
        reply = reply.fitted()
        response = await self.client.chat_postMessage(
            channel=channel,
            text=fallback_text(reply),
            blocks=block_dicts(reply),
            thread_ts=thread_ts,
            unfurl_links=False,
            unfurl_media=False,
        )
        ts = str(response["ts"])
        # Slack threads are one level deep: replies of a thread reply stay in the same thread.
        await self._follow_ups(str(response.get("channel") or channel), thread_ts or ts, reply)
        return ts

    async def update(self, channel: str, ts: str, reply: ChatReply) -> None:
        reply = reply.fitted()
        await self.client.chat_update(
            channel=channel, ts=ts, text=fallback_text(reply), blocks=block_dicts(reply)
        )
        await self._follow_ups(channel, ts, reply)

    async def delete(self, channel: str, ts: str) -> None:
        await self.client.chat_delete(channel=channel, ts=ts)

    async def post_ephemeral(
        self, channel: str, user: str, reply: ChatReply, thread_ts: str | None = None
    ) -> None:
        reply = reply.fitted()
        await self.client.chat_postEphemeral(
            channel=channel,
            user=user,
            text=fallback_text(reply),
            blocks=block_dicts(reply),
            thread_ts=thread_ts,
        )

    async def respond(self, response_url: str, reply: ChatReply, ephemeral: bool = True) -> None:
        """Answers through a slash command's or button's response_url (no channel membership)."""
        reply = reply.fitted()
        webhook = AsyncWebhookClient(response_url, timeout=self.client.timeout)
        response = await webhook.send(
            text=fallback_text(reply),
            blocks=block_dicts(reply),
            response_type="ephemeral" if ephemeral else "in_channel",
            replace_original=False,
        )
        if response.status_code != 200:
            log.warning(
                "response_url answered with an error",
                extra={"status": response.status_code, "body": response.body[:200]},
            )

    async def _follow_ups(self, channel: str, parent_ts: str, reply: ChatReply) -> None:
        if reply.file is not None:
            await self.client.files_upload_v2(
                channel=channel,
                thread_ts=parent_ts,
                content=reply.file.content,
                filename=reply.file.filename,
                title=inert(reply.file.title),
            )
        for sub in reply.thread:
            await self.post(channel, sub, thread_ts=parent_ts)
