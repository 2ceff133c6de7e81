"""Structured log lines on stderr (`ts level logger key=value …`), with -v / -q levels."""

import logging
import sys
import time

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class KeyValueFormatter(logging.Formatter):
    """One line per record: time, level, logger, message, then any `extra=` fields as key=value."""

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        parts = [f"{ts}Z", record.levelname.lower(), record.name, _quote(record.getMessage())]
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                parts.append(f"{key}={_quote(str(value))}")
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _quote(text: str) -> str:
    return f'"{text}"' if (" " in text or not text) else text


def configure_logging(verbosity: int) -> None:
    """verbosity: -1 quiet (errors only), 0 warnings, 1 info, 2+ debug."""
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
