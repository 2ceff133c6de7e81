"""Typed values for the mail queue: one queued message, where it came from, and the summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Postfix's queues as postqueue -j names them; Exim's frozen messages count as "hold"
QUEUE_NAMES = ("incoming", "active", "deferred", "hold", "maildrop")


@dataclass(frozen=True)
class QueuedRecipient:
    address: str
    delay_reason: str = ""


@dataclass(frozen=True)
class QueuedMessage:
    queue_name: str
    queue_id: str
    arrival_time: float  # epoch seconds
    size: int
    sender: str  # "" for the null sender (bounces)
    recipients: tuple[QueuedRecipient, ...] = ()


@dataclass(frozen=True)
class Origin:
    """Who submitted a queued message, from the smtpd `client=` log line of its queue ID."""

    client_address: str = ""
    sasl_username: str = ""


@dataclass(frozen=True)
class Ranked:
    key: str
    messages: int
    bytes: int
    marks: tuple[str, ...] = ()  # "suspect", "contained"

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "messages": self.messages,
            "bytes": self.bytes,
            "marks": list(self.marks),
        }


@dataclass
class QueueSummary:
    mta: str  # "postfix" | "exim"
    read_at: float
    messages: int = 0
    bytes: int = 0
    recipients: int = 0
    by_queue: dict[str, dict[str, int]] = field(default_factory=dict)  # name → messages, bytes
    oldest_arrival: float | None = None
    age_buckets: dict[str, int] = field(default_factory=dict)  # "<1h", "1h-1d", ">1d"
    top_senders: list[Ranked] = field(default_factory=list)
    top_accounts: list[Ranked] = field(default_factory=list)
    top_clients: list[Ranked] = field(default_factory=list)
    top_recipient_domains: list[Ranked] = field(default_factory=list)
    top_delay_reasons: list[tuple[str, int]] = field(default_factory=list)
    unparsed: int = 0  # lines of the MTA's output that were not a queue entry
    origins_known: int = 0  # messages tied to a client/account through the log
    warnings: list[str] = field(default_factory=list)

    @property
    def oldest_age_seconds(self) -> float | None:
        return None if self.oldest_arrival is None else max(0.0, self.read_at - self.oldest_arrival)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mta": self.mta,
            "read_at": self.read_at,
            "messages": self.messages,
            "bytes": self.bytes,
            "recipients": self.recipients,
            "by_queue": self.by_queue,
            "oldest_age_seconds": self.oldest_age_seconds,
            "age_buckets": self.age_buckets,
            "top_senders": [r.to_dict() for r in self.top_senders],
            "top_accounts": [r.to_dict() for r in self.top_accounts],
            "top_clients": [r.to_dict() for r in self.top_clients],
            "top_recipient_domains": [r.to_dict() for r in self.top_recipient_domains],
            "top_delay_reasons": [
                {"reason": reason, "recipients": count} for reason, count in self.top_delay_reasons
            ],
            "unparsed": self.unparsed,
            "origins_known": self.origins_known,
            "warnings": list(self.warnings),
        }
