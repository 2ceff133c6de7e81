"""Slack's payload limits, enforced at one point just before anything is sent.

Renderers may build whatever they like; `fit` turns a ChatReply into messages Slack accepts:
long section texts are split, over-long labels and values are cut, extra context elements and
buttons are regrouped, blocks past 50 move into thread replies, and a fallback text past 40,000
characters is shortened with the whole text attached as a file. `violations` states the same
rules as checks (the tests' Slack stand-in runs it on every payload it receives).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bot.render.reply import ChatReply, ReplyFile, sections

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_SECTION_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_MESSAGE_TEXT = 40_000
MAX_CONTEXT_ELEMENTS = 10
MAX_CONTEXT_TEXT = 3000  # per element
MAX_ACTIONS_ELEMENTS = 25
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_HEADER_TEXT = 150
MAX_ACTION_ID = 255
MAX_URL = 3000
# a shortened fallback text keeps this much, so the notification still says what happened
SHORT_TEXT = 3000

CUT = "…"


def block_dicts(blocks: list[Any]) -> list[dict[str, Any]]:
    return [b if isinstance(b, dict) else b.to_dict() for b in blocks]


def fit(reply: ChatReply, default_blocks: list[Any] | None = None) -> ChatReply:
    """`reply` as messages within every limit (this one, plus thread replies and a file)."""
    blocks: list[dict[str, Any]] = []
    # a reply with no blocks is sent as sections of its text: fit those too
    for block in block_dicts(reply.blocks or default_blocks or sections(reply.text)):
        blocks.extend(_fit_block(block))
    thread = list(reply.thread)
    if len(blocks) > MAX_BLOCKS:
        keep, rest = blocks[: MAX_BLOCKS - 1], blocks[MAX_BLOCKS - 1 :]
        note = _context_block("continued in the thread")
        blocks = [*keep, note]
        thread.insert(0, ChatReply(text="(continued)", blocks=rest))
    text = reply.text or " "
    file = reply.file
    if sent_length(text) > MAX_MESSAGE_TEXT:
        full = ReplyFile("message.txt", "The whole message", text)
        text = _cut(text, SHORT_TEXT - 60) + "\n(the whole text is attached as message.txt)"
        if file is None:
            file = full
        else:
            thread.append(ChatReply(text="The whole message is attached.", file=full))
    return replace(
        reply,
        text=text,
        blocks=blocks,
        thread=[fit(sub) for sub in thread],
        file=file,
    )


def sent_length(text: str) -> int:
    """Length as Slack will count it: the poster makes every < and > inert (&lt; &gt;) after
    fitting, so each counts four (an over-estimate for the bot's own links, never under)."""
    return len(text) + 3 * (text.count("<") + text.count(">"))


def _prefix_within(text: str, limit: int) -> int:
    """The longest prefix whose sent length fits `limit`, never ending inside an &entity;."""
    total = 0
    for index, char in enumerate(text):
        total += 4 if char in "<>" else 1
        if total > limit:
            amp = text.rfind("&", max(0, index - 8), index)
            return amp if amp > 0 and ";" not in text[amp:index] else index
    return len(text)


def _cut(text: str, limit: int) -> str:
    if sent_length(text) <= limit:
        return text
    return text[: _prefix_within(text, limit - len(CUT))] + CUT


def _context_block(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _split_text(text: str, limit: int) -> list[str]:
    """Pieces of at most `limit` characters, split at line ends where possible."""
    pieces: list[str] = []
    while sent_length(text) > limit:
        within = max(1, _prefix_within(text, limit))
        at = text.rfind("\n", 0, within)
        at = within if at <= 0 else at
        pieces.append(text[:at])
        text = text[at:].lstrip("\n") if at < within else text[at:]
    pieces.append(text)
    return [p if p.strip() else " " for p in pieces]


def _fit_block(block: dict[str, Any]) -> list[dict[str, Any]]:
    kind = block.get("type")
    if kind == "section":
        return _fit_section(block)
    if kind == "header":
        text = dict(block.get("text") or {"type": "plain_text", "text": " "})
        text["text"] = _cut(str(text.get("text") or " "), MAX_HEADER_TEXT)
        return [{**block, "text": text}]
    if kind == "context":
        return _fit_context(block)
    if kind == "actions":
        return _fit_actions(block)
    return [block]


def _fit_section(block: dict[str, Any]) -> list[dict[str, Any]]:
    out = dict(block)
    fields = out.get("fields")
    if fields:
        out["fields"] = [
            {**f, "text": _cut(str(f.get("text") or " "), MAX_FIELD_TEXT)}
            for f in fields[:MAX_SECTION_FIELDS]
        ]
    text = out.get("text")
    if not text or sent_length(str(text.get("text") or "")) <= MAX_SECTION_TEXT:
        return [out]
    body = str(text["text"])
    fenced = text.get("type") == "mrkdwn" and body.startswith("```") and body.endswith("```")
    if fenced:  # keep each piece a code block of its own
        inner = _split_text(body[3:-3], MAX_SECTION_TEXT - 6)
        pieces = [f"```{p}```" for p in inner]
    else:
        pieces = _split_text(body, MAX_SECTION_TEXT)
    sections = [{"type": "section", "text": {**text, "text": p}} for p in pieces]
    # accessories and fields stay with the first piece; block ids must stay unique
    first = {k: v for k, v in out.items() if k not in ("text",)}
    sections[0] = {**first, "text": sections[0]["text"]}
    return sections


def _fit_context(block: dict[str, Any]) -> list[dict[str, Any]]:
    elements = []
    for element in block.get("elements") or []:
        if element.get("type") in ("mrkdwn", "plain_text"):
            element = {**element, "text": _cut(str(element.get("text") or " "), MAX_CONTEXT_TEXT)}
        elements.append(element)
    groups = [
        elements[i : i + MAX_CONTEXT_ELEMENTS]
        for i in range(0, max(len(elements), 1), MAX_CONTEXT_ELEMENTS)
    ]
    base = {k: v for k, v in block.items() if k not in ("elements", "block_id")}
    out = [{**base, "elements": g} for g in groups if g]
    if out and "block_id" in block:
        out[0]["block_id"] = block["block_id"]
    return out or [block]


def _fit_actions(block: dict[str, Any]) -> list[dict[str, Any]]:
    elements = [_fit_element(e) for e in block.get("elements") or []]
    base = {k: v for k, v in block.items() if k not in ("elements", "block_id")}
    groups = [
        elements[i : i + MAX_ACTIONS_ELEMENTS]
        for i in range(0, max(len(elements), 1), MAX_ACTIONS_ELEMENTS)
    ]
    out = [{**base, "elements": g} for g in groups if g]
    if out and "block_id" in block:
        out[0]["block_id"] = block["block_id"]
    return out or [block]


def _fit_element(element: dict[str, Any]) -> dict[str, Any]:
    element = dict(element)
    if element.get("type") == "button":
        text = dict(element.get("text") or {"type": "plain_text", "text": " "})
        text["text"] = _cut(str(text.get("text") or " "), MAX_BUTTON_TEXT)
        element["text"] = text
        if "value" in element:
            # a value is data, not a label: cut without the ellipsis character
            element["value"] = str(element["value"])[:MAX_BUTTON_VALUE]
        if "url" in element:
            element["url"] = str(element["url"])[:MAX_URL]
    if "action_id" in element:
        element["action_id"] = str(element["action_id"])[:MAX_ACTION_ID]
    return element


# -- the same limits as checks --------------------------------------------------------------


def violations(text: str | None, blocks: list[dict[str, Any]] | None) -> list[str]:
    """Every way a message (its fallback `text` and `blocks`) breaks Slack's limits."""
    found: list[str] = []
    if text is not None and len(text) > MAX_MESSAGE_TEXT:
        found.append(f"text has {len(text)} characters (max {MAX_MESSAGE_TEXT})")
    blocks = blocks or []
    if len(blocks) > MAX_BLOCKS:
        found.append(f"{len(blocks)} blocks (max {MAX_BLOCKS})")
    for i, block in enumerate(blocks):
        found.extend(f"block {i}: {v}" for v in _block_violations(block))
    return found


def _length(obj: Any) -> int:
    return len(str((obj or {}).get("text") or ""))


def _block_violations(block: dict[str, Any]) -> list[str]:
    kind = block.get("type")
    found: list[str] = []
    if kind == "section":
        if _length(block.get("text")) > MAX_SECTION_TEXT:
            found.append(f"section text {_length(block.get('text'))} > {MAX_SECTION_TEXT}")
        fields = block.get("fields") or []
        if len(fields) > MAX_SECTION_FIELDS:
            found.append(f"{len(fields)} section fields > {MAX_SECTION_FIELDS}")
        found.extend(
            f"field text {_length(f)} > {MAX_FIELD_TEXT}"
            for f in fields
            if _length(f) > MAX_FIELD_TEXT
        )
    elif kind == "header":
        if _length(block.get("text")) > MAX_HEADER_TEXT:
            found.append(f"header text {_length(block.get('text'))} > {MAX_HEADER_TEXT}")
    elif kind == "context":
        elements = block.get("elements") or []
        if len(elements) > MAX_CONTEXT_ELEMENTS:
            found.append(f"{len(elements)} context elements > {MAX_CONTEXT_ELEMENTS}")
        found.extend(
            f"context text {_length(e)} > {MAX_CONTEXT_TEXT}"
            for e in elements
            if _length(e) > MAX_CONTEXT_TEXT
        )
    elif kind == "actions":
        elements = block.get("elements") or []
        if len(elements) > MAX_ACTIONS_ELEMENTS:
            found.append(f"{len(elements)} actions elements > {MAX_ACTIONS_ELEMENTS}")
        for e in elements:
            if e.get("type") == "button":
                if _length(e.get("text")) > MAX_BUTTON_TEXT:
                    found.append(f"button text {_length(e.get('text'))} > {MAX_BUTTON_TEXT}")
                if len(str(e.get("value") or "")) > MAX_BUTTON_VALUE:
                    found.append(f"button value > {MAX_BUTTON_VALUE}")
    return found


def as_plain_text(reply: ChatReply) -> str:
    """Everything a reply says, as plain text (for the fallback message and its file)."""
    parts = [reply.text] if reply.text else []
    for block in block_dicts(reply.blocks):
        kind = block.get("type")
        if kind in ("section", "header"):
            parts.append(str((block.get("text") or {}).get("text") or ""))
            parts.extend(str(f.get("text") or "") for f in block.get("fields") or [])
        elif kind == "context":
            parts.append(" ".join(str(e.get("text") or "") for e in block.get("elements") or []))
    for sub in reply.thread:
        parts.append(as_plain_text(sub))
    return "\n".join(p for p in parts if p.strip())
