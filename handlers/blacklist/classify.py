"""Turning one DNSBL answer into exactly one verdict: listed, not listed, error or blocked.

The rule that matters: only NXDOMAIN (or an authoritative "no A record") is "not listed". A
timeout, SERVFAIL, REFUSED, an answer outside 127.0.0.0/8 (a resolver rewriting NXDOMAIN to an
advert page) or a list's own refusal code is never counted as clean.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import dns.exception
import dns.message
import dns.rdatatype

from handlers.blacklist.catalog import CodeMeaning, DnsblList
from handlers.blacklist.mux import ANSWER, NXDOMAIN

LISTED = "listed"
NOT_LISTED = "not_listed"
ERROR = "error"
BLOCKED = "blocked"

_LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")


@dataclass(frozen=True)
class Verdict:
    outcome: str  # listed | not_listed | error | blocked
    codes: tuple[str, ...] = ()
    meanings: tuple[CodeMeaning, ...] = ()
    # for error/blocked: timeout | servfail | refused | bad-answer | blocked
    reason: str = ""
    detail: str = ""  # human explanation (why blocked, what the bad answer was)
    ttl: int = 0
    notes: tuple[str, ...] = field(default=())  # e.g. a good reputation that is not a listing


def classify(lst: DnsblList, status: str, data: bytes | None) -> Verdict:
    """One A answer from `lst`, as the multiplexer delivered it (status + raw wire)."""
    if status == NXDOMAIN:
        return Verdict(NOT_LISTED)
    if status != ANSWER or data is None:
        return Verdict(ERROR, reason=status, detail=_ERROR_DETAIL.get(status, status))
    try:
        message = dns.message.from_wire(data, ignore_trailing=True)
    except dns.exception.DNSException as exc:
        return Verdict(ERROR, reason="bad-answer", detail=f"undecodable answer ({exc})")
    codes: list[str] = []
    ttl: int | None = None
    for rrset in message.answer:
        if rrset.rdtype == dns.rdatatype.A:
            codes.extend(rdata.address for rdata in rrset)
            ttl = rrset.ttl if ttl is None else min(ttl, rrset.ttl)
    return classify_codes(lst, sorted(set(codes), key=_code_key), ttl or 0)


def classify_codes(lst: DnsblList, codes: list[str], ttl: int = 0) -> Verdict:
    if not codes:
        # NOERROR without an A record: the name exists but carries no listing
        return Verdict(NOT_LISTED, ttl=ttl)
    outside = [c for c in codes if ipaddress.IPv4Address(c) not in _LOOPBACK]
    if outside:
        return Verdict(
            ERROR,
            codes=tuple(codes),
            reason="bad-answer",
            detail=(
                f"answered {', '.join(outside)}, outside 127.0.0.0/8: the resolver probably "
                "rewrites 'not found' answers; use a resolver that does not"
            ),
            ttl=ttl,
        )
    refusals = [lst.blocked[c] for c in codes if c in lst.blocked]
    if refusals:
        return Verdict(
            BLOCKED,
            codes=tuple(codes),
            reason="blocked",
            detail="; ".join(dict.fromkeys(refusals)),
            ttl=ttl,
        )
    meanings = lst.meanings_for(codes)
    listings = tuple(m for m in meanings if m.listing)
    if not listings:
        return Verdict(
            NOT_LISTED, codes=tuple(codes), ttl=ttl, notes=tuple(m.meaning for m in meanings)
        )
    return Verdict(LISTED, codes=tuple(codes), meanings=listings, ttl=ttl)


def txt_strings(data: bytes | None) -> str:
    """The TXT reason(s) from a raw TXT answer, joined; '' when there is none or it is garbled."""
    if data is None:
        return ""
    try:
        message = dns.message.from_wire(data, ignore_trailing=True)
    except dns.exception.DNSException:
        return ""
    texts = []
    for rrset in message.answer:
        if rrset.rdtype == dns.rdatatype.TXT:
            for rdata in rrset:
                texts.append(b"".join(rdata.strings).decode("utf-8", "replace"))
    return " | ".join(texts)


def negative_ttl(data: bytes | None) -> int:
    """RFC 2308 negative TTL of an NXDOMAIN: min(SOA TTL, SOA MINIMUM); 0 without a SOA."""
    if data is None:
        return 0
    try:
        message = dns.message.from_wire(data, ignore_trailing=True)
    except dns.exception.DNSException:
        return 0
    for rrset in message.authority:
        if rrset.rdtype == dns.rdatatype.SOA:
            return min(rrset.ttl, min(rdata.minimum for rdata in rrset))
    return 0


def _code_key(code: str) -> int:
    return int(ipaddress.IPv4Address(code))


_ERROR_DETAIL = {
    "timeout": "no answer before the timeout (after retries)",
    "servfail": "the resolver answered SERVFAIL (the list's servers failed or are unreachable)",
    "refused": "the resolver answered REFUSED",
    "bad-answer": "the answer was malformed or had an unexpected response code",
}
