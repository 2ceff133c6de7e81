"""Containment requests: subjects in canonical form, durations, rates, and one-line refusals."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers.policy.containment import (
    ContainmentError,
    ContainRequest,
    Limits,
    ListRequest,
    ReleaseRequest,
    format_duration,
    guess_kind,
    parse_duration,
    parse_rate,
    parse_request,
    parse_subject,
)

LIMITS = Limits(default_expiry=timedelta(hours=24), max_expiry=timedelta(days=7))


def request(line: str) -> ContainRequest:
    parsed = parse_request(line.split(), LIMITS)
    assert isinstance(parsed, ContainRequest)
    return parsed


def test_block_account_with_duration_and_reason() -> None:
    parsed = request("block account Carol@Example.COM 24h compromised password")
    assert parsed.action == "block"
    assert (parsed.subject.kind, parsed.subject.value) == ("account", "carol@example.com")
    assert parsed.duration == timedelta(hours=24) and parsed.duration_given
    assert parsed.reason == "compromised password"
    assert parsed.limit_per_hour == 0 and not parsed.cut_sessions


def test_hold_host_gets_the_default_expiry() -> None:
    parsed = request("hold host 192.168.1.50")
    assert (parsed.subject.kind, parsed.subject.value) == ("host", "192.168.1.50")
    assert parsed.duration == timedelta(hours=24) and not parsed.duration_given


def test_throttle_needs_and_takes_a_rate() -> None:
    parsed = request("throttle account bob@example.com 20/h")
    assert parsed.limit_per_hour == 20
    with pytest.raises(ContainmentError, match="needs a rate"):
        request("throttle account bob@example.com")
    with pytest.raises(ContainmentError, match="only to throttle"):
        request("block account bob@example.com 20/h")


def test_options_in_any_order_then_reason() -> None:
    parsed = request("block account x@example.com --cut 2h30m spam run 3h ago")
    assert parsed.cut_sessions and parsed.duration == timedelta(hours=2, minutes=30)
    assert parsed.reason == "spam run 3h ago"
    with pytest.raises(ContainmentError, match="only to block"):
        request("hold account x@example.com --cut")


def test_subject_kind_guessing_after_and_without_the_kind_word() -> None:
    assert request("block account carol@example.com").subject.kind == "account"
    assert request("block sender carol@example.com").subject.kind == "sender"
    assert request("block domain Example.com.").subject.value == "example.com"
    guessed = request("block carol@example.com").subject
    assert (guessed.kind, guessed.guessed) == ("account", True)
    assert request("hold 10.0.0.7").subject.kind == "host"
    with pytest.raises(ContainmentError, match="say what it is"):
        request("block example.com")


def test_release_and_list() -> None:
    release = parse_request("release host 10.1.2.0/24".split(), LIMITS)
    assert isinstance(release, ReleaseRequest)
    assert release.subject.value == "10.1.2.0/24"
    guessed = parse_request(["release", "Carol@example.com"], LIMITS)
    assert isinstance(guessed, ReleaseRequest)
    assert (guessed.subject.kind, guessed.subject.value) == ("account", "carol@example.com")
    assert parse_request(["list"], LIMITS) == ListRequest(False)
    assert parse_request(["list", "--all"], LIMITS) == ListRequest(True)
    with pytest.raises(ContainmentError):
        parse_request(["release", "account", "a@b.example", "now"], LIMITS)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("192.168.1.50/24", "192.168.1.0/24"),
        ("192.168.1.50/32", "192.168.1.50"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("2001:db8:1::/48", "2001:db8:1::/48"),
        ("::ffff:192.0.2.9", "192.0.2.9"),
        ("10.0.0.0/16", "10.0.0.0/16"),
    ],
)
def test_host_canonical_forms(text: str, canonical: str) -> None:
    assert parse_subject("host", text).value == canonical


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("0.0.0.0/0", "too wide"),
        ("10.0.0.0/8", "too wide"),
        ("10.0.0.0/15", "too wide"),
        ("2001:db8::/32", "too wide"),
        ("127.0.0.1", "loopback"),
        ("127.0.0.0/16", "loopback"),
        ("::1", "loopback"),
        ("0.0.0.0", "not a client"),
        ("224.0.0.1", "not a client"),
        ("mail.example.com", "not an IP"),
        ("192.168.1.300", "not an IP"),
    ],
)
def test_host_refusals(text: str, why: str) -> None:
    with pytest.raises(ContainmentError, match=why):
        parse_subject("host", text)


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("sender", "<>"),
        ("sender", "no-at-sign"),
        ("sender", "a@not_a_domain"),
        ("sender_domain", "localhost"),
        ("account", "carol<script>"),
        ("account", "two words"),
        ("account", "bell\x07"),
    ],
)
def test_other_refusals_are_one_line(kind: str, text: str) -> None:
    with pytest.raises(ContainmentError) as caught:
        parse_subject(kind, text)
    assert "\n" not in str(caught.value)


def test_durations_and_caps() -> None:
    assert parse_duration("90m") == timedelta(minutes=90)
    assert parse_duration("7d") == timedelta(days=7)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    for bad in ("", "24", "h", "-1h", "30s", "1.5h", "1y"):
        with pytest.raises(ContainmentError):
            parse_duration(bad)
    with pytest.raises(ContainmentError, match=r"policy\.max_expiry"):
        request("block account a@example.com 8d")
    assert request("block account a@example.com 7d").duration == timedelta(days=7)


def test_rates() -> None:
    assert parse_rate("20/h") == 20
    assert parse_rate("2/m") == 120
    assert parse_rate("480/d") == 20
    assert parse_rate("1/day") == 1
    for bad in ("0/h", "20", "20/s", "x/h"):
        with pytest.raises(ContainmentError):
            parse_rate(bad)


def test_bad_verbs_and_empty() -> None:
    for line in ("", "nuke account a@example.com", "block", "block account"):
        with pytest.raises(ContainmentError):
            parse_request(line.split(), LIMITS)


# -- properties -------------------------------------------------------------------------------


@given(st.integers(min_value=1, max_value=99_999), st.sampled_from("mhdw"))
def test_duration_round_trip(count: int, unit: str) -> None:
    span = parse_duration(f"{count}{unit}")
    seconds = {"m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]
    assert span.total_seconds() == count * seconds
    assert format_duration(span)


@given(st.ip_addresses(v=4), st.integers(min_value=16, max_value=32))
def test_ipv4_subjects_are_canonical_and_idempotent(address, prefix: int) -> None:
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    text = f"{address}/{prefix}"
    if network.overlaps(ipaddress.ip_network("127.0.0.0/8")) or (
        network.network_address.is_multicast or network.network_address.is_unspecified
    ):
        with pytest.raises(ContainmentError):
            parse_subject("host", text)
        return
    try:
        first = parse_subject("host", text)
    except ContainmentError as exc:  # only broadcast is left to refuse
        assert "255.255.255.255" in str(exc)
        return
    assert parse_subject("host", first.value) == first
    assert guess_kind(first.value) == "host"
    assert ipaddress.ip_address(address) in ipaddress.ip_network(first.value)


@given(st.ip_addresses(v=6), st.integers(min_value=0, max_value=47))
def test_wide_ipv6_ranges_are_refused(address, prefix: int) -> None:
    with pytest.raises(ContainmentError):
        parse_subject("host", f"{address}/{prefix}")


_local = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789._+-", min_size=1, max_size=20
)
_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)


@given(_local, st.lists(_label, min_size=1, max_size=3), st.sampled_from(["com", "org", "example"]))
def test_addresses_after_account_and_sender(local: str, labels: list[str], tld: str) -> None:
    address = f"{local}@{'.'.join(labels)}.{tld}"
    account = parse_subject("account", address)
    sender = parse_subject("sender", address.upper())
    assert account.kind == "account" and sender.kind == "sender"
    assert account.value == sender.value == address.lower()
    assert parse_subject(None, address).kind == "account"


@given(st.text(max_size=40))
def test_arbitrary_text_parses_or_fails_with_one_line(text: str) -> None:
    try:
        parse_request(text.split(), LIMITS)
    except ContainmentError as exc:
        assert "\n" not in str(exc)
