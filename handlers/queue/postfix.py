"""Postfix's queue as `postqueue -j` prints it: one JSON object per message (Postfix ≥ 3.1)."""

from __future__ import annotations

import json
from typing import Any

from handlers.queue.model import QueuedMessage, QueuedRecipient


def parse_postqueue_line(line: str | bytes) -> QueuedMessage | None:
    """One `postqueue -j` line → a message; None when it is not one (unknown members ignored)."""
    try:
        data: Any = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    queue_id = data.get("queue_id")
    if not isinstance(queue_id, str) or not queue_id:
        return None
    recipients = []
    for item in data.get("recipients") or ():
        if isinstance(item, dict) and isinstance(item.get("address"), str):
            reason = item.get("delay_reason")
            recipients.append(
                QueuedRecipient(item["address"], reason if isinstance(reason, str) else "")
            )
    return QueuedMessage(
        queue_name=str(data.get("queue_name") or ""),
        queue_id=queue_id,
        arrival_time=_number(data.get("arrival_time")),
        size=int(_number(data.get("message_size"))),
        sender=data.get("sender") if isinstance(data.get("sender"), str) else "",
        recipients=tuple(recipients),
    )


def postqueue_command(config_dir: str = "") -> list[str]:
    return ["postqueue", *(["-c", config_dir] if config_dir else []), "-j"]


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value)
