"""Where chat replies go: Slack's Web API or the terminal. The scheduler and commands post here."""

from __future__ import annotations

from typing import Protocol

from bot.render.reply import ChatReply


class ChatPoster(Protocol):
    async def post(self, channel: str, reply: ChatReply, thread_ts: str | None = None) -> str:
        """Posts `reply` (and its thread replies, under it) and returns the new message's ts."""
        ...

    async def update(self, channel: str, ts: str, reply: ChatReply) -> None:
        """Replaces an earlier message, e.g. a progress message with the final result."""
        ...
