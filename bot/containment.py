"""Applying containment requests to the store: the one code path behind /contain, its buttons,
`relaywatch contain` and the automatic actions.

The policy service enforces whatever is active in the store's containment table (it rereads it
within a second), so writing an entry here *is* the change to the mail server. Authorization and
auditing belong to the callers (the dispatcher for chat, the CLI for the local login).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from bot.config import Config
from bot.store import Store, utc_now
from handlers.policy.containment import (
    ContainRequest,
    Limits,
    ListRequest,
    ReleaseRequest,
    Request,
    Subject,
    limits_from,
)
from handlers.policy.model import Containment


@dataclass(frozen=True)
class Applied:
    """A new entry, and the active entries for the same subject it replaced."""

    entry: Containment
    replaced: tuple[Containment, ...] = ()
    guessed_kind: bool = False


@dataclass(frozen=True)
class Released:
    subject: Subject
    entries: tuple[Containment, ...]  # what was active before the release

    @property
    def count(self) -> int:
        return len(self.entries)


@dataclass(frozen=True)
class Listing:
    entries: tuple[Containment, ...]
    history: bool = False
    now: datetime = field(default_factory=utc_now)


Outcome = Applied | Released | Listing


def limits_of(config: Config) -> Limits:
    return limits_from(config.policy.default_expiry, config.policy.max_expiry)


def active_for(store: Store, subject: Subject) -> list[Containment]:
    return [
        e
        for e in store.active_containments()
        if (e.subject_kind, e.subject) == (subject.kind, subject.value)
    ]


def apply_request(
    store: Store,
    request: Request,
    set_by: str,
    channel: str = "",
    thread_ts: str = "",
    clock: Callable[[], datetime] = utc_now,
) -> Outcome:
    """Writes (or reads) what `request` asks for; returns what happened."""
    if isinstance(request, ListRequest):
        entries = store.containments() if request.include_history else store.active_containments()
        return Listing(tuple(entries), request.include_history, clock())
    if isinstance(request, ReleaseRequest):
        before = active_for(store, request.subject)
        store.release_containment(request.subject.kind, request.subject.value, set_by)
        return Released(request.subject, tuple(before))
    return contain(store, request, set_by, channel, thread_ts, clock)


def contain(
    store: Store,
    request: ContainRequest,
    set_by: str,
    channel: str = "",
    thread_ts: str = "",
    clock: Callable[[], datetime] = utc_now,
) -> Applied:
    replaced = active_for(store, request.subject)
    entry = store.add_containment(
        request.subject.kind,
        request.subject.value,
        request.action,
        expires_at=clock() + request.duration,
        reason=request.reason,
        set_by=set_by,
        limit_per_hour=request.limit_per_hour,
        cut_sessions=request.cut_sessions,
        channel=channel,
        thread_ts=thread_ts,
    )
    return Applied(entry, tuple(replaced), request.subject.guessed)
