"""The transport-neutral reply every chat command produces; the Slack and shell adapters deliver it.

Slack's limits are enforced here, once: at most 50 blocks per message and 3,000 characters per
section text. What does not fit moves into thread replies, and very long text becomes a file upload.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from slack_sdk.models.blocks import (
        ActionsBlock,
        Block,
        ContextBlock,
        DividerBlock,
        HeaderBlock,
        SectionBlock,
    )

# slack_sdk's block models are imported inside the builders below, not at module level:
# importing them loads the whole Slack Web client, and the terminal renderers (the CLI's text
# and JSON output) import this module without ever building a block.

MAX_BLOCKS = 50
MAX_SECTION_CHARS = 3000
MAX_HEADER_CHARS = 150
# past this, a thread reply's text is uploaded as a file instead of being posted in pieces
MAX_INLINE_CHARS = 12_000

STATUS_EMOJI = {
    "green": ":large_green_circle:",
    "yellow": ":large_yellow_circle:",
    "red": ":red_circle:",
    "grey": ":white_circle:",
}


@dataclass
class ReplyFile:
    filename: str
    title: str
    content: str | bytes  # bytes: an image (the mail chart), uploaded as it is


@dataclass
class ChatReply:
    """One message: `text` is the plain-text fallback and what the shell adapter prints."""

    text: str
    blocks: list[Block] = field(default_factory=list)
    thread: list[ChatReply] = field(default_factory=list)
    file: ReplyFile | None = None
    ephemeral: bool = False  # usage errors and denials: only the requester sees them

    def fitted(self) -> ChatReply:
        """Returns a copy that respects Slack's block limit, overflow moved to a thread reply."""
        if len(self.blocks) <= MAX_BLOCKS:
            return self
        keep = self.blocks[: MAX_BLOCKS - 1]
        rest = self.blocks[MAX_BLOCKS - 1 :]
        note = context("continued in the thread")
        overflow = ChatReply(text="(continued)", blocks=rest).fitted()
        return ChatReply(
            text=self.text,
            blocks=[*keep, note],
            thread=[overflow, *self.thread],
            file=self.file,
            ephemeral=self.ephemeral,
        )


def plain_reply(text: str, ephemeral: bool = False) -> ChatReply:
    """A reply of one mrkdwn text (outside text in it already escaped by the caller)."""
    return ChatReply(text=text, blocks=sections(text), ephemeral=ephemeral)


def detail_reply(title: str, body: str, filename: str) -> ChatReply:
    """A thread reply holding a long plain-text report: inline when short, else a file upload.

    `title` and `body` are plain text (they are escaped here); a file keeps the exact bytes."""
    if len(body) <= MAX_INLINE_CHARS:
        return ChatReply(
            text=escape(f"{title}\n{body}"),
            blocks=[*sections(f"*{escape(title)}*"), *code_sections(body)],
        )
    return ChatReply(
        text=escape(f"{title} (attached as {filename})"),
        blocks=sections(f"*{escape(title)}* — full report attached as `{escape(filename)}`"),
        file=ReplyFile(filename=filename, title=title, content=body),
    )


def header(text: str) -> HeaderBlock:
    """A header of plain text (escaped here: Slack reads &, < and > in every text field)."""
    from slack_sdk.models.blocks import HeaderBlock

    return HeaderBlock(text=clip(escape(text), MAX_HEADER_CHARS))


def divider() -> DividerBlock:
    from slack_sdk.models.blocks import DividerBlock

    return DividerBlock()


def context(text: str) -> ContextBlock:
    from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject

    return ContextBlock(elements=[MarkdownTextObject(text=clip(text, MAX_SECTION_CHARS))])


def sections(markdown: str) -> list[SectionBlock]:
    """One or more section blocks, split on line boundaries to respect the 3,000-character limit."""
    from slack_sdk.models.blocks import MarkdownTextObject, SectionBlock

    return [
        SectionBlock(text=MarkdownTextObject(text=chunk))
        for chunk in _chunks(markdown, MAX_SECTION_CHARS)
    ]


def code_sections(text: str) -> list[SectionBlock]:
    """Preformatted plain text (escaped here: Slack parses <…> even inside code blocks), split so
    every chunk plus its ``` fences stays under the limit."""
    from slack_sdk.models.blocks import MarkdownTextObject, SectionBlock

    return [
        SectionBlock(text=MarkdownTextObject(text=f"```{chunk}```"))
        for chunk in _chunks(escape(text), MAX_SECTION_CHARS - 6)
    ]


def buttons(*specs: tuple[str, str, str]) -> ActionsBlock:
    """(action_id, label, value) triples → one actions block; labels are plain text (escaped
    here), values are data the bot reads back, never shown."""
    from slack_sdk.models.blocks import ActionsBlock, ButtonElement

    return ActionsBlock(
        elements=[
            ButtonElement(action_id=a, text=escape(label), value=value[:2000])
            for a, label, value in specs
        ]
    )


