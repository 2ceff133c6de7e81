"""The domain check's inputs, settings and results: plain values in, typed findings out."""

from __future__ import annotations

import ssl
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["pass", "warn", "fail", "error"]

# how a set of findings adds up: a fail is the strongest statement, then "could not check"
STATUS_ORDER: tuple[Status, ...] = ("fail", "error", "warn", "pass")

# tried when no selector is configured or given; a miss here proves nothing (selectors are free
# text chosen by whoever set up signing)
COMMON_SELECTORS = (
    "default",
    "selector1",
    "selector2",
    "google",
    "k1",
    "s1",
    "s2",
    "dkim",
    "mail",
)

# RFC 8461 §3.3 does not cap the policy size; receivers commonly refuse anything past 64 KiB
MTA_STS_MAX_BYTES = 64 * 1024


class DomainInputError(ValueError):
    """Input that is not a domain, an IP or a selector: one line saying what to type instead."""


@dataclass(frozen=True)
class Finding:
    """One check's verdict on one subject, with why it matters and the record that fixes it."""

    id: str  # spf.record, dmarc.policy, dkim.key, … (documented in docs/domaincheck.md)
    subject: str  # what was checked: the domain, an IP, a selector, a host name
    status: Status
    summary: str  # one sentence: what was found
    why: str = ""  # which receivers act on it
    fix: str = ""  # the exact record to publish (or the change to make); "" when nothing to do
    detail: dict[str, Any] = field(default_factory=dict)  # the raw facts (record text, counts…)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SendingIp:
    address: str
    origin: str  # "given" | "watch list" | "mx <host>"


@dataclass
class DomainReport:
    domain: str
    findings: list[Finding] = field(default_factory=list)
    sending_ips: list[SendingIp] = field(default_factory=list)
    mx_hosts: list[str] = field(default_factory=list)
    selectors_tried: list[str] = field(default_factory=list)
    selectors_guessed: bool = False
    duration: float = 0.0

    @property
    def status(self) -> Status:
        return worst(f.status for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "status": self.status,
            "checks": [f.to_dict() for f in self.findings],
            "sending_ips": [{"address": s.address, "origin": s.origin} for s in self.sending_ips],
            "mx_hosts": list(self.mx_hosts),
            "dkim_selectors": {
                "tried": list(self.selectors_tried),
                "guessed": self.selectors_guessed,
            },
            "counts": {s: sum(1 for f in self.findings if f.status == s) for s in STATUS_ORDER},
            "duration_seconds": round(self.duration, 3),
        }


def worst(statuses: Any) -> Status:
    seen = set(statuses)
    for status in STATUS_ORDER:
        if status in seen:
            return status
    return "pass"


@dataclass(frozen=True)
class DomainInputs:
    domain: str
    ips: tuple[SendingIp, ...] = ()  # given and watch-list sending IPs (MX addresses are added)
    selectors: tuple[str, ...] = ()  # empty: COMMON_SELECTORS are tried
    helo_names: tuple[str, ...] = ()  # the names watched servers give in HELO/EHLO or banner


@dataclass
class DomainSettings:
    nameservers: list[tuple[str, int]] = field(default_factory=list)  # empty: system resolver
    timeout: float = 3.0  # per DNS question
    mta_sts_timeout: float = 10.0  # the whole HTTPS policy fetch
    mta_sts_max_bytes: int = MTA_STS_MAX_BYTES
    mta_sts_port: int = 443  # tests serve the policy on an ephemeral port
    # host → address for the policy fetch; names not here resolve through `nameservers`
    address_map: dict[str, str] = field(default_factory=dict)
    ssl_context: ssl.SSLContext | None = None  # None: the system's CAs
    common_selectors: tuple[str, ...] = COMMON_SELECTORS
