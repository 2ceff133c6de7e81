"""ChatPoster for the terminal: Block Kit rendered as plain text, thread replies indented."""

from __future__ import annotations

import itertools
import os
import re
import sys
import tempfile
from typing import Any, TextIO

from bot.render.reply import ChatReply, readable
from bot.render.terminal import visible

THREAD_INDENT = "    │ "
# every emoji code relaywatch writes; an unknown :code: is left as typed
_EMOJI = {
    ":large_green_circle:": "🟢",
    ":large_yellow_circle:": "🟡",
    ":red_circle:": "🔴",
    ":white_circle:": "⚪",
    ":warning:": "⚠",
    ":no_entry:": "⛔",
    ":white_check_mark:": "✔",
    ":hourglass_flowing_sand:": "⏳",
    ":rotating_light:": "🚨",
    ":eyes:": "👀",
    ":wastebasket:": "🗑",
    ":arrows_counterclockwise:": "🔄",
    ":x:": "✖",
    ":information_source:": "ℹ",
}
_EMOJI_CODE = re.compile(r":[a-z0-9_+-]+:")
_CODE = re.compile(r"`([^`\n]+)`")
_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_([^_\n]+)_(?![\w_])")
_ENTITY = re.compile(r"&(lt|gt|amp);")
_ENTITIES = {"lt": "<", "gt": ">", "amp": "&"}


def emoji_text(text: str) -> str:
    return _EMOJI_CODE.sub(lambda m: _EMOJI.get(m.group(0), m.group(0)), text)


def unescape(text: str) -> str:
    """Slack's three entities back to the characters they stand for, in one pass."""
    return _ENTITY.sub(lambda m: _ENTITIES[m.group(1)], text)


def mrkdwn_text(text: str) -> str:
    """Slack mrkdwn → plain terminal text: code fences, backticks, bold and italics dropped, emoji
    codes drawn, the bot's mentions and links spelled out, escaped text shown as it was.

    Only markup made by bot.render.reply's helpers is read as markup: any other `<…>` is text
    (evidence such as RCPT TO:<a@b>), printed as it is."""
    text = _CODE.sub(r"\1", text.replace("```", ""))
    text = _ITALIC.sub(r"\1", _BOLD.sub(r"\1", text))
    return unescape(readable(emoji_text(text)))


def _as_dict(block: Any) -> dict[str, Any]:
    return block if isinstance(block, dict) else block.to_dict()


def _object_text(obj: dict[str, Any] | None) -> str:
    obj = obj or {}
    text = obj.get("text", "")
    if obj.get("type") == "plain_text":  # no mrkdwn in headers and button labels
        return unescape(readable(emoji_text(text)))
    return mrkdwn_text(text)


def _button_hint(element: dict[str, Any]) -> str:
    label = _object_text(element.get("text"))
    action, value = element.get("action_id", ""), element.get("value", "")
    typed = {
        "rerun": f"/{value}",
        "show_details": f"details {value}",
        "acknowledge": f"ack {value}",
    }
    if action.startswith("contain_"):  # the containment buttons run /contain <value>
        return f"[{label}: /contain {value}]"
    return f"[{label}: {typed[action]}]" if action in typed else f"[{label}]"


def blocks_text(blocks: list[Any]) -> str:
    lines: list[str] = []
    for block in map(_as_dict, blocks):
        kind = block.get("type")
        if kind == "header":
            title = _object_text(block.get("text"))
            lines += [title, "─" * min(max(len(title), 3), 72)]
        elif kind == "section":
            if block.get("text"):
                lines.append(_object_text(block["text"]))
            for field in block.get("fields") or []:
                lines.append("  " + _object_text(field))
        elif kind == "context":
            lines.append("  · " + "  ".join(_object_text(e) for e in block.get("elements", [])))
        elif kind == "divider":
            lines.append("─" * 40)
        elif kind == "actions":
            lines.append("  " + "  ".join(_button_hint(e) for e in block.get("elements", [])))
        elif kind == "rich_text" or kind == "image":
            continue
    return "\n".join(lines)


def reply_text(reply: ChatReply) -> str:
    """What the terminal shows for one message (the `text` fallback when there are no blocks)."""
    body = blocks_text(reply.blocks) if reply.blocks else mrkdwn_text(reply.text)
    if reply.ephemeral:
        body = "(only you see this) " + body
    if reply.file is not None:
        content = reply.file.content
        if isinstance(content, bytes):  # an image: the terminal gets a file to open
            body += f"\n── {reply.file.title}: {saved_file(reply.file.filename, content)} ──"
        else:
            body += f"\n── {reply.file.title} ({reply.file.filename}) ──\n{content.rstrip()}"
    return body


def saved_file(filename: str, content: bytes) -> str:
    """Writes an attachment to a new private temporary file and returns its path."""
    stem, dot, suffix = filename.rpartition(".")
    handle, path = tempfile.mkstemp(prefix=f"relaywatch-{stem or suffix}-", suffix=dot + suffix)
    with os.fdopen(handle, "wb") as out:
        out.write(content)
    return path


class ShellPoster:
    """Prints messages; a message's thread replies (and later replies to it) are indented."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self._ids = itertools.count(1)

    def _print(self, text: str, threaded: bool) -> None:
        prefix = THREAD_INDENT if threaded else ""
        lines = visible(text).splitlines() or [""]
        self.stream.write("".join(f"{prefix}{line}\n" for line in lines) + "\n")
        self.stream.flush()

    async def post(self, channel: str, reply: ChatReply, thread_ts: str | None = None) -> str:
        ts = f"shell.{next(self._ids)}"
        self._print(reply_text(reply), threaded=thread_ts is not None)
        for sub in reply.thread:
            await self.post(channel, sub, thread_ts=thread_ts or ts)
        return ts

    async def update(self, channel: str, ts: str, reply: ChatReply) -> None:
        # A terminal cannot edit what it printed: show the new version as a fresh message.
        self._print(reply_text(reply), threaded=False)
        for sub in reply.thread:
            await self.post(channel, sub, thread_ts=ts)
