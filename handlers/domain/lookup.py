"""DNS for the domain check: one asyncio resolver for our own questions, and a synchronous one for
checkdmarc that remembers every lookup that failed.

checkdmarc folds some failed lookups into warnings (an `a` or `mx` term whose lookup timed out is
"Error when processing …", a report destination it could not ask is "unverified"). A failed
lookup must never read as a pass, so the resolver handed to it records each failure, and the
caller turns a check whose lookups failed into an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
import dns.reversename

AnswerState = Literal["ok", "nxdomain", "nodata", "error"]


@dataclass(frozen=True)
class Answer:
    name: str
    rdtype: str
    state: AnswerState
    values: tuple[str, ...] = ()
    error: str = ""  # why the lookup failed (state "error")

    @property
    def failed(self) -> bool:
        return self.state == "error"


def _configure(resolver: dns.resolver.BaseResolver, servers: list[tuple[str, int]], timeout: float):
    if servers:
        resolver.nameservers = [dns.nameserver.Do53Nameserver(h, p) for h, p in servers]
    # one question may be retried inside its lifetime, never past it
    resolver.timeout = min(1.0, timeout)
    resolver.lifetime = timeout


def _reason(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, dns.exception.Timeout):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, dns.resolver.NoNameservers):
        return "every nameserver failed (SERVFAIL or REFUSED)"
    return f"{type(exc).__name__}: {exc}"


class AsyncDns:
    """Our own lookups (MX, PTR, A/AAAA, DKIM TXT), with an explicit lifetime per question."""

    def __init__(self, servers: list[tuple[str, int]], timeout: float) -> None:
        self.timeout = timeout
        self.resolver = dns.asyncresolver.Resolver(configure=not servers)
        _configure(self.resolver, servers, timeout)
        self.resolver.cache = None

    async def query(self, name: str, rdtype: str) -> Answer:
        try:
            answer = await self.resolver.resolve(name, rdtype, lifetime=self.timeout)
        except dns.resolver.NXDOMAIN:
            return Answer(name, rdtype, "nxdomain")
        except dns.resolver.NoAnswer:
            return Answer(name, rdtype, "nodata")
        except dns.exception.DNSException as exc:
            return Answer(name, rdtype, "error", error=_reason(exc, self.timeout))
        return Answer(name, rdtype, "ok", tuple(_text(rdata) for rdata in answer))

    async def addresses(self, name: str) -> tuple[list[str], str]:
        """A and AAAA of `name` → (addresses, error or "")."""
        found: list[str] = []
        errors = []
        for rdtype in ("A", "AAAA"):
            answer = await self.query(name, rdtype)
            if answer.failed:
                errors.append(f"{rdtype} {answer.error}")
            found.extend(answer.values)
        return found, "; ".join(errors)

    async def ptr(self, address: str) -> Answer:
        return await self.query(dns.reversename.from_address(address).to_text(), "PTR")


def _text(rdata: object) -> str:
    kind = getattr(rdata, "rdtype", None)
    if kind == dns.rdatatype.TXT:
        # RFC 7208 §3.3 / RFC 6376 §3.6.2.2: the strings of one record are joined without spaces
        return b"".join(rdata.strings).decode("utf-8", "replace")  # type: ignore[attr-defined]
    if kind == dns.rdatatype.MX:
        exchange = rdata.exchange.to_text(omit_final_dot=True)  # type: ignore[attr-defined]
        return f"{rdata.preference} {exchange or '.'}"  # type: ignore[attr-defined]
    if kind in (dns.rdatatype.PTR, dns.rdatatype.CNAME):
        return rdata.target.to_text(omit_final_dot=True).lower()  # type: ignore[attr-defined]
    return rdata.to_text()  # type: ignore[attr-defined]


@dataclass
class LookupFailure:
    name: str
    rdtype: str
    reason: str


class RecordingResolver(dns.resolver.Resolver):
    """A synchronous resolver for checkdmarc that keeps a list of the lookups that failed.

    NXDOMAIN and "no such record" are answers, not failures. The obsolete SPF record type is
    left out: checkdmarc asks for it on the side and some servers refuse that type.
    """

    def __init__(self, servers: list[tuple[str, int]], timeout: float) -> None:
        super().__init__(configure=not servers)
        _configure(self, servers, timeout)
        self.cache = None
        self.failures: list[LookupFailure] = []

    def resolve(self, qname, rdtype="A", *args, **kwargs):  # type: ignore[override]
        try:
            return super().resolve(qname, rdtype, *args, **kwargs)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            raise
        except dns.exception.DNSException as exc:
            kind = rdtype if isinstance(rdtype, str) else dns.rdatatype.to_text(rdtype)
            if kind.upper() != "SPF":
                self.failures.append(LookupFailure(str(qname), kind, _reason(exc, self.lifetime)))
            raise

    def failure_text(self) -> str:
        return "; ".join(f"{f.name} {f.rdtype}: {f.reason}" for f in self.failures[:3]) + (
            f" and {len(self.failures) - 3} more" if len(self.failures) > 3 else ""
        )
