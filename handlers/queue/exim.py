"""Exim's queue as `exim -bp` prints it: a header line per message, then its recipients.

    25m  2.9K 1qT9Xv-0000Bq-4Y <carol@example.com>
              bob@example.net
            D done@example.net

     4h   512 1qT9Xv-0000Bq-4Z <> *** frozen ***
              postmaster@example.org

Frozen messages are Exim's hold queue (`-Mf` freezes, `-Mt` thaws); a `D` line is a recipient
already delivered, so it is not counted as waiting.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from handlers.queue.model import QueuedMessage, QueuedRecipient

_HEADER = re.compile(
    r"^\s*(?P<age>\d+)(?P<unit>[smhdw])\s+(?P<size>\d+(?:\.\d+)?)(?P<mult>[KMG]?)\s+"
    r"(?P<id>[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4})\s+<(?P<sender>[^>]*)>"
    r"(?P<frozen>\s+\*\*\* frozen \*\*\*)?"
)
_RECIPIENT = re.compile(r"^\s+(?P<delivered>\+?D\s+)?(?P<address>\S+)\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_BYTES = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def parse_exim_queue(lines: Iterable[str], now: float) -> Iterator[QueuedMessage | None]:
    """Messages in order; None for each line that is neither a header nor a recipient."""
    current: dict | None = None
    for line in lines:
        header = _HEADER.match(line)
        if header:
            if current is not None:
                yield _message(current)
            current = {
                "queue_id": header["id"],
                "arrival": now - int(header["age"]) * _SECONDS[header["unit"]],
                "size": int(float(header["size"]) * _BYTES[header["mult"]]),
                "sender": header["sender"],
                "frozen": bool(header["frozen"]),
                "recipients": [],
            }
            continue
        if not line.strip():
            continue
        recipient = _RECIPIENT.match(line)
        if recipient and current is not None:
            if not recipient["delivered"]:
                current["recipients"].append(QueuedRecipient(recipient["address"]))
            continue
        yield None
    if current is not None:
        yield _message(current)


def exim_queue_command(exim: str = "exim", config: str = "") -> list[str]:
    return [exim, *exim_config_args(config), "-bp"]


def exim_config_args(config: str) -> list[str]:
    """`-C PATH` for an Exim with its own configuration (a second instance); none otherwise."""
    return ["-C", config] if config else []


def _message(data: dict) -> QueuedMessage:
    return QueuedMessage(
        queue_name="hold" if data["frozen"] else "deferred",
        queue_id=data["queue_id"],
        arrival_time=data["arrival"],
        size=data["size"],
        sender=data["sender"],
        recipients=tuple(data["recipients"]),
    )
