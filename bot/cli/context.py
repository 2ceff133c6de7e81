"""What every subcommand gets: the effective config and the store, each loaded on first use."""

from __future__ import annotations

import json
import sys
from functools import cached_property
from typing import Any, TextIO

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
            self._store = Store(self.config.store_path)
        return self._store

    def progress(self) -> TerminalProgress:
        return TerminalProgress(self.stderr)

    def print(self, text: str = "") -> None:
        print(text, file=self.stdout)

    def print_json(self, data: Any) -> None:
        print(json.dumps(data, indent=2, sort_keys=False), file=self.stdout)

    def error(self, text: str) -> None:
        print(f"relaywatch: {text}", file=self.stderr)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
