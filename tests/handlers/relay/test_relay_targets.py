"""Target forms, one-time resolution, MX expansion and the chat safety policy."""

from __future__ import annotations

import pytest

from handlers.relay import (
    DnspythonLookup,
    ResolvedTarget,
    TargetError,
    TargetNotAllowed,
    TargetPolicy,
    TargetSpec,
    parse_target,
    plan_targets,
)
from handlers.relay.targets import allowlist_addresses, mx_targets, resolve_target
from tests.fixtures.relay_dns import dns_server


@pytest.mark.parametrize(
    ("text", "host", "port", "label"),
    [
        ("mx.example.com", "mx.example.com", 25, "mx.example.com:25"),
        ("MX.Example.COM.:587", "mx.example.com", 587, "mx.example.com:587"),
        ("192.0.2.10", "192.0.2.10", 25, "192.0.2.10:25"),
        ("192.0.2.10:2525", "192.0.2.10", 2525, "192.0.2.10:2525"),
        ("[2001:db8::25]:465", "2001:db8::25", 465, "[2001:db8::25]:465"),
        ("[2001:db8::25]", "2001:db8::25", 25, "[2001:db8::25]:25"),
        ("2001:db8::25", "2001:db8::25", 25, "[2001:db8::25]:25"),
        ("localhost", "localhost", 25, "localhost:25"),
    ],
)
def test_target_forms(text, host, port, label):
    spec = parse_target(text)
    assert (spec.host, spec.port, spec.label) == (host, port, label)


@pytest.mark.parametrize(
    "text", ["", "mx.example.com:0", "mx.example.com:99999", "[2001:db8::1", "bad host!", "x:y"]
)
def test_bad_targets_say_what_to_type(text):
    with pytest.raises(TargetError) as info:
        parse_target(text)
    assert str(info.value)


def test_cli_policy_allows_any_host_and_port():
    policy = TargetPolicy.unrestricted()
    policy.check(ResolvedTarget(TargetSpec("mx.example.com", 10025), "192.0.2.9"))


def test_chat_ports_are_limited_even_for_admins():
    admin = TargetPolicy(restricted=False)
    admin.check(ResolvedTarget(TargetSpec("mx.example.com", 587), "192.0.2.9"))
    with pytest.raises(TargetNotAllowed, match="port 22"):
        admin.check(ResolvedTarget(TargetSpec("mx.example.com", 22), "192.0.2.9"))
    extra = TargetPolicy(allowed_ports=frozenset({25, 465, 587, 2525, 10025}), restricted=False)
    extra.check(ResolvedTarget(TargetSpec("mx.example.com", 10025), "192.0.2.9"))


def test_non_admin_allowlist_checks_the_resolved_address():
    policy = TargetPolicy(
        allow_networks=("192.0.2.0/28",),
        allow_hosts=("mx.example.com", "*.mail.example.org"),
        allow_host_addresses=frozenset({"198.51.100.7"}),
        watched=lambda value: value in ("watched.example.net", "203.0.113.5"),
    )
    policy.check(ResolvedTarget(TargetSpec("anything.example", 25), "192.0.2.3"))  # network
    policy.check(ResolvedTarget(TargetSpec("mx.example.com", 25), "198.51.100.7"))  # allow_hosts
    policy.check(ResolvedTarget(TargetSpec("a.mail.example.org", 25), "10.9.9.9"))  # wildcard
    policy.check(ResolvedTarget(TargetSpec("watched.example.net", 25), "10.1.1.1"))  # watch list
    policy.check(ResolvedTarget(TargetSpec("other.example", 25), "203.0.113.5"))  # watched IP
    # an allowlisted NAME that now resolves elsewhere (DNS changed / rebinding) is refused
    with pytest.raises(TargetNotAllowed, match="not on the watch list"):
        policy.check(ResolvedTarget(TargetSpec("mx.example.com", 25), "10.0.0.1"))
    with pytest.raises(TargetNotAllowed):
        policy.check(ResolvedTarget(TargetSpec("192.0.2.200", 25), "192.0.2.200"))


async def test_names_resolve_once_through_the_configured_nameserver():
    records = {
        ("mx.relaywatch.test.", "A"): ["127.0.0.1"],
        ("relaywatch.test.", "MX"): ["10 mx.relaywatch.test.", "20 mx2.relaywatch.test."],
        ("mx2.relaywatch.test.", "A"): ["127.0.0.2"],
        ("nullmx.test.", "MX"): ["0 ."],
    }
    async with dns_server(records) as (nameserver, responder):
        lookup = DnspythonLookup([nameserver], timeout=1.0)
        resolved = await resolve_target(parse_target("mx.relaywatch.test:2525"), lookup)
        assert resolved.address == "127.0.0.1" and resolved.label == "mx.relaywatch.test:2525"
        assert responder.queries.count(("mx.relaywatch.test.", "A")) == 1
        specs = await mx_targets("relaywatch.test", lookup)
        assert [s.label for s in specs] == ["mx.relaywatch.test:25", "mx2.relaywatch.test:25"]
        with pytest.raises(TargetError, match="null MX"):
            await mx_targets("nullmx.test", lookup)
        planned = await plan_targets(
            ["nowhere.relaywatch.test"], ["relaywatch.test"], lookup, TargetPolicy.unrestricted()
        )
        assert [t.address for t in planned.targets] == ["127.0.0.1", "127.0.0.2"]
        assert [t.via_mx for t in planned.targets] == ["relaywatch.test", "relaywatch.test"]
        (unresolved,) = planned.unresolved
        assert unresolved.verdict == "unreachable" and "NXDOMAIN" in unresolved.error
        assert await allowlist_addresses(["mx2.relaywatch.test", "*.x.test"], lookup) == {
            "127.0.0.2"
        }


async def test_refused_target_stops_before_any_probe():
    policy = TargetPolicy(watched=lambda value: False)
    with pytest.raises(TargetNotAllowed):
        await plan_targets(["192.0.2.1:25"], [], DnspythonLookup(["127.0.0.1:9"]), policy)
    with pytest.raises(TargetNotAllowed, match="port 8080"):
        await plan_targets(["192.0.2.1:8080"], [], DnspythonLookup(["127.0.0.1:9"]), policy)
