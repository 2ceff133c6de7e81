"""The LAN when the configuration does not name it: Exim's relay_from_hosts as `exim -bP` prints
it, Postfix's mynetworks forms, and the private ranges + loopback when no MTA answers."""

from __future__ import annotations

import pytest

from handlers.logsummary.engine import SummaryOptions, internal_matcher
from handlers.logsummary.lan import (
    DEFAULT_NETWORKS,
    discover_internal_networks,
    parse_exim_hostlist,
    parse_postfix_mynetworks,
)


@pytest.mark.parametrize(
    ("printed", "networks", "skipped"),
    [
        # Debian's exim4-config: a semicolon-separated list (IPv6 colons need no doubling)
        (
            "hostlist relay_from_hosts = <; 127.0.0.1 ; ::1 ; 192.168.10.0/24\n",
            ("127.0.0.1/32", "::1/128", "192.168.10.0/24"),
            (),
        ),
        # the default colon separator, with IPv6 colons doubled
        (
            "hostlist relay_from_hosts = 127.0.0.1 : ::::1 : 10.0.0.0/8 : *.example.com",
            ("127.0.0.1/32", "::1/128", "10.0.0.0/8"),
            ("*.example.com",),
        ),
        ("hostlist relay_from_hosts = ", (), ()),
    ],
)
def test_exim_relay_from_hosts(printed: str, networks: tuple, skipped: tuple) -> None:
    assert parse_exim_hostlist(printed) == (networks, skipped)


def test_postfix_mynetworks_forms() -> None:
    printed = "127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128,192.0.2.7 cidr:/etc/postfix/nets\n"
    assert parse_postfix_mynetworks(printed) == (
        ("127.0.0.0/8", "::ffff:7f00:0/104", "::1/128", "192.0.2.7/32"),
        ("cidr:/etc/postfix/nets",),
    )


def test_no_mta_means_private_ranges_and_loopback() -> None:
    lan = discover_internal_networks(which=lambda name: None)
    assert lan.networks == DEFAULT_NETWORKS
    assert "no MTA found" in lan.source
    inside = internal_matcher(lan.networks)
    assert all(inside(a) for a in ("10.1.2.3", "172.31.0.1", "192.168.0.9", "127.0.0.1", "::1"))
    assert all(inside(a) for a in ("fd00::1",))
    assert not any(inside(a) for a in ("192.0.2.1", "100.64.0.1", "2001:db8::1", "8.8.8.8"))


def test_the_engine_default_is_the_same() -> None:
    assert SummaryOptions().internal_networks == ()
    inside = internal_matcher(())
    assert inside("127.0.0.1") and inside("192.168.1.1") and not inside("198.51.100.1")
