"""What every subcommand gets: the effective config and the store, each loaded on first use."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from functools import cached_property
from typing import Any, TextIO

from bot.checks import CheckOutcome, exit_code_for
from bot.config import Config, load_config
from bot.progress import TerminalProgress
from bot.store import Store


class CliContext:
    def __init__(
        self,
        config_path: str | None = None,
        config: Config | None = None,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self._config_path = config_path
        self._config = config
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self._store: Store | None = None

    @cached_property
    def config(self) -> Config:
        return self._config or load_config(self._config_path)

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.config.store_location)
        return self._store

    def progress(self) -> TerminalProgress:
        return TerminalProgress(self.stderr)

    def print(self, text: str = "") -> None:
        print(text, file=self.stdout)

    def print_json(self, data: Any) -> None:
        print(json.dumps(data, indent=2, sort_keys=False), file=self.stdout)

    def finish_check(
        self,
        outcome: CheckOutcome,
        render_text: Callable[[dict[str, Any]], str],
        as_json: bool,
        started: datetime,
    ) -> int:
        """Shows a check's outcome, keeps it in the history, and returns the exit code.

        `--json` prints exactly the stored document. A check that failed before producing any
        report (its document is just an error) says so on stderr instead of printing a report.
        """
        if as_json:
            self.print_json(outcome.data)
        elif outcome.status == "failed" and "error" in outcome.data:
            self.error(render_text(outcome.data).rstrip("\n"))
        else:
            self.print(render_text(outcome.data).rstrip("\n"))
        self.store.record_check(
            outcome.kind, outcome.subject, outcome.status, outcome.data, started
        )
        return int(exit_code_for(outcome.status))

    def error(self, text: str) -> None:
        print(f"relaywatch: {text}", file=self.stderr)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
