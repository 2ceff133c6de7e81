"""Diagnostics: reverse DNS through a local nameserver, EHLO parsing, certificates, vantage."""

from __future__ import annotations

import datetime as dt

from handlers.relay import DnspythonLookup, ProbeOptions, ProbeTimeouts, Verdict, check_relay
from handlers.relay.diagnostics import (
    auth_mechanisms,
    certificate_info,
    first_hostname,
    parse_ehlo,
    reverse_dns,
    size_limit,
    user_lookup_enabled,
    vantage_warning,
)
from tests.fixtures.relay_dns import dns_server
from tests.fixtures.relay_smtp import RelayPolicy, closed_rcpt, smtp_server

FAST = ProbeTimeouts(connect=1.0, banner=0.5, command=0.5, budget=10.0)
PTR_127 = "1.0.0.127.in-addr.arpa."


async def test_fcrdns_and_banner_match_through_a_real_resolver():
    records = {
        (PTR_127, "PTR"): ["mx.relaywatch.test."],
        ("mx.relaywatch.test.", "A"): ["127.0.0.1"],
    }
    async with (
        dns_server(records) as (nameserver, _),
        smtp_server(RelayPolicy(rcpt=closed_rcpt)) as server,
    ):
        report = await check_relay(
            [server.target], ProbeOptions(timeouts=FAST), DnspythonLookup([nameserver], 1.0)
        )
    (target,) = report.targets
    assert target.verdict is Verdict.CLOSED
    rdns = target.diagnostics.reverse_dns
    assert rdns.ptr == ["mx.relaywatch.test"] and rdns.fcrdns is True
    assert target.diagnostics.banner_matches_ptr is True
    assert target.diagnostics.ehlo_matches_ptr is True
    assert not any("PTR" in w for w in target.warnings)


async def test_ptr_that_does_not_resolve_back_is_a_warning():
    records = {
        (PTR_127, "PTR"): ["dynamic-127-0-0-1.isp.test."],
        ("dynamic-127-0-0-1.isp.test.", "A"): ["192.0.2.99"],
    }
    async with (
        dns_server(records) as (nameserver, _),
        smtp_server(RelayPolicy(rcpt=closed_rcpt)) as server,
    ):
        report = await check_relay(
            [server.target], ProbeOptions(timeouts=FAST), DnspythonLookup([nameserver], 1.0)
        )
    (target,) = report.targets
    rdns = target.diagnostics.reverse_dns
    assert rdns.ptr == ["dynamic-127-0-0-1.isp.test"] and rdns.fcrdns is False
    assert target.diagnostics.banner_matches_ptr is False
    assert any("does not resolve back" in w for w in target.warnings)
    assert any("banner announces mx.relaywatch.test" in w for w in target.warnings)


async def test_missing_ptr_and_dead_nameserver():
    async with dns_server({}) as (nameserver, _):
        missing = await reverse_dns(DnspythonLookup([nameserver], 1.0), "127.0.0.1")
    assert missing.ptr == [] and missing.fcrdns is False and "NXDOMAIN" in missing.error
    # a nameserver that never answers: the lookup gives up within its lifetime, undecided
    dead = await reverse_dns(DnspythonLookup(["127.0.0.1:9"], 0.3), "127.0.0.1")
    assert dead.fcrdns is None and dead.error


def test_ehlo_and_banner_parsing():
    name, extensions = parse_ehlo(
        "mx.example.com\nPIPELINING\nSIZE 10240000\nAUTH PLAIN LOGIN\nAUTH=LOGIN\nSTARTTLS"
    )
    assert name == "mx.example.com"
    assert auth_mechanisms(extensions) == ["PLAIN", "LOGIN"]
    assert size_limit(extensions) == 10240000
    assert size_limit(["PIPELINING"]) is None
    assert first_hostname("mx.example.com ESMTP Postfix (Debian/GNU)") == "mx.example.com"
    assert first_hostname("ESMTP ready") == "esmtp"  # a single word is taken as given
    assert first_hostname("") == ""


def test_user_lookup_interpretation():
    assert user_lookup_enabled(252, "2.0.0 postmaster") is True
    assert user_lookup_enabled(252, "Cannot VRFY user, but will accept message") is False
    assert user_lookup_enabled(502, "5.5.1 VRFY command is disabled") is False
    assert user_lookup_enabled(550, "5.1.1 <x>: Recipient address rejected") is True
    assert user_lookup_enabled(None, "") is None


def test_certificate_info_from_der():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime(2026, 11, 28, tzinfo=dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    leaf = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mx.example.com")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(leaf)
        .issuer_name(ca)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=100))
        .not_valid_after(now - dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("mx.example.com")]), False)
        .sign(ca_key, hashes.SHA256())
    )
    info = certificate_info(cert.public_bytes(serialization.Encoding.DER), now=now)
    assert info is not None
    assert info.subject == "CN=mx.example.com" and info.issuer == "CN=Test CA"
    assert info.expired and info.days_left == -2 and not info.self_signed
    assert info.names == ["mx.example.com"]
    assert certificate_info(None) is None


def test_vantage_warnings():
    assert "loopback" in (vantage_warning("127.0.0.1", "127.0.0.1") or "")
    assert "same network" in (vantage_warning("198.51.100.20", "198.51.100.25") or "")
    assert "private address" in (vantage_warning("10.0.0.5", "203.0.113.9") or "")
    # public addresses in different networks: nothing to warn about (no traffic is sent here)
    assert vantage_warning("93.184.216.34", "8.8.4.4") is None
    assert "same network" in (vantage_warning("2001:db8:1::5", "2001:db8:1::25") or "")