def result_buttons(command: str, args: str, check_id: int | None = None) -> ActionsBlock:
    """Re-run (the same command and arguments) and, once the check is stored, Show details."""
    specs = [("rerun", "Re-run", f"{command} {args}".strip())]
    if check_id is not None:
        specs.append(("show_details", "Show details", str(check_id)))
    return buttons(*specs)


# -- inert text ------------------------------------------------------------------------------
# Every piece of text from outside (SMTP replies, DNS TXT, log fields, what a user typed) goes
# through escape() before it joins a reply's mrkdwn. Markup the bot itself means (a user mention,
# a channel link, a delist link) is made only by mention(), channel_link() and link(), which wrap
# it in two private-use characters; inert() — applied by the Slack poster to every text field of
# every payload — lets only that wrapped, well-formed markup through and escapes any other < and >,
# so a renderer that forgot escape() still cannot send a live <!channel> or a dressed link.
# escape() drops the two marks from outside text, so outside text cannot forge them.
_OPEN, _CLOSE = "\ue000", "\ue001"
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,20}$")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,20}$")
_URL = re.compile(r"^https?://[^\s<>|\ue000\ue001]+$")
_INTENDED = re.compile(
    "\ue000(<(?:@[UW][A-Z0-9]{2,20}|#[CGD][A-Z0-9]{2,20}"
    "|https?://[^\\s<>|\ue000\ue001]+\\|[^<>\ue000\ue001]+)>)\ue001"
)


def escape(text: object) -> str:
    """Outside text for mrkdwn: Slack's control characters (&, <, >) escaped, so log lines,
    SMTP replies and user-typed text show verbatim and never act as mentions or links."""
    return (
        str(text)
        .replace(_OPEN, "")
        .replace(_CLOSE, "")
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
    )


def mention(user_id: str) -> str:
    """A live mention of one user by id (the bot's own choice, e.g. who acknowledged an alert)."""
    if _USER_ID.match(user_id or ""):
        return f"{_OPEN}<@{user_id}>{_CLOSE}"
    return escape(user_id)


def channel_link(channel_id: str) -> str:
    """A link to a channel by id; anything that is not a channel id is shown as plain text."""
    if _CHANNEL_ID.match(channel_id or ""):
        return f"{_OPEN}<#{channel_id}>{_CLOSE}"
    return "#" + escape(channel_id.lstrip("#"))


def link(url: str, label: str) -> str:
    """A link the bot means (a catalog's delist page); a malformed URL is shown as text."""
    if _URL.match(url or ""):
        return f"{_OPEN}<{url.replace('&', '&amp;')}|{escape(label)}>{_CLOSE}"
    return f"{escape(label)} ({escape(url)})"


def inert(text: str) -> str:
    """The last line of defence before Slack: every < and > that is not markup made by the
    helpers above is escaped (escaping is idempotent on text escape() already handled)."""
    out: list[str] = []
    position = 0
    for match in _INTENDED.finditer(text):
        out.append(_neutral(text[position : match.start()]))
        out.append(match.group(1))
        position = match.end()
    out.append(_neutral(text[position:]))
    return "".join(out)


def _neutral(text: str) -> str:
    return text.replace(_OPEN, "").replace(_CLOSE, "").replace("<", "&lt;").replace(">", "&gt;")


_INTENDED_PARTS = re.compile(
    "\ue000<(?:([@#])([A-Z0-9]+)|(https?://[^\\s<>|\ue000\ue001]+)\\|([^<>\ue000\ue001]+))>\ue001"
)


def readable(markup: str) -> str:
    """The bot's own markup for a terminal: @U123, #C123, 'label (url)'; stray marks dropped."""

    def spell(match: re.Match[str]) -> str:
        if match.group(1):
            return match.group(1) + match.group(2)
        return f"{match.group(4)} ({match.group(3)})"

    return _INTENDED_PARTS.sub(spell, markup).replace(_OPEN, "").replace(_CLOSE, "")


def inert_payload(value: Any) -> Any:
    """A Block Kit structure (dicts and lists) with inert() applied to every "text" string."""
    if isinstance(value, dict):
        return {
            key: inert(item) if key == "text" and isinstance(item, str) else inert_payload(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [inert_payload(item) for item in value]
    return value


def clip(markup: str, limit: int) -> str:
    """At most `limit` characters of escaped text, never ending inside an &entity; (a cut one
    would show as garbage), with an ellipsis when something was cut."""
    if len(markup) <= limit:
        return markup
    cut = markup[: limit - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def _entity_safe_cut(line: str, limit: int) -> int:
    """Where to cut a too-long line: at `limit`, or just before an &entity; the cut would split."""
    amp = line.rfind("&", max(0, limit - 5), limit)
    if amp > 0 and ";" not in line[amp:limit]:
        return amp
    return limit


def _chunks(text: str, limit: int) -> list[str]:
    if not text:
        return [" "]
    chunks: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:
            if current:
                chunks.append(current)
                current = ""
            cut = _entity_safe_cut(line, limit)
            chunks.append(line[:cut])
            line = line[cut:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            chunks.append(current)
            current = line
        else:
            current = candidate
    if current or not chunks:
        chunks.append(current or " ")
    return chunks
