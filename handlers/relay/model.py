"""Typed results of a relay check: every command sent, every reply, the verdict and diagnostics."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    OPEN = "open"
    SUSPECT = "suspect"
    INCONCLUSIVE = "inconclusive"
    UNREACHABLE = "unreachable"
    CLOSED = "closed"


class AttemptOutcome(StrEnum):
    ACCEPTED = "accepted"  # RCPT answered 2xx
    REFUSED = "refused"  # MAIL or RCPT answered 5xx (other than 530)
    TEMPFAIL = "tempfail"  # 4xx: greylisting, rate limits, "try again later"
    AUTH_REQUIRED = "auth_required"  # 530: authenticate first
    DROPPED = "dropped"  # the server closed the connection and a reconnect did not help
    TIMEOUT = "timeout"  # no answer within the command timeout (tarpit) or the target's budget
    NOT_RUN = "not_run"  # the session could not be (re)established or the budget ran out


@dataclass
class SmtpExchange:
    """One command and the reply to it, exactly as sent and received."""

    command: str  # "RCPT TO:<x@example.net>", "(connect)", "(banner)", "(TLS handshake)"
    code: int | None  # None: no reply (timeout, dropped)
    reply: str  # the full reply text, multi-line replies joined with newlines; or what went wrong
    elapsed_ms: float

    @property
    def line(self) -> str:
        return f"{self.code} {self.reply}" if self.code is not None else self.reply

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "code": self.code,
            "reply": self.reply,
            "elapsed_ms": round(self.elapsed_ms, 1),
        }


@dataclass
class RelayTestResult:
    name: str
    kind: str  # "plain" | "trick"
    description: str
    mail_from: str
    rcpt_to: str
    outcome: AttemptOutcome
    reply: str  # the decisive reply ("250 2.1.5 Ok", "554 5.7.1 … Relay access denied")
    exchanges: list[SmtpExchange] = field(default_factory=list)
    # under --confirm: the answer to DATA ("354 End data with …" or the refusal); None: not sent
    data_reply: str | None = None
    reconnected: bool = False  # the test ran on a fresh session after the server dropped us

    @property
    def accepted(self) -> bool:
        return self.outcome is AttemptOutcome.ACCEPTED

    @property
    def data_accepted(self) -> bool:
        return self.data_reply is not None and self.data_reply.startswith("354")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "mail_from": self.mail_from,
            "rcpt_to": self.rcpt_to,
            "accepted": self.accepted,
            "outcome": str(self.outcome),
            "reply": self.reply,
            "data_reply": self.data_reply,
            "reconnected": self.reconnected,
            "commands": [e.to_dict() for e in self.exchanges],
        }


@dataclass
class CertificateInfo:
    subject: str = ""
    issuer: str = ""
    not_after: str = ""  # ISO 8601, UTC
    days_left: int | None = None
    expired: bool = False
    self_signed: bool = False
    names: list[str] = field(default_factory=list)  # subjectAltName DNS entries

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "not_after": self.not_after,
            "days_left": self.days_left,
            "expired": self.expired,
            "self_signed": self.self_signed,
            "names": list(self.names),
        }


@dataclass
class TlsInfo:
    offered: bool = False  # STARTTLS in the EHLO reply (or implicit TLS on connect)
    implicit: bool = False  # port 465: TLS from the first byte
    negotiated: bool = False
    protocol: str = ""  # "TLSv1.3"
    cipher: str = ""
    certificate: CertificateInfo | None = None
    error: str = ""  # why negotiation failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "offered": self.offered,
            "implicit": self.implicit,
            "negotiated": self.negotiated,
            "protocol": self.protocol,
            "cipher": self.cipher,
            "certificate": self.certificate.to_dict() if self.certificate else None,
            "error": self.error,
        }


@dataclass
class ReverseDns:
    ptr: list[str] = field(default_factory=list)
    fcrdns: bool | None = None  # a PTR name resolves back to the address; None: not determined
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"ptr": list(self.ptr), "fcrdns": self.fcrdns, "error": self.error}


@dataclass
class Diagnostics:
    banner: str = ""
    banner_ms: float | None = None
    banner_name: str = ""  # the host name the banner announces
    esmtp: bool | None = None  # EHLO answered (False: we fell back to HELO)
    ehlo_name: str = ""
    extensions: list[str] = field(default_factory=list)  # EHLO keywords with parameters
    size_limit: int | None = None
    tls: TlsInfo = field(default_factory=TlsInfo)
    auth_before_tls: list[str] = field(default_factory=list)
    auth_after_tls: list[str] = field(default_factory=list)
    vrfy: str = ""  # the raw reply to "VRFY postmaster", "" when not tried
    vrfy_enabled: bool | None = None
    expn: str = ""
    expn_enabled: bool | None = None
    reverse_dns: ReverseDns = field(default_factory=ReverseDns)
    banner_matches_ptr: bool | None = None
    ehlo_matches_ptr: bool | None = None
    sessions: int = 0  # how many SMTP connections the battery needed
    total_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "banner": self.banner,
            "banner_ms": None if self.banner_ms is None else round(self.banner_ms, 1),
            "banner_name": self.banner_name,
            "esmtp": self.esmtp,
            "ehlo_name": self.ehlo_name,
            "extensions": list(self.extensions),
            "size_limit": self.size_limit,
            "starttls": self.tls.to_dict(),
            "auth_before_tls": list(self.auth_before_tls),
            "auth_after_tls": list(self.auth_after_tls),
            "vrfy": self.vrfy,
            "vrfy_enabled": self.vrfy_enabled,
            "expn": self.expn,
            "expn_enabled": self.expn_enabled,
            "reverse_dns": self.reverse_dns.to_dict(),
            "banner_matches_ptr": self.banner_matches_ptr,
            "ehlo_matches_ptr": self.ehlo_matches_ptr,
            "sessions": self.sessions,
            "total_ms": round(self.total_ms, 1),
        }


@dataclass
class TargetReport:
    """Everything relaywatch learned about one host:port."""

    target: str  # "host:port" as the user named it ("[2001:db8::1]:25" for IPv6)
    host: str
    port: int
    address: str  # the address connected to (resolved once)
    verdict: Verdict
    explanation: str  # one or two sentences an admin can act on
    evidence: list[str] = field(default_factory=list)  # the test names the verdict rests on
    source_ip: str = ""
    tests: list[RelayTestResult] = field(default_factory=list)
    diagnostics: Diagnostics = field(default_factory=Diagnostics)
    warnings: list[str] = field(default_factory=list)
    connect_log: list[SmtpExchange] = field(default_factory=list)  # sessions, EHLO, TLS, QUIT
    confirm: bool = False
    error: str = ""  # why the target is unreachable / the run stopped early

    def to_dict(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for test in self.tests:
            counts[str(test.outcome)] = counts.get(str(test.outcome), 0) + 1
        return {
            "target": self.target,
            "host": self.host,
            "port": self.port,
            "address": self.address,
            "verdict": str(self.verdict),
            "explanation": self.explanation,
            "evidence": list(self.evidence),
            "source_ip": self.source_ip or None,
            "confirm": self.confirm,
            "counts": counts,
            "tests": [t.to_dict() for t in self.tests],
            "diagnostics": self.diagnostics.to_dict(),
            "warnings": list(self.warnings),
            "session_log": [e.to_dict() for e in self.connect_log],
            "error": self.error,
        }


@dataclass
class RelayReport:
    targets: list[TargetReport]

    def to_dict(self) -> dict[str, Any]:
        return {"targets": [t.to_dict() for t in self.targets]}

    @property
    def worst(self) -> Verdict | None:
        order = list(Verdict)
        return min((t.verdict for t in self.targets), key=order.index, default=None)
