"""The mail queue: what is queued and from whom, and hold / release / delete through the MTA.

summary = await read_queue(QueueOptions(mta="postfix", log_paths=("/var/log/mail.log",)))
result = await queue_action("hold", parse_selection("account", "carol"), options, dry_run=True)
"""

from handlers.queue.actions import QUEUE_ACTIONS, QueueActionPlan, QueueActionResult
from handlers.queue.engine import (
    QueueOptions,
    QueueReadError,
    queue_action,
    read_queue,
    read_queue_sync,
)
from handlers.queue.ids import QueueIdError, checked_ids, is_queue_id
from handlers.queue.model import Origin, QueuedMessage, QueuedRecipient, QueueSummary, Ranked
from handlers.queue.selection import SELECTION_KINDS, Selection, SelectionError, parse_selection
from handlers.queue.summary import Marks, summarize_queue

__all__ = [
    "QUEUE_ACTIONS",
    "SELECTION_KINDS",
    "Marks",
    "Origin",
    "QueueActionPlan",
    "QueueActionResult",
    "QueueIdError",
    "QueueOptions",
    "QueueReadError",
    "QueueSummary",
    "QueuedMessage",
    "QueuedRecipient",
    "Ranked",
    "Selection",
    "SelectionError",
    "checked_ids",
    "is_queue_id",
    "parse_selection",
    "queue_action",
    "read_queue",
    "read_queue_sync",
    "summarize_queue",
]
