"""The transport-neutral reply every chat command produces; the Slack and shell adapters deliver it.

Slack's limits are enforced here, once: at most 50 blocks per message and 3,000 characters per
section text. What does not fit moves into thread replies, and very long text becomes a file upload.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

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
    return ChatReply(text=text, blocks=sections(text), ephemeral=ephemeral)


def detail_reply(title: str, body: str, filename: str) -> ChatReply:
    """A thread reply holding a long plain-text report: inline when short, else a file upload."""
    if len(body) <= MAX_INLINE_CHARS:
        return ChatReply(
            text=f"{title}\n{body}", blocks=[*sections(f"*{title}*"), *code_sections(body)]
        )
    return ChatReply(
        text=f"{title} (attached as {filename})",
        blocks=sections(f"*{title}* — full report attached as `{filename}`"),
        file=ReplyFile(filename=filename, title=title, content=body),
    )


def header(text: str) -> HeaderBlock:
    from slack_sdk.models.blocks import HeaderBlock

    return HeaderBlock(text=text[:MAX_HEADER_CHARS])


def divider() -> DividerBlock:
    from slack_sdk.models.blocks import DividerBlock

    return DividerBlock()


def context(text: str) -> ContextBlock:
    from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject

    return ContextBlock(elements=[MarkdownTextObject(text=text[:MAX_SECTION_CHARS])])


def sections(markdown: str) -> list[SectionBlock]:
    """One or more section blocks, split on line boundaries to respect the 3,000-character limit."""
    from slack_sdk.models.blocks import MarkdownTextObject, SectionBlock

    return [
        SectionBlock(text=MarkdownTextObject(text=chunk))
        for chunk in _chunks(markdown, MAX_SECTION_CHARS)
    ]


def code_sections(text: str) -> list[SectionBlock]:
    """Preformatted text, split so every chunk plus its ``` fences stays under the limit."""
    from slack_sdk.models.blocks import MarkdownTextObject, SectionBlock

    return [
        SectionBlock(text=MarkdownTextObject(text=f"```{chunk}```"))
        for chunk in _chunks(text, MAX_SECTION_CHARS - 6)
    ]


def buttons(*specs: tuple[str, str, str]) -> ActionsBlock:
    """(action_id, label, value) triples → one actions block."""
    from slack_sdk.models.blocks import ActionsBlock, ButtonElement

    return ActionsBlock(
        elements=[
            ButtonElement(action_id=a, text=label, value=value[:2000]) for a, label, value in specs
        ]
    )


def result_buttons(command: str, args: str, check_id: int | None = None) -> ActionsBlock:
    """Re-run (the same command and arguments) and, once the check is stored, Show details."""
    specs = [("rerun", "Re-run", f"{command} {args}".strip())]
    if check_id is not None:
        specs.append(("show_details", "Show details", str(check_id)))
    return buttons(*specs)


def escape(text: str) -> str:
    """Slack mrkdwn control characters (&, <, >) escaped, so log lines and replies show verbatim."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


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
            chunks.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            chunks.append(current)
            current = line
        else:
            current = candidate
    if current or not chunks:
        chunks.append(current or " ")
    return chunks
