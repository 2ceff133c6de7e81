"""Progress reporting: a stderr line that rewrites itself on a terminal, silent when piped."""

from __future__ import annotations

import sys
from typing import Protocol, TextIO


class ProgressSink(Protocol):
    """Where engines' progress callbacks end up (a terminal line, an updated Slack message, …)."""

    def __call__(self, text: str) -> None: ...


class TerminalProgress:
    """Rewrites one stderr line in place; prints nothing when stderr is not a terminal."""

    def __init__(self, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._width = 0

    def __call__(self, text: str) -> None:
        if not self.enabled:
            return
        from bot.render.terminal import visible

        line = visible(text)[:119]
        pad = max(0, self._width - len(line))
        self.stream.write("\r" + line + " " * pad)
        self.stream.flush()
        self._width = len(line)

    def clear(self) -> None:
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0

    def __enter__(self) -> TerminalProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.clear()
