"""ChatPoster for the terminal: Block Kit rendered as plain text, thread replies indented."""

from __future__ import annotations

import itertools
import os
import re
import sys
import tempfile
from typing import Any, TextIO

from bot.render.reply import ChatReply

THREAD_INDENT = "    │ "
_EMOJI = {
    ":large_green_circle:": "🟢",
    ":large_yellow_circle:": "🟡",
    ":red_circle:": "🔴",
    ":white_circle:": "⚪",
    ":warning:": "⚠",
    ":no_entry:": "⛔",
    ":white_check_mark:": "✔",
    ":hourglass_flowing_sand:": "⏳",
}
_LINK = re.compile(r"<([^>|]+)\|([^>]*)>")
_BARE = re.compile(r"<([@#!]?)([^>]+)>")
_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_([^_\n]+)_(?![\w_])")


def mrkdwn_text(text: str) -> str:
    """Slack mrkdwn → terminal text: links and mentions spelled out, code fences dropped."""
    text = text.replace("```", "")

    def labelled(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        if target.startswith(("@", "#")):
            return target[0] + label
        return f"{label} ({target})" if label and label != target else target

    text = _LINK.sub(labelled, text)
    text = _BARE.sub(lambda m: (m.group(1) if m.group(1) != "!" else "@") + m.group(2), text)
    text = _ITALIC.sub(r"\1", _BOLD.sub(r"\1", text))
    for code, symbol in _EMOJI.items():
        text = text.replace(code, symbol)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _as_dict(block: Any) -> dict[str, Any]:
    return block if isinstance(block, dict) else block.to_dict()


def _object_text(obj: dict[str, Any] | None) -> str:
    obj = obj or {}
    text = obj.get("text", "")
    if obj.get("type") == "plain_text":  # shown verbatim by Slack too (headers, button labels)
        for code, symbol in _EMOJI.items():
            text = text.replace(code, symbol)
        return text
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
        lines = text.splitlines() or [""]
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
