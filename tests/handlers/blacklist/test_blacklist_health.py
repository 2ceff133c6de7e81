"""Self-test judgement and the resolver warnings."""

from __future__ import annotations

from handlers.blacklist import load_catalog, parse_entry
from handlers.blacklist.classify import ERROR, Verdict, classify_codes
from handlers.blacklist.health import judge, resolver_warnings, spamhaus_warning

LIST = parse_entry({"zone": "bl.example", "kind": ["ipv4", "domain"]}, "t")


def test_rfc5782_outcomes():
    listed = classify_codes(LIST, ["127.0.0.2"])
    clean = classify_codes(LIST, [])
    assert judge(LIST, "ipv4", listed, clean).healthy
    dead = judge(LIST, "ipv4", listed, listed)
    assert (dead.healthy, dead.reason) == (False, "dead-or-wildcard")
    assert "127.0.0.1" in dead.detail
    assert "INVALID" in judge(LIST, "domain", listed, listed).detail.upper()
    empty = judge(LIST, "ipv4", clean, clean)
    assert (empty.healthy, empty.reason) == (False, "test-point-missing")
    timeout = Verdict(ERROR, reason="timeout", detail="no answer")
    assert judge(LIST, "ipv4", listed, timeout).reason == "timeout"


def test_spamhaus_refusal_on_self_test_is_blocked_with_a_warning():
    zen = next(lst for lst in load_catalog() if lst.zone == "zen.spamhaus.org")
    refused = classify_codes(zen, ["127.255.255.254"])
    health = judge(zen, "ipv4", refused, classify_codes(zen, []))
    assert (health.healthy, health.reason) == (False, "blocked")
    assert "public or open resolver" in health.detail
    assert "SPAMHAUS_DQS_KEY" in spamhaus_warning([health])


def test_public_resolvers_are_warned_about():
    warnings = resolver_warnings([("8.8.8.8", 53), ("127.0.0.1", 53), ("2606:4700:4700::1111", 53)])
    assert len(warnings) == 2
    assert "Google Public DNS" in warnings[0] and "Cloudflare" in warnings[1]
    assert resolver_warnings([("9.9.9.9", 53)]) and resolver_warnings([("208.67.222.222", 53)])
