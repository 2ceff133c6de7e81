"""Per-run list health: RFC 5782 self-tests and warnings about resolvers that lists refuse.

A list that lists 127.0.0.1 (or INVALID) is dead or wildcarded and would call every address
"listed"; a list that does not list 127.0.0.2 (or TEST) is not answering as it should. Either way
its answers this run are set aside, and the report says so.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from handlers.blacklist.catalog import DnsblList
from handlers.blacklist.classify import BLOCKED, ERROR, LISTED, NOT_LISTED, Verdict

# RFC 5782 section 5: (must be listed, must not be listed)
TEST_POINTS = {
    "ipv4": ("127.0.0.2", "127.0.0.1"),
    "ipv6": ("::ffff:7f00:2", "::ffff:7f00:1"),
    "domain": ("test", "invalid"),
}

# Big public resolvers: Spamhaus, URIBL, SURBL and others refuse queries arriving through them
# (or answer "not found", which reads as clean).
PUBLIC_RESOLVERS = {
    "8.8.8.8": "Google Public DNS",
    "8.8.4.4": "Google Public DNS",
    "2001:4860:4860::8888": "Google Public DNS",
    "2001:4860:4860::8844": "Google Public DNS",
    "1.1.1.1": "Cloudflare",
    "1.0.0.1": "Cloudflare",
    "2606:4700:4700::1111": "Cloudflare",
    "2606:4700:4700::1001": "Cloudflare",
    "9.9.9.9": "Quad9",
    "149.112.112.112": "Quad9",
    "2620:fe::fe": "Quad9",
    "2620:fe::9": "Quad9",
    "208.67.222.222": "OpenDNS",
    "208.67.220.220": "OpenDNS",
    "94.140.14.14": "AdGuard DNS",
    "94.140.15.15": "AdGuard DNS",
    "76.76.2.0": "Control D",
    "185.228.168.9": "CleanBrowsing",
    "64.6.64.6": "Neustar UltraDNS Public",
    "64.6.65.6": "Neustar UltraDNS Public",
}


@dataclass(frozen=True)
class ListHealth:
    zone: str
    healthy: bool
    # dead-or-wildcard | test-point-missing | blocked | timeout | servfail | refused | bad-answer
    reason: str = ""
    detail: str = ""


def judge(
    lst: DnsblList, kind: str, listed: Verdict | None, unlisted: Verdict | None
) -> ListHealth:
    """Health from the two self-test answers (None: that half is skipped for this list)."""
    positive, negative = TEST_POINTS[kind]
    positive = lst.test_listed or positive
    negative = lst.test_unlisted or negative
    for verdict in (unlisted, listed):
        if verdict is not None and verdict.outcome == BLOCKED:
            return ListHealth(lst.zone, False, "blocked", f"self-test refused: {verdict.detail}")
    if unlisted is not None:
        if unlisted.outcome == LISTED or (unlisted.outcome == NOT_LISTED and unlisted.codes):
            return ListHealth(
                lst.zone,
                False,
                "dead-or-wildcard",
                f"lists the test point {negative} ({', '.join(unlisted.codes)}), which must never "
                "be listed: the list is dead or answers 'listed' for everything",
            )
        if unlisted.outcome == ERROR:
            return ListHealth(lst.zone, False, unlisted.reason, f"self-test: {unlisted.detail}")
    if listed is not None:
        if listed.outcome == ERROR:
            return ListHealth(lst.zone, False, listed.reason, f"self-test: {listed.detail}")
        if listed.outcome == NOT_LISTED and not listed.codes:
            return ListHealth(
                lst.zone,
                False,
                "test-point-missing",
                f"does not list the test point {positive}: the zone is empty, "
                "misconfigured or not the list it claims to be",
            )
    return ListHealth(lst.zone, True)


def resolver_warnings(nameservers: list[tuple[str, int]]) -> list[str]:
    """A warning for every configured nameserver that DNSBLs are known to refuse."""
    warnings = []
    for host, _port in nameservers:
        try:
            normal = str(ipaddress.ip_address(host))
        except ValueError:
            continue
        if normal in PUBLIC_RESOLVERS:
            warnings.append(
                f"nameserver {normal} is {PUBLIC_RESOLVERS[normal]}, a public resolver: Spamhaus, "
                "URIBL, SURBL and others refuse queries through it (or answer 'not found', which "
                "looks clean). Use your own recursive resolver (e.g. unbound on localhost) or a "
                "Spamhaus DQS key."
            )
    return warnings


def spamhaus_warning(health: list[ListHealth]) -> str | None:
    blocked = [h.zone for h in health if not h.healthy and h.reason == "blocked" and _spamhaus(h)]
    if not blocked:
        return None
    return (
        f"Spamhaus refused the self-test ({', '.join(sorted(blocked))}): its answers this run are "
        "unusable. Query through your own resolver (not a public one, not forwarding to one) or "
        "set SPAMHAUS_DQS_KEY for the free Data Query Service."
    )


def _spamhaus(health: ListHealth) -> bool:
    return health.zone.endswith(".spamhaus.org") or health.zone.endswith(".spamhaus.net")


# When most lists fail their self-test the same way, the cause is the resolver or the network,
# not fifty lists at once: one sentence instead of fifty lines.
_COMMON_CAUSE = {
    "test-point-missing": (
        "your resolver answers NXDOMAIN for everything (offline, or filtering): no list "
        "lists its own test point"
    ),
    "refused": "this resolver refuses these zones (REFUSED): use one that recurses for this host",
    "timeout": "DNS queries time out: the resolver is unreachable or this host is offline",
    "servfail": "the resolver answers SERVFAIL: it cannot reach the lists' name servers",
    "blocked": (
        "the lists refuse this resolver (public resolvers are blocked by most lists): use a "
        "local recursive resolver"
    ),
    "dead-or-wildcard": (
        "your resolver answers every name with an address (NXDOMAIN rewriting, e.g. an ISP's "
        "search page): it cannot be used for blocklist checks"
    ),
}


def common_failure(health: list[ListHealth]) -> str:
    """'' unless most lists (at least 3, over half of those tested) failed for one reason;
    then that reason's likely cause, with the count."""
    if not health:
        return ""
    reasons: dict[str, int] = {}
    for item in health:
        if not item.healthy:
            reasons[item.reason] = reasons.get(item.reason, 0) + 1
    if not reasons:
        return ""
    reason, count = max(reasons.items(), key=lambda pair: pair[1])
    if count < 3 or count * 2 <= len(health):
        return ""
    cause = _COMMON_CAUSE.get(reason, f"the self-test failed with {reason}")
    return f"{cause} ({count} of {len(health)} lists failed the self-test this way)"
