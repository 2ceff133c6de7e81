"""The health digest as data: what the renderers (terminal, Slack, JSON) all draw from."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

DigestStatus = Literal["green", "yellow", "red"]
# listed / clean: the latest check answered; partial: nothing found, but some lists could not be
# asked (not clean); failed: the latest check could not complete; stale: the last usable result
# is too old to vouch for today; unchecked: never checked.
SubjectStatus = Literal["listed", "clean", "partial", "failed", "stale", "unchecked"]


@dataclass
class Listing:
    target: str
    zone: str
    codes: list[str]
    meanings: list[str]
    delist_url: str
    severity: str
    listed_since: str  # ISO time of the first check in the current unbroken run of listings
    days_listed: int
    new: bool  # first seen after the previous digest


@dataclass
class AddressReport:
    """One watched IP, CIDR or domain on the DNS blocklists."""

    subject: str
    kind: str  # ip | cidr | domain
    status: SubjectStatus
    checked_at: str | None
    check_id: int | None
    listings: list[Listing] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # "target zone" delisted since last digest
    lists_answered: int = 0
    lists_total: int = 0
    failed_lists: int = 0
    unhealthy_lists: int = 0
    note: str = ""  # why failed / partial / stale / unchecked


@dataclass
class ServerReport:
    """One watched mail server's open-relay verdict."""

    subject: str
    status: Literal["ok", "problem", "failed", "stale", "unchecked"]
    verdict: str  # open | closed | suspect | inconclusive | unreachable | "" (unknown)
    previous_verdict: str  # at the previous digest; "" when unknown
    warnings: list[str]
    checked_at: str | None
    check_id: int | None
    note: str = ""


@dataclass
class MailTotals:
    window: str
    checked_at: str
    check_id: int
    current: dict[str, int]
    previous: dict[str, int] | None  # the window before (None: no history that far back)
    previous_checked_at: str | None
    deltas: dict[str, int] | None
    unparsed_lines: int
    previous_check_id: int | None = None  # the stored summary `previous` comes from


@dataclass
class SuspectReport:
    kind: str
    subject: str
    score: float
    reasons: list[str]
    evidence: list[str]  # the first few log lines that prove it
    new: bool
    attack: bool = False  # an attack on us (probing, password guessing), not a compromise
    action: str = ""  # what to do next, from the log summary


@dataclass
class DomainAuthReport:
    """One watched domain's sending authentication: SPF, DKIM, DMARC, reverse DNS, MTA-STS."""

    domain: str
    status: Literal["pass", "warn", "fail", "error", "stale", "unchecked"]
    checked_at: str | None
    check_id: int | None
    failing: list[str] = field(default_factory=list)  # "spf.all plusall.test: +all …"
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)  # the records to publish for the failures
    counts: dict[str, int] = field(default_factory=dict)
    note: str = ""


@dataclass
class NotRun:
    """A check the digest cannot vouch for: shown as such, never as green."""

    kind: str  # blacklist | relay | mailsummary | domain
    subject: str
    reason: str
    at: str | None
    check_id: int | None


@dataclass
class AlertNote:
    id: int
    subject_key: str
    kind: str
    state: str
    summary: str
    opened_at: str
    acknowledged_by: str | None
    acknowledged_at: str | None


@dataclass
class DelistingNote:
    """An open delisting case: how long listed, whether removal was asked, whether overdue."""

    subject: str
    zone: str
    listed_hours: float
    cause_fixed_by: str
    requested_by: str
    requested_at: str | None
    overdue: bool
    removal: str  # the list's removal policy (self-service, request, expires, …)
    relistings: int


@dataclass
class Digest:
    generated_at: str
    since: str  # the previous digest this one compares with (or 24 h before, for the first)
    status: DigestStatus
    reasons: list[str]  # why the status is what it is, worst first
    addresses: list[AddressReport]
    servers: list[ServerReport]
    mail: MailTotals | None
    suspects: list[SuspectReport]
    not_run: list[NotRun]
    open_alerts: list[AlertNote]
    acknowledged: list[AlertNote]  # acknowledged since the previous digest, or still open
    timezone: str = "UTC"  # the schedule's zone: how the renderers show times to people
    delisting: list[DelistingNote] = field(default_factory=list)  # open cases, longest first
    domains: list[DomainAuthReport] = field(default_factory=list)  # the Authentication section

    @property
    def could_not_run(self) -> bool:
        return bool(self.not_run)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
