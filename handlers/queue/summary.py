"""Folds queued messages into a QueueSummary: totals per queue, ages, and the top talkers."""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field

from handlers.queue.model import Origin, QueuedMessage, QueueSummary, Ranked

_HOUR = 3600.0
_DAY = 86400.0


@dataclass(frozen=True)
class Marks:
    """Subjects to flag in the summary: log-summary suspects and contained subjects."""

    suspects: frozenset[str] = frozenset()  # accounts, senders or client IPs, lower-case
    contained: frozenset[str] = frozenset()
    contained_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    def of(self, key: str) -> tuple[str, ...]:
        marks = []
        lowered = key.lower()
        if lowered in self.suspects:
            marks.append("suspect")
        if lowered in self.contained or self._in_contained_network(key):
            marks.append("contained")
        return tuple(marks)

    def _in_contained_network(self, key: str) -> bool:
        try:
            address = ipaddress.ip_address(key)
        except ValueError:
            return False
        return any(address in net for net in self.contained_networks)


@dataclass
class _Tally:
    messages: Counter[str] = field(default_factory=Counter)
    bytes: Counter[str] = field(default_factory=Counter)

    def add(self, key: str, size: int) -> None:
        self.messages[key] += 1
        self.bytes[key] += size

    def top(self, count: int, marks: Marks) -> list[Ranked]:
        return [
            Ranked(key, n, self.bytes[key], marks.of(key))
            for key, n in self.messages.most_common(count)
        ]


def summarize_queue(
    messages: Iterable[QueuedMessage],
    mta: str,
    now: float,
    find_origins: Callable[[Collection[str]], Iterable[tuple[str, Origin]]] | None = None,
    marks: Marks | None = None,
    top: int = 10,
) -> QueueSummary:
    """One pass over the queue; only (queue ID, size) is kept per message, to join with the log
    afterwards, so memory follows the number of queued messages and nothing else."""
    marks = marks or Marks()
    sizes: dict[str, int] = {}
    summary = QueueSummary(mta=mta, read_at=now)
    senders, accounts, clients, domains = _Tally(), _Tally(), _Tally(), _Tally()
    reasons: Counter[str] = Counter()
    buckets: Counter[str] = Counter()
    for message in messages:
        summary.messages += 1
        summary.bytes += message.size
        summary.recipients += len(message.recipients)
        queue = summary.by_queue.setdefault(message.queue_name, {"messages": 0, "bytes": 0})
        queue["messages"] += 1
        queue["bytes"] += message.size
        if message.arrival_time > 0:
            if summary.oldest_arrival is None or message.arrival_time < summary.oldest_arrival:
                summary.oldest_arrival = message.arrival_time
            age = now - message.arrival_time
            buckets["<1h" if age < _HOUR else "1h-1d" if age < _DAY else ">1d"] += 1
        senders.add(message.sender.lower() or "<>", message.size)
        for domain in {r.address.rpartition("@")[2].lower() for r in message.recipients}:
            domains.add(domain or "(local)", message.size)
        for recipient in message.recipients:
            if recipient.delay_reason:
                reasons[recipient.delay_reason[:300]] += 1
        if find_origins is not None:
            sizes[message.queue_id] = message.size
    # streamed: each origin is tallied as the log yields it, never collected
    for queue_id, origin in find_origins(sizes.keys()) if find_origins is not None else ():
        size = sizes.pop(queue_id, None)  # a message created twice in the logs counts once
        if size is None:
            continue
        summary.origins_known += 1
        if origin.sasl_username:
            accounts.add(origin.sasl_username.lower(), size)
        if origin.client_address:
            clients.add(origin.client_address, size)
    summary.age_buckets = dict(buckets)
    summary.top_senders = senders.top(top, marks)
    summary.top_accounts = accounts.top(top, marks)
    summary.top_clients = clients.top(top, marks)
    summary.top_recipient_domains = domains.top(top, marks)
    summary.top_delay_reasons = reasons.most_common(top)
    return summary
