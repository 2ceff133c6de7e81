"""Just enough roff (man(7)) to write manual pages: escaping and a few macros."""

from __future__ import annotations


def text(line: str) -> str:
    """One line of running text, inert for roff; plain ASCII (non-ASCII as \\[uXXXX])."""
    escaped = line.replace("\\", "\\e").replace("-", "\\-")
    escaped = "".join(ch if ord(ch) < 128 else f"\\[u{ord(ch):04X}]" for ch in escaped)
    if escaped.startswith((".", "'")):
        escaped = "\\&" + escaped
    return escaped


def paragraph(body: str) -> list[str]:
    return [".PP", *(text(line) for line in body.strip("\n").split("\n"))]


def literal(body: str) -> list[str]:
    """A no-fill block (examples, usage lines) kept as written."""
    return [".nf", *(text(line) for line in body.rstrip("\n").split("\n")), ".fi"]


def quoted(arg: str) -> str:
    return '"' + text(arg).replace('"', "\\(dq") + '"'
