"""The life of one listing: open → (cause fixed, removal requested) → removed, or overdue, or back.

Pure functions of a case, what the latest lookup saw, and the clock; the bot stores the result and
posts the events in the listing's alert thread. relaywatch never submits a removal form: it links
it, and records that a person did.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

# look again often while a removal is likely (the first two days), then a few times a day
FAST_RECHECK = timedelta(minutes=30)
FAST_PERIOD = timedelta(hours=48)
SLOW_RECHECK = timedelta(hours=6)
# lists reviewed by a person (removal "request" or "self-service") without a documented expiry:
# past this after the request, say it is overdue
REVIEW_GRACE = timedelta(hours=48)


@dataclass(frozen=True)
class RemovalPolicy:
    """How a list removes entries, from the catalog (handlers/data/dnsbl.toml)."""

    removal: str = "unknown"  # self-service | request | expires | none | unknown
    expires_hours: int = 0
    paid_express: bool = False
    delist_url: str = ""

    def advice(self) -> str:
        if self.removal == "none":
            return "not a listing to ask removal from: fix the cause (see the list's notes)"
        parts = []
        if self.removal == "self-service":
            parts.append("request removal yourself once the cause is fixed")
        elif self.removal == "request":
            parts.append(
                "ask the operator for removal once the cause is fixed (reviewed by a person)"
            )
        elif self.removal == "expires":
            parts.append("it expires by itself once the cause stops")
        if self.expires_hours:
            parts.append(f"the list's own expiry is about {self.expires_hours} h")
        if self.paid_express:
            parts.append("paid express removal is offered and never needed")
        if self.delist_url:
            parts.append(f"removal page: {self.delist_url}")
        return "; ".join(parts) or "removal policy not documented: see the list's site"


@dataclass(frozen=True)
class DelistCase:
    id: int
    subject: str  # the listed address or domain
    zone: str
    first_seen: datetime
    state: str = "listed"  # listed | removed
    codes: tuple[str, ...] = ()
    txt: str = ""
    alert_id: int | None = None
    cause_fixed_by: str = ""
    cause_fixed_at: datetime | None = None
    requested_by: str = ""
    requested_at: datetime | None = None
    removed_at: datetime | None = None
    next_check_at: datetime | None = None
    overdue_noted: bool = False
    relistings: int = 0


@dataclass(frozen=True)
class CaseEvent:
    kind: str  # removed | overdue | relisted
    text: str


@dataclass(frozen=True)
class CaseStep:
    case: DelistCase
    events: tuple[CaseEvent, ...] = ()


def next_check_at(case: DelistCase, now: datetime) -> datetime:
    fast = now - case.first_seen < FAST_PERIOD
    return now + (FAST_RECHECK if fast else SLOW_RECHECK)


def overdue_at(case: DelistCase, policy: RemovalPolicy) -> datetime | None:
    """When the listing should have gone by the list's own rules; None when they do not say."""
    if policy.expires_hours:
        start = case.cause_fixed_at or case.requested_at or case.first_seen
        return start + timedelta(hours=policy.expires_hours)
    if policy.removal in ("self-service", "request") and case.requested_at is not None:
        return case.requested_at + REVIEW_GRACE
    return None


def hours(delta: timedelta) -> str:
    total = delta.total_seconds() / 3600
    return f"{total:.0f} h" if total < 72 else f"{total / 24:.1f} days"


def observe(
    case: DelistCase, listed: bool | None, now: datetime, policy: RemovalPolicy
) -> CaseStep:
    """The case after a lookup: listed True/False, or None when the list did not answer (then
    nothing is concluded, only the next look is scheduled)."""
    if listed is None:
        return CaseStep(replace(case, next_check_at=next_check_at(case, now)))
    if case.state == "removed":
        if not listed:
            return CaseStep(replace(case, next_check_at=None))
        back = replace(
            case,
            state="listed",
            relistings=case.relistings + 1,
            removed_at=None,
            overdue_noted=False,
            next_check_at=next_check_at(case, now),
        )
        since = hours(now - case.removed_at) if case.removed_at else "a while"
        return CaseStep(
            back,
            (
                CaseEvent(
                    "relisted",
                    f"{case.subject} is listed on {case.zone} again, {since} after it was "
                    "removed: the cause is still there (a compromised account or host still "
                    "sending, or a relay still open)",
                ),
            ),
        )
    if not listed:
        removed = replace(case, state="removed", removed_at=now, next_check_at=None)
        took = hours(now - case.first_seen)
        since_request = (
            f", {hours(now - case.requested_at)} after removal was requested"
            if case.requested_at
            else ""
        )
        return CaseStep(
            removed,
            (
                CaseEvent(
                    "removed",
                    f"{case.subject} removed from {case.zone} after {took}{since_request}",
                ),
            ),
        )
    step = replace(case, next_check_at=next_check_at(case, now))
    due = overdue_at(case, policy)
    if due is not None and now >= due and not case.overdue_noted:
        late = hours(now - due)
        return CaseStep(
            replace(step, overdue_noted=True),
            (
                CaseEvent(
                    "overdue",
                    f"{case.subject} is still listed on {case.zone}, {late} past the list's own "
                    f"expiry or review time: {policy.advice()}",
                ),
            ),
        )
    return CaseStep(step)
