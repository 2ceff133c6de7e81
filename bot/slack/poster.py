"""ChatPoster over Slack's Web API: messages, edits, thread replies, file uploads, ephemerals.

Every payload passes `limits.fit` first. Calls Slack may answer differently a moment later (429
with Retry-After, HTTP 5xx, `internal_error`, a dropped connection) are retried a bounded number
of times; a payload Slack refuses (`invalid_blocks`, `msg_too_long`, any other `ok: false`) is sent
again as plain text with the whole answer attached as a file. Each such failure is logged and
reported to `on_failure` (the bot records it in the store).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.render.reply import ChatReply, ReplyFile, inert, inert_payload, sections
from bot.slack.limits import as_plain_text, fit
from bot.slack.limits import block_dicts as _dicts

log = logging.getLogger("relaywatch.slack")

# errors that mean "the bot cannot post here at all": a plain-text retry would fail the same way
NOT_DELIVERABLE = (
    "not_in_channel",
    "channel_not_found",
    "is_archived",
    "not_authed",
    "invalid_auth",
    "account_inactive",
    "token_revoked",
    "missing_scope",
    "message_not_found",
    "cant_update_message",
    "edit_window_closed",
)
# ok:false errors Slack documents as temporary
RETRYABLE_ERRORS = ("internal_error", "fatal_error", "service_unavailable", "request_timeout")
PLAIN_TEXT_CHARS = 3000


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6  # in all, the first included
    backoff: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 15.0)  # for 5xx and connection errors
    max_retry_after: float = 60.0  # a longer Retry-After is not waited for: the call fails
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


@dataclass(frozen=True)
class DeliveryFailure:
    method: str
    error: str
    channel: str
    recovered: str  # what was done instead ("" when nothing could be)


class DeliveryError(Exception):
    """Slack did not take a message even after retries and the plain-text fallback."""


def block_dicts(reply: ChatReply) -> list[dict[str, Any]]:
    """The blocks as sent: every text field made inert (see bot.render.reply.inert)."""
    return inert_payload(_dicts(reply.blocks or sections(reply.text)))


def fallback_text(reply: ChatReply) -> str:
    """The plain-text fallback as sent (notifications, screen readers): inert like the blocks."""
    return inert(reply.text)


def slack_error(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError):
        status = getattr(exc.response, "status_code", 200)
        error = str(exc.response.get("error") or "") if _is_mapping(exc.response) else ""
        return error or f"http_{status}"
    return type(exc).__name__


def _is_mapping(response: Any) -> bool:
    try:
        response.get("error")
    except Exception:
        return False
    return True


class SlackPoster:
    """Delivers ChatReply objects; every message carries its plain-text `text` fallback."""

    def __init__(
        self,
        client: AsyncWebClient,
        retry: RetryPolicy | None = None,
        on_failure: Callable[[DeliveryFailure], None] | None = None,
    ) -> None:
        self.client = client
        self.retry = retry or RetryPolicy()
        self.on_failure = on_failure

    # -- calls with retries ------------------------------------------------------------------

    async def _call(self, method: str, **kwargs: Any) -> Any:
        """`client.<method>(**kwargs)`, retried while Slack's answer says "try again"."""
        for attempt in range(self.retry.attempts):
            try:
                return await getattr(self.client, method)(**kwargs)
            except SlackApiError as exc:
                wait = self._wait_for(exc, attempt)
                if wait is None or attempt == self.retry.attempts - 1:
                    raise
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                if attempt == self.retry.attempts - 1:
                    raise
                wait = self._backoff(attempt)
                log.info("Slack call failed; retrying", extra={"method": method, "error": str(exc)})
            await self.retry.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int) -> float:
        backoff = self.retry.backoff or (1.0,)
        return backoff[min(attempt, len(backoff) - 1)]

    def _wait_for(self, exc: SlackApiError, attempt: int) -> float | None:
        status = getattr(exc.response, "status_code", 200)
        if status == 429:
            after = _retry_after(getattr(exc.response, "headers", {}) or {})
            return after if after <= self.retry.max_retry_after else None
        if status >= 500 or slack_error(exc) in RETRYABLE_ERRORS:
            return self._backoff(attempt)
        return None

    def _failed(self, method: str, error: str, channel: str, recovered: str) -> None:
        log.warning(
            "Slack refused a message",
            extra={"method": method, "error": error, "channel": channel, "recovered": recovered},
        )
        if self.on_failure is not None:
            try:
                self.on_failure(DeliveryFailure(method, error, channel, recovered))
            except Exception:
                log.exception("cannot record a delivery failure")

    # -- ChatPoster ----------------------------------------------------------------------------

    async def post(self, channel: str, reply: ChatReply, thread_ts: str | None = None) -> str:
        reply = fit(reply, sections(reply.text))
        try:
            response = await self._call(
                "chat_postMessage",
                channel=channel,
                text=fallback_text(reply),
                blocks=block_dicts(reply),
                thread_ts=thread_ts,
                unfurl_links=False,
                unfurl_media=False,
            )
        except SlackApiError as exc:
            if slack_error(exc) in NOT_DELIVERABLE:
                raise
            return await self._post_plain(channel, reply, thread_ts, slack_error(exc))
        ts = str(response["ts"])
        # Slack threads are one level deep: replies of a thread reply stay in the same thread.
        await self._follow_ups(str(response.get("channel") or channel), thread_ts or ts, reply)
        return ts

    async def _post_plain(
        self, channel: str, reply: ChatReply, thread_ts: str | None, error: str
    ) -> str:
        """The fallback: the answer as plain text, the whole of it attached as a file."""
        text, file = _plain(reply)
        try:
            response = await self._call(
                "chat_postMessage",
                channel=channel,
                text=text,
                thread_ts=thread_ts,
                unfurl_links=False,
                unfurl_media=False,
            )
        except SlackApiError as exc:
            self._failed("chat.postMessage", error, channel, "")
            raise DeliveryError(
                f"Slack refused the message ({error}, then {slack_error(exc)})"
            ) from exc
        ts = str(response["ts"])
        self._failed("chat.postMessage", error, channel, "sent as plain text")
        await self._upload(str(response.get("channel") or channel), thread_ts or ts, file)
        return ts

    async def update(self, channel: str, ts: str, reply: ChatReply) -> None:
        reply = fit(reply, sections(reply.text))
        try:
            await self._call(
                "chat_update",
                channel=channel,
                ts=ts,
                text=fallback_text(reply),
                blocks=block_dicts(reply),
            )
        except SlackApiError as exc:
            error = slack_error(exc)
            if error in NOT_DELIVERABLE:
                raise
            text, file = _plain(reply)
            try:
                # blocks=[] removes the old message's blocks (the progress message's)
                await self._call("chat_update", channel=channel, ts=ts, text=text, blocks=[])
            except SlackApiError as again:
                self._failed("chat.update", error, channel, "")
                raise DeliveryError(
                    f"Slack refused the edit ({error}, then {slack_error(again)})"
                ) from again
            self._failed("chat.update", error, channel, "sent as plain text")
            await self._upload(channel, ts, file)
            return
        await self._follow_ups(channel, ts, reply)

    async def delete(self, channel: str, ts: str) -> None:
        await self._call("chat_delete", channel=channel, ts=ts)

    async def post_ephemeral(
        self, channel: str, user: str, reply: ChatReply, thread_ts: str | None = None
    ) -> None:
        reply = fit(reply, sections(reply.text))
        try:
            await self._call(
                "chat_postEphemeral",
                channel=channel,
                user=user,
                text=fallback_text(reply),
                blocks=block_dicts(reply),
                thread_ts=thread_ts,
            )
        except SlackApiError as exc:
            if slack_error(exc) in NOT_DELIVERABLE:
                raise
            text, _ = _plain(reply)
            await self._call(
                "chat_postEphemeral", channel=channel, user=user, text=text, thread_ts=thread_ts
            )
            self._failed("chat.postEphemeral", slack_error(exc), channel, "sent as plain text")

    async def respond(self, response_url: str, reply: ChatReply, ephemeral: bool = True) -> None:
        """Answers through a slash command's or button's response_url (no channel membership)."""
        reply = fit(reply, sections(reply.text))
        webhook = AsyncWebhookClient(response_url, timeout=self.client.timeout)
        kind = "ephemeral" if ephemeral else "in_channel"
        response = await self._send_webhook(webhook, reply.text, block_dicts(reply), kind)
        if response is not None and response.status_code != 200:
            text, _ = _plain(reply)
            again = await self._send_webhook(webhook, text, None, kind)
            recovered = "sent as plain text" if again and again.status_code == 200 else ""
            self._failed("respond", f"http_{response.status_code}", "", recovered)

    async def _send_webhook(
        self,
        webhook: AsyncWebhookClient,
        text: str,
        blocks: list[dict[str, Any]] | None,
        kind: str,
    ) -> Any:
        for attempt in range(self.retry.attempts):
            try:
                response = await webhook.send(
                    text=text, blocks=blocks, response_type=kind, replace_original=False
                )
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                if attempt == self.retry.attempts - 1:
                    self._failed("respond", type(exc).__name__, "", "")
                    return None
                await self.retry.sleep(self._backoff(attempt))
                continue
            retryable = response.status_code == 429 or response.status_code >= 500
            if not retryable or attempt == self.retry.attempts - 1:
                return response
            after = _retry_after(response.headers or {}) if response.status_code == 429 else None
            await self.retry.sleep(after if after is not None else self._backoff(attempt))
        return None  # pragma: no cover

    async def _follow_ups(self, channel: str, parent_ts: str, reply: ChatReply) -> None:
        if reply.file is not None:
            await self._upload(channel, parent_ts, reply.file)
        for sub in reply.thread:
            await self.post(channel, sub, thread_ts=parent_ts)

    async def _upload(self, channel: str, thread_ts: str, file: ReplyFile | None) -> None:
        if file is None:
            return
        try:
            await self._call(
                "files_upload_v2",
                channel=channel,
                thread_ts=thread_ts,
                content=file.content,
                filename=file.filename,
                title=inert(file.title),
            )
        except SlackApiError as exc:
            # the message itself went out; a lost attachment is recorded, not fatal
            self._failed("files.upload", slack_error(exc), channel, "")


def _plain(reply: ChatReply) -> tuple[str, ReplyFile | None]:
    """The fallback text (inert, like every text Slack renders), and a file when the text cannot
    hold everything the reply said."""
    whole = as_plain_text(reply)
    if len(whole) <= PLAIN_TEXT_CHARS and reply.file is None:
        return inert(whole) or " ", None
    short = whole if len(whole) <= PLAIN_TEXT_CHARS else whole[: PLAIN_TEXT_CHARS - 1] + "…"
    text = inert(f"{short}\n(the whole answer is attached as answer.txt)")
    content = whole if reply.file is None else f"{whole}\n\n{reply.file.content}"
    return text, ReplyFile("answer.txt", "The whole answer", content)


def _retry_after(headers: Any) -> float:
    value: Any = None
    for key in ("Retry-After", "retry-after"):
        try:
            value = headers.get(key)
        except Exception:
            value = None
        if value:
            break
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    try:
        return max(0.0, float(str(value))) if value is not None else 1.0
    except ValueError:
        return 1.0
