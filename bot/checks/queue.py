"""Maps `[queue]` and `[logs]` onto the queue engine, with the suspects and contained subjects the
store knows, so the summary can mark them."""

from __future__ import annotations

import ipaddress
import os

from bot.checks import CheckOutcome
from bot.config import Config
from bot.store import Store
from handlers.queue import Marks, QueueOptions, QueueReadError, read_queue

KIND = "queue"


def queue_options(config: Config, store: Store | None = None) -> QueueOptions:
    q = config.queue
    return QueueOptions(
        mta=q.mta,
        postfix_config_dir=q.postfix_config_dir,
        exim_path=q.exim_path,
        exim_config=q.exim_config,
        log_paths=tuple(config.logs.paths),
        privilege=() if os.geteuid() == 0 else tuple(q.privilege),
        timeout=q.timeout,
        batch=q.ids_per_call,
        limit=q.max_ids_per_action,
        marks=marks_from_store(store) if store is not None else Marks(),
    )


def marks_from_store(store: Store) -> Marks:
    """Suspects of the latest mail summary, and every active containment."""
    suspects: set[str] = set()
    latest = store.latest_check("mailsummary", "") or next(
        iter(store.checks("mailsummary", limit=1)), None
    )
    if latest is not None and latest.status != "failed":
        suspects = {str(s.get("subject", "")).lower() for s in latest.result.get("suspects", [])}
    contained: set[str] = set()
    networks = []
    for entry in store.active_containments():
        if entry.subject_kind == "host":
            try:
                networks.append(ipaddress.ip_network(entry.subject, strict=False))
                continue
            except ValueError:
                pass
        contained.add(entry.subject.lower())
    return Marks(frozenset(suspects), frozenset(contained), tuple(networks))


async def run_queue(config: Config, store: Store | None = None) -> CheckOutcome:
    options = queue_options(config, store)
    try:
        summary = await read_queue(options)
    except QueueReadError as exc:
        return CheckOutcome(KIND, config.queue.mta, "failed", {"error": str(exc)})
    data = summary.to_dict()
    # a queue is a problem when mail of suspects or contained subjects is still waiting to go out
    flagged = any(
        ranked.marks
        for table in (summary.top_senders, summary.top_accounts, summary.top_clients)
        for ranked in table
    )
    return CheckOutcome(KIND, config.queue.mta, "problem" if flagged else "ok", data, summary)
