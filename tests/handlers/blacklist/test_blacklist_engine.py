"""The whole check against the real fixture DNS server and the test zones."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest

from handlers.blacklist import (
    AnswerCache,
    BlacklistEngine,
    BlacklistSetupError,
    CheckItem,
    parse_target,
    run_check,
    select_lists,
)
from tests.fixtures.dnsbl_zones import (
    BAD_ANSWER_IP,
    BLOCKED_IP,
    CLEAN_IP,
    GOOD_REP_IP,
    HEALTHY_ZONES,
    HOST,
    LISTED_IP,
    LISTED_IPV6,
    MX_DOMAIN,
    POLICY_IP,
    SPAM_DOMAIN,
    UNHEALTHY_ZONES,
    rev,
)


def by_target(report, target):
    found = [t for t in report.targets if t.target == target]
    assert found, f"{target} not in report"
    return found[0]


async def test_listed_ip_has_codes_meanings_txt_and_delist_link(test_lists, settings):
    report = await run_check([parse_target(LISTED_IP)], test_lists, settings)
    result = by_target(report, LISTED_IP)
    zen = next(item for item in result.listed if item.zone == "zen.dnsbl.test")
    assert zen.codes == ("127.0.0.2", "127.0.0.10")
    assert zen.meanings == ("SBL: spam source", "PBL: should not send mail directly")
    assert zen.severity == "major"
    assert zen.txt == "Listed in SBL, see https://delist.example/sbl1"
    assert zen.delist_url == "https://delist.example/zen"
    assert report.status == "problem"


async def test_truncated_txt_is_fetched_over_tcp(test_lists, settings, dns_server):
    report = await run_check([parse_target(LISTED_IP)], test_lists, settings)
    bl = next(i for i in by_target(report, LISTED_IP).listed if i.zone == "bl.dnsbl.test")
    assert "listed by Test BL" in bl.txt and "x" * 200 in bl.txt
    assert dns_server.queries[(f"{rev(LISTED_IP)}.bl.dnsbl.test", "TXT", "tcp")] >= 1
    # no meaning catalogued: shown with the raw code, the list's severity, the lookup URL
    assert bl.meanings == ("listed on Test BL (code 127.0.0.2)",)
    assert bl.delist_url == "https://lookup.example/bl"


async def test_unhealthy_lists_are_reported_with_reasons_and_set_aside(test_lists, settings):
    report = await run_check([parse_target(CLEAN_IP)], test_lists, settings)
    reasons = {h.zone: h.reason for h in report.health.unhealthy}
    assert reasons == UNHEALTHY_ZONES
    result = by_target(report, CLEAN_IP)
    # the dead list answers 127.0.0.2 for everything, yet the clean IP is not "listed"
    assert result.listed == []
    assert result.healthy_total == 3  # zen, bl, rep serve IPv4
    assert result.lists_total == 7
    assert result.answered == 3
    # incomplete: four lists could not be trusted, so the result is not "clean"
    assert report.status == "failed"
    assert "gone.dnsbl.test" not in {lst.zone for lst in report.health.applicable["ipv4"]}


async def test_clean_when_every_list_is_healthy(test_lists, settings):
    healthy = [lst for lst in test_lists if lst.zone in HEALTHY_ZONES]
    report = await run_check([parse_target(CLEAN_IP)], healthy, settings)
    assert report.status == "ok"
    assert by_target(report, CLEAN_IP).answered == 3


async def test_blocked_and_bad_answers_are_failures_never_clean(test_lists, settings):
    healthy = [lst for lst in test_lists if lst.zone in HEALTHY_ZONES]
    report = await run_check(
        [parse_target(BLOCKED_IP), parse_target(BAD_ANSWER_IP)], healthy, settings
    )
    blocked = by_target(report, BLOCKED_IP)
    assert [(f.zone, f.reason) for f in blocked.failed] == [("zen.dnsbl.test", "blocked")]
    assert "rate limited" in blocked.failed[0].detail
    assert blocked.listed == [] and blocked.answered == 2
    bad = by_target(report, BAD_ANSWER_IP)
    assert [(f.zone, f.reason) for f in bad.failed] == [("zen.dnsbl.test", "bad-answer")]
    assert "10.0.0.1" in bad.failed[0].detail
    assert report.status == "failed"


async def test_good_reputation_is_a_note_not_a_listing(test_lists, settings):
    healthy = [lst for lst in test_lists if lst.zone in HEALTHY_ZONES]
    report = await run_check([parse_target(GOOD_REP_IP)], healthy, settings)
    result = by_target(report, GOOD_REP_IP)
    assert result.listed == []
    assert result.notes == [("rep.dnsbl.test", "very good reputation")]
    assert report.status == "ok"


async def test_policy_only_listing_has_policy_severity(test_lists, settings):
    healthy = [lst for lst in test_lists if lst.zone in HEALTHY_ZONES]
    report = await run_check([parse_target(POLICY_IP)], healthy, settings)
    (listing,) = by_target(report, POLICY_IP).listed
    assert listing.severity == "policy"


async def test_ipv6_uses_nibbles_and_only_ipv6_lists(test_lists, settings):
    report = await run_check([parse_target(LISTED_IPV6)], test_lists, settings)
    result = by_target(report, LISTED_IPV6)
    assert [(i.zone, i.codes) for i in result.listed] == [("zen.dnsbl.test", ("127.0.0.3",))]
    assert result.lists_total == 1  # only zen serves IPv6
    # no IPv4-only list was self-tested for an IPv6-only run
    assert {h.zone for h in report.health.lists} == {"zen.dnsbl.test"}


async def test_host_checks_name_on_domain_lists_and_each_address(test_lists, settings):
    healthy = [lst for lst in test_lists if lst.zone in HEALTHY_ZONES]
    report = await run_check([parse_target(HOST), parse_target(SPAM_DOMAIN)], healthy, settings)
    targets = {(t.target, t.kind) for t in report.targets}
    assert (HOST, "domain") in targets
    assert (LISTED_IP, "ipv4") in targets and (LISTED_IPV6, "ipv6") in targets
    assert by_target(report, LISTED_IP).origin == HOST
    spam = by_target(report, SPAM_DOMAIN)
    assert [(i.zone, i.meanings, i.txt) for i in spam.listed] == [
        ("dbl.dnsbl.test", ("DBL: spam domain",), "spam domain")
    ]
    # a name that does not exist on the domain list is simply not listed; the missing A
    # record of spam.example (outside any zone: REFUSED) makes the run incomplete
    assert any(SPAM_DOMAIN in e for e in report.errors)


async def test_mx_domain_checks_every_mx_host_address(test_lists, settings):
    healthy = [lst for lst in test_lists if lst.zone in HEALTHY_ZONES]
    report = await run_check([parse_target(MX_DOMAIN, mx=True)], healthy, settings)
    assert {t.target for t in report.targets} == {MX_DOMAIN, LISTED_IP, LISTED_IPV6, CLEAN_IP}
    assert by_target(report, CLEAN_IP).origin == f"clean.example.test (MX of {MX_DOMAIN})"
    assert report.errors == []


async def test_missing_host_is_an_error_not_clean(test_lists, settings):
    healthy = [lst for lst in test_lists if lst.zone in HEALTHY_ZONES]
    report = await run_check([parse_target("nohost.example.test")], healthy, settings)
    assert report.errors == ["nohost.example.test: no such host (NXDOMAIN)"]
    assert report.status == "failed"


async def test_range_keeps_only_listed_and_failed_addresses(test_lists, settings):
    healthy = [lst for lst in test_lists if lst.zone in HEALTHY_ZONES]
    report = await run_check([parse_target("192.0.2.0/24")], healthy, settings)
    (summary,) = report.ranges
    assert (summary.checked, summary.listed, summary.failed) == (256, 1, 2)
    assert {t.target for t in report.targets} == {LISTED_IP, BLOCKED_IP, BAD_ANSWER_IP}
    assert all(t.in_range and t.origin == "192.0.2.0/24" for t in report.targets)


async def test_cache_honours_negative_ttl_and_answer_ttl(test_lists, settings, dns_server):
    healthy = [lst for lst in select_lists(test_lists) if lst.zone == "bl.dnsbl.test"]
    cache = AnswerCache()
    name = (f"{rev('192.0.2.33')}.bl.dnsbl.test", "A", "udp")
    before = dns_server.queries[name]
    await run_check([parse_target("192.0.2.33")], healthy, settings, cache=cache)
    await run_check([parse_target("192.0.2.33")], healthy, settings, cache=cache)
    assert dns_server.queries[name] == before + 1  # second run answered from the cache
    (entry,) = [v for k, v in cache._entries.items() if b"\x0233\x012\x010\x03192" in k]
    # the NXDOMAIN is kept for the SOA's negative TTL (120 s), not longer
    assert 119 <= entry[0] - cache.clock() <= 120


async def test_self_test_is_never_answered_from_the_cache(test_lists, settings, dns_server):
    healthy = [lst for lst in test_lists if lst.zone == "bl.dnsbl.test"]
    cache = AnswerCache()
    name = ("1.0.0.127.bl.dnsbl.test", "A", "udp")
    before = dns_server.queries[name]
    for _ in range(2):
        await run_check([parse_target(CLEAN_IP)], healthy, settings, cache=cache)
    assert dns_server.queries[name] == before + 2


async def test_dqs_key_queries_the_dqs_zone_and_never_shows_the_key(
    test_lists, settings, dns_server
):
    zen = [lst for lst in test_lists if lst.zone == "zen.dnsbl.test"]
    dqs = dataclasses.replace(settings, dqs_key="k3yABC123")
    report = await run_check([parse_target(LISTED_IP)], zen, dqs)
    assert dns_server.queries[(f"{rev(LISTED_IP)}.k3yabc123.zen.dq.dnsbl.test", "A", "udp")] >= 1
    assert by_target(report, LISTED_IP).listed[0].zone == "zen.dnsbl.test"
    assert report.dqs
    assert "k3yABC123" not in repr(report) and "k3yABC123" not in repr(dqs)
    assert "k3yABC123".lower() not in json.dumps(dataclasses.asdict(report), default=str).lower()


def test_malformed_dqs_key_is_refused(test_lists, settings):
    with pytest.raises(BlacklistSetupError, match="SPAMHAUS_DQS_KEY is malformed"):
        BlacklistEngine(test_lists, dataclasses.replace(settings, dqs_key="bad.key"))


async def test_check_streams_with_bounded_targets_in_progress(test_lists, settings):
    healthy = [lst for lst in test_lists if lst.zone in ("bl.dnsbl.test", "rep.dnsbl.test")]
    pulled = 0

    def items():
        nonlocal pulled
        for i in range(2000):
            pulled += 1
            yield CheckItem(f"10.9.{i // 256}.{i % 256}", "ipv4")

    async with BlacklistEngine(healthy, settings, AnswerCache(max_entries=0)) as engine:
        await engine.self_test(["ipv4"])
        seen = 0
        worst = 0
        async for _ in engine.check(items(), window=16):
            seen += 1
            worst = max(worst, pulled - seen)
    assert seen == 2000
    assert worst <= 16  # never more than the window in memory, however long the input


async def test_streamed_results_arrive_before_the_input_ends(test_lists, settings):
    healthy = [lst for lst in test_lists if lst.zone == "bl.dnsbl.test"]
    pulled = 0

    def items():
        nonlocal pulled
        for i in range(500):
            pulled += 1
            yield CheckItem(f"10.8.{i // 256}.{i % 256}", "ipv4")

    async with BlacklistEngine(healthy, settings) as engine:
        await engine.self_test(["ipv4"])
        first_seen_at = None
        async for _ in engine.check(items(), window=8):
            first_seen_at = pulled if first_seen_at is None else first_seen_at
    assert first_seen_at is not None and first_seen_at < 50


async def test_progress_is_reported(test_lists, settings):
    healthy = [lst for lst in test_lists if lst.zone in HEALTHY_ZONES]
    said: list[str] = []
    await run_check([parse_target(CLEAN_IP)], healthy, settings, progress=said.append)
    assert said[0] == "resolving targets…"
    assert said[-1].startswith("checked 1/1 on 3 lists")  # dbl serves domains only


async def test_concurrent_runs_do_not_interfere(test_lists, settings):
    healthy = [lst for lst in test_lists if lst.zone in HEALTHY_ZONES]
    reports = await asyncio.gather(
        *(run_check([parse_target(ip)], healthy, settings) for ip in (LISTED_IP, CLEAN_IP))
    )
    assert [r.status for r in reports] == ["problem", "ok"]


async def test_slow_consumer_does_not_stall_the_stream(test_lists, settings):
    # every target in progress finishes while the consumer is busy between two results;
    # the stream must refill instead of waiting for a wake-up that never comes
    healthy = [lst for lst in test_lists if lst.zone == "bl.dnsbl.test"]
    items = (CheckItem(f"10.7.0.{i}", "ipv4") for i in range(40))
    async with BlacklistEngine(healthy, settings) as engine:
        await engine.self_test(["ipv4"])
        seen = 0
        async with asyncio.timeout(10):
            async for _ in engine.check(items, window=4):
                seen += 1
                await asyncio.sleep(0.02)
    assert seen == 40
