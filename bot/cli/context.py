"""What every subcommand gets: the effective config and the store, each loaded on first use."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import datetime
from functools import cached_property
from typing import Any, TextIO

from bot.checks import CheckOutcome, exit_code_for
from bot.config import Config, load_config
from bot.exitcodes import ExitCode
from bot.progress import TerminalProgress
from bot.render.terminal import visible
from bot.store import Store, StoreError
from handlers.numbers import NumberError, parse_count


def number_arg(what: str, minimum: int, maximum: int) -> Callable[[str], int]:
    """An argparse `type=` for a whole number in range, ASCII digits only (handlers/numbers.py);
    a bad value is argparse's one-line usage error."""

    def parse(text: str) -> int:
        try:
            return parse_count(text, what, minimum, maximum)
        except NumberError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


class CliContext:
    def __init__(
        self,
        config_path: str | None = None,
        config: Config | None = None,
        store_path: str | None = None,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self._config_path = config_path
        self._config = config
        self._store_path = store_path  # --store: wins over store.path and the environment
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self._store: Store | None = None

    @cached_property
    def config(self) -> Config:
        config = self._config or load_config(self._config_path)
        if self._store_path:
            config.store.path = self._store_path
        return config

    @property
    def store(self) -> Store:
        """The store, opened on first use; raises StoreError with what to do when it cannot be."""
        if self._store is None:
            self._store = Store(
                self.config.store_location, busy_timeout=self.config.store.busy_timeout
            )
        return self._store

    def optional_store(self) -> Store | None:
        """The store for what a check merely reads from it (a baseline); None, with a warning,
        when it cannot be opened: the check still runs and prints, and only recording fails."""
        try:
            return self.store
        except StoreError as exc:
            self.error(f"warning: {exc}")
            return None

    def progress(self) -> TerminalProgress:
        return TerminalProgress(self.stderr)

    def print(self, text: str = "") -> None:
        """Text output: outside text in it may hold escape sequences, shown visibly."""
        print(visible(text), file=self.stdout)

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
        self.stdout.flush()  # the result is out before anything can go wrong with the store
        try:
            self.store.record_check(
                outcome.kind, outcome.subject, outcome.status, outcome.data, started
            )
        except StoreError as exc:
            self.error(f"the result above was not recorded in the history: {exc}")
            return int(ExitCode.INCOMPLETE)
        return int(exit_code_for(outcome.status))

    def error(self, text: str) -> None:
        print(f"relaywatch: {visible(text)}", file=self.stderr)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
