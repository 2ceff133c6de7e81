"""An unexpected failure as users see it: one line with an error id; the trace stays in the log.

Used by the CLI entry point and the shell adapter so that no code path ends in a bare traceback:
an unexpected error is "could not complete" (exit 3), never "a problem was found" (exit 1).
"""

from __future__ import annotations

import uuid

MAX_REASON = 200


def new_error_id() -> str:
    return uuid.uuid4().hex[:8]


def one_line(exc: BaseException) -> str:
    """`Type: message`, on one line, control characters shown as escapes, cut to a sane length."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    if len(text) > MAX_REASON:
        text = text[: MAX_REASON - 1] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
