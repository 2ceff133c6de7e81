"""Target parsing (with a Hypothesis fuzz) and RFC 5782 query names."""

from __future__ import annotations

import ipaddress

import dns.message
import dns.name
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.blacklist import TargetError, parse_target, reverse_name
from handlers.blacklist.mux import QTYPE_A, question_bytes
from handlers.blacklist.targets import name_labels_wire


def test_kinds():
    assert parse_target("192.0.2.1").kind == "ip"
    assert parse_target(" 2001:DB8::1 ").text == "2001:db8::1"
    assert parse_target("192.0.2.7/24").text == "192.0.2.0/24"
    assert parse_target("192.0.2.7/32").kind == "ip"
    host = parse_target("Mail.Example.COM.")
    assert (host.kind, host.name) == ("host", "mail.example.com")
    assert parse_target("bücher.example").name == "xn--bcher-kva.example"
    assert parse_target("example.com", mx=True).kind == "mx"


def test_range_limit_is_configurable():
    with pytest.raises(TargetError, match=r"range too large; the limit is /22 \(1,024"):
        parse_target("10.0.0.0/16")
    assert parse_target("10.0.0.0/16", max_ipv4_prefix=16).network.num_addresses == 65536
    with pytest.raises(TargetError, match="/118"):
        parse_target("2001:db8::/64")


def test_range_addresses_are_lazy():
    spec = parse_target("10.0.0.0/8", max_ipv4_prefix=8)
    first = spec.addresses()
    assert str(next(first)) == "10.0.0.0" and str(next(first)) == "10.0.0.1"


def test_rfc5782_query_names():
    assert reverse_name(ipaddress.ip_address("192.0.2.99")) == "99.2.0.192"
    # RFC 5782 section 2.4's example
    assert reverse_name(ipaddress.ip_address("2001:db8:1:2:3:4:567:89ab")) == (
        "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2"
    )


def test_question_wire_matches_dnspython():
    name = "99.2.0.192.zen.spamhaus.org"
    ours = question_bytes(name_labels_wire(name) + b"\x00", QTYPE_A)
    theirs = dns.message.make_query(name, "A").to_wire()[12:]
    assert ours == theirs


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=80), st.from_regex(r"[0-9a-f:./\[\]-]{1,40}", fullmatch=True)))
def test_garbage_gets_one_line_error_or_a_valid_target(text):
    try:
        spec = parse_target(text)
    except TargetError as exc:
        message = str(exc)
        assert message and "\n" not in message and len(message) < 300
        return
    assert spec.kind in ("ip", "range", "host")
    if spec.kind == "host":
        assert all(0 < len(label) < 64 for label in spec.name.split("."))
        name_labels_wire(spec.name)  # encodable on the wire
        dns.name.from_text(spec.name)
