"""The built-in DNSBL catalog data, its loader, and the user's disabled/extra lists."""

from __future__ import annotations

import pytest

from handlers.blacklist import CatalogError, load_catalog, select_lists
from handlers.blacklist.classify import BLOCKED, LISTED, NOT_LISTED, classify_codes


@pytest.fixture(scope="module")
def catalog():
    return {lst.zone: lst for lst in load_catalog()}


def test_at_least_sixty_operating_lists_with_links(catalog):
    active = [lst for lst in catalog.values() if lst.active]
    assert len(active) >= 60
    assert all(lst.delist_url or lst.lookup_url for lst in active)
    assert {"ipv4", "ipv6", "domain"} <= {k for lst in active for k in lst.kinds}


def test_shut_down_lists_are_marked_dead_and_never_selected(catalog):
    for zone in ("dnsbl.sorbs.net", "dnsbl.ahbl.org", "dnsbl.njabl.org"):
        assert catalog[zone].status == "dead"
    selected = {lst.zone for lst in select_lists(list(catalog.values()))}
    assert not any("sorbs" in z or "ahbl" in z or "njabl" in z for z in selected)


def test_spamhaus_zen_codes_and_refusals(catalog):
    zen = catalog["zen.spamhaus.org"]
    assert zen.dqs_zone == "zen.dq.spamhaus.net"
    assert zen.codes["127.0.0.2"].meaning.startswith("SBL")
    assert zen.codes["127.0.0.3"].meaning.startswith("SBL CSS")
    assert all(zen.codes[f"127.0.0.{n}"].meaning.startswith("XBL") for n in (4, 5, 6, 7))
    assert "DROP" in zen.codes["127.0.0.9"].meaning
    assert zen.codes["127.0.0.10"].severity == zen.codes["127.0.0.11"].severity == "policy"
    assert catalog["pbl.spamhaus.org"].severity == "policy"
    verdict = classify_codes(zen, ["127.255.255.254"])
    assert verdict.outcome == BLOCKED and "public or open resolver" in verdict.detail
    assert classify_codes(zen, ["127.255.255.255"]).outcome == BLOCKED
    assert classify_codes(zen, ["127.255.255.252"]).outcome == BLOCKED
    mixed = classify_codes(zen, ["127.0.0.2", "127.0.0.10"])
    assert mixed.outcome == LISTED and [m.severity for m in mixed.meanings] == ["major", "policy"]


def test_dbl_codes_and_ip_query_refusal(catalog):
    dbl = catalog["dbl.spamhaus.org"]
    assert dbl.kinds == ("domain",) and dbl.dqs_zone == "dbl.dq.spamhaus.net"
    assert classify_codes(dbl, ["127.0.1.2"]).meanings[0].meaning == "DBL: spam domain"
    assert classify_codes(dbl, ["127.0.1.255"]).outcome == BLOCKED


def test_uribl_refusal_and_bitmask(catalog):
    uribl = catalog["multi.uribl.com"]
    assert classify_codes(uribl, ["127.0.0.1"]).outcome == BLOCKED
    both = classify_codes(uribl, ["127.0.0.10"])  # 2 (black) + 8 (red)
    assert [m.meaning.split(":")[0] for m in both.meanings] == ["URIBL black", "URIBL red"]


def test_mailspike_good_reputation_is_not_a_listing(catalog):
    rep = catalog["rep.mailspike.net"]
    for code in range(16, 21):
        verdict = classify_codes(rep, [f"127.0.0.{code}"])
        assert verdict.outcome == NOT_LISTED and verdict.notes
    assert classify_codes(rep, ["127.0.0.10"]).outcome == LISTED


def test_needs_key_or_registration_is_recorded(catalog):
    assert catalog["b.barracudacentral.org"].access == "registered-resolver"
    assert catalog["zen.spamhaus.org"].access == "own-resolver-or-key"


def test_disabled_and_extra_zones(catalog):
    lists = select_lists(
        list(catalog.values()),
        disabled_zones=["BL.SPAMCOP.NET."],
        extra_zones=[
            {"zone": "rbl.example.org", "kind": "ipv4", "severity": "major"},
            {"zone": "psbl.surriel.com", "kind": "ipv4", "severity": "major"},
        ],
    )
    zones = {lst.zone: lst for lst in lists}
    assert "bl.spamcop.net" not in zones
    assert zones["rbl.example.org"].source == "config"
    assert zones["psbl.surriel.com"].severity == "major"  # the user's entry replaces ours


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"kind": "ipv4"}, "zone must be a DNS name"),
        ({"zone": "x.example", "kind": "ipv5"}, "kind must be"),
        ({"zone": "x.example", "severity": "huge"}, "severity must be"),
        ({"zone": "x.example", "colour": "red"}, "unknown key 'colour'"),
        ({"zone": "x.example", "codes": {"2": "spam"}}, "not an IPv4 answer code"),
    ],
)
def test_bad_extra_zone_names_the_entry_and_the_key(entry, message):
    with pytest.raises(CatalogError, match=message) as info:
        select_lists([], extra_zones=[entry])
    assert str(info.value).startswith("blacklist.extra_zones[0]")
    assert "\n" not in str(info.value)
