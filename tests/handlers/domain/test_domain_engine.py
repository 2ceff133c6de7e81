"""The domain check against the real test DNS server (and a local HTTPS server for MTA-STS)."""

from __future__ import annotations

import dataclasses

import pytest

from handlers.domain import (
    DomainInputError,
    DomainInputs,
    DomainReport,
    DomainSettings,
    Finding,
    SendingIp,
    normalize_domain,
    normalize_ip,
    normalize_selector,
)
from handlers.domain.engine import run_domain_check
from tests.fixtures.domain_zones import (
    GOOD_IP,
    MISMATCH_IP,
    MX_IP,
    NO_PTR_IP,
    POLICIES,
    policy_server,
)


def given(*addresses: str) -> tuple[SendingIp, ...]:
    return tuple(SendingIp(a, "given") for a in addresses)


def find(report: DomainReport, check_id: str, subject: str | None = None) -> Finding:
    matches = [
        f for f in report.findings if f.id == check_id and (subject is None or f.subject == subject)
    ]
    assert len(matches) == 1, (check_id, subject, report.findings)
    return matches[0]


async def check(settings: DomainSettings, domain: str, **inputs) -> DomainReport:
    return await run_domain_check(DomainInputs(domain, **inputs), settings)


async def test_the_good_domain_passes_everything(settings: DomainSettings) -> None:
    async with policy_server() as https:
        settings.mta_sts_port = https.port
        settings.ssl_context = https.client_context
        report = await check(
            settings,
            "good.test",
            ips=given(GOOD_IP),
            selectors=("s2048",),
            helo_names=("mail.good.test",),
        )
    assert report.status == "pass", [f for f in report.findings if f.status != "pass"]
    ids = {f.id for f in report.findings}
    assert {
        "spf.record",
        "spf.syntax",
        "spf.lookups",
        "spf.all",
        "spf.ip",
        "dmarc.record",
        "dmarc.policy",
        "dmarc.reports",
        "dkim.key",
        "ptr.fcrdns",
        "helo.name",
        "mx.hosts",
        "mta_sts.policy",
        "tls_rpt.record",
    } <= ids
    # the MX host's address joins the sending IPs: SPF and FCrDNS are checked for it too
    assert find(report, "spf.ip", MX_IP).detail["origin"] == "mx mx.good.test"
    assert find(report, "ptr.fcrdns", MX_IP).status == "pass"
    assert find(report, "spf.ip", GOOD_IP).detail["matched"] == "ip4:192.0.2.0/24"
    assert find(report, "spf.lookups").detail["dns_lookups"] == 1
    assert find(report, "dkim.key", "s2048").detail["bits"] == 2048
    assert report.mx_hosts == ["mx.good.test"]
    assert not any(f.fix for f in report.findings)


async def test_two_spf_records_fail_and_every_sender_gets_permerror(settings) -> None:
    report = await check(settings, "twospf.test", ips=given(GOOD_IP))
    record = find(report, "spf.record")
    assert record.status == "fail" and "more than one" in record.summary
    assert 'IN TXT "v=spf1 ip4:192.0.2.10 mx -all"' in record.fix
    ip = find(report, "spf.ip", GOOD_IP)
    assert ip.status == "fail" and ip.detail["result"] == "permerror"


async def test_more_than_ten_lookups_is_a_permerror(settings) -> None:
    report = await check(settings, "lookups.test", ips=given(GOOD_IP))
    lookups = find(report, "spf.lookups")
    assert lookups.status == "fail"
    assert lookups.detail["dns_lookups"] == 11
    assert "11 DNS lookups (limit 10)" in lookups.summary
    assert find(report, "spf.ip", GOOD_IP).detail["result"] == "permerror"


async def test_plus_all_fails_with_the_corrected_record(settings) -> None:
    report = await check(settings, "plusall.test")
    term = find(report, "spf.all")
    assert term.status == "fail"
    assert term.fix == 'plusall.test. IN TXT "v=spf1 -all"'


@pytest.mark.parametrize(
    ("domain", "check_id", "status", "words"),
    [
        ("neutral.test", "spf.all", "warn", "`?all`"),
        ("noall.test", "spf.all", "warn", "no `all` term"),
        ("ptr.test", "spf.ptr", "warn", "deprecated ptr"),
        ("voids.test", "spf.lookups", "fail", "3 void lookups (limit 2)"),
    ],
)
async def test_spf_weaknesses(settings, domain, check_id, status, words) -> None:
    report = await check(settings, domain, ips=given(GOOD_IP))
    finding = find(report, check_id)
    assert finding.status == status and words in finding.summary
    assert finding.fix


async def test_ptr_mechanism_makes_the_ip_verdict_undecided_not_a_pass(settings) -> None:
    report = await check(settings, "ptr.test", ips=given(GOOD_IP))
    verdict = find(report, "spf.ip", GOOD_IP)
    assert verdict.status == "warn" and verdict.detail["result"] == "undecided"


async def test_ip_verdicts_through_mx_and_include_terms(settings) -> None:
    # clean.test: "ip4:192.0.2.10 mx -all" with mx.good.test (192.0.2.25) as its MX host
    report = await check(settings, "clean.test")
    assert find(report, "spf.ip", MX_IP).detail["matched"] == "mx:clean.test"
    nested = await check(settings, "incl.test", ips=given(GOOD_IP, NO_PTR_IP))
    assert find(nested, "spf.ip", GOOD_IP).detail["matched"] == "include:clean.test"
    outside = find(nested, "spf.ip", NO_PTR_IP)
    assert (outside.status, outside.detail["result"]) == ("fail", "softfail")


async def test_an_mx_host_that_only_receives_is_warned_about_not_failed(settings) -> None:
    # mx.incl.test has NO_PTR_IP: no PTR and outside the SPF record, but it is only an MX host
    report = await check(settings, "incl.test")
    for check_id in ("spf.ip", "ptr.fcrdns"):
        finding = find(report, check_id, NO_PTR_IP)
        assert finding.status == "warn" and "only if it also sends" in finding.summary


async def test_an_ip_outside_the_record_fails(settings) -> None:
    report = await check(settings, "good.test", ips=given(NO_PTR_IP))
    verdict = find(report, "spf.ip", NO_PTR_IP)
    assert verdict.status == "fail" and verdict.detail["result"] == "fail"
    assert f"ip4:{NO_PTR_IP}" in verdict.fix


async def test_dmarc_p_none_is_monitoring_and_unauthorised_reports_fail(settings) -> None:
    report = await check(settings, "monitor.test")
    policy = find(report, "dmarc.policy")
    assert policy.status == "warn" and "monitoring only" in policy.summary
    assert "p=quarantine" in policy.fix
    reports = find(report, "dmarc.reports")
    assert reports.status == "fail"
    assert reports.fix == (
        "The report receiver publishes monitor.test._report._dmarc.reports.other.test. IN TXT "
        '"v=DMARC1"'
    )
    assert reports.detail["destinations"][0]["authorised"] is False


async def test_authorised_external_reports_pass(settings) -> None:
    report = await check(settings, "authorised.test")
    reports = find(report, "dmarc.reports")
    assert reports.status == "pass"
    assert reports.detail["destinations"][0] == {
        "tag": "rua",
        "address": "agg@reports.other.test",
        "external": True,
        "authorised": True,
    }


@pytest.mark.parametrize(
    ("selector", "status", "words"),
    [
        ("s2048", "pass", "2048 bits"),
        ("s1024", "warn", "weak"),
        ("s768", "fail", "too short"),
        ("revoked", "fail", "revoked"),
        ("testing", "warn", "t=y"),
        ("absent", "fail", "no DKIM key"),
    ],
)
async def test_dkim_keys(settings, selector: str, status: str, words: str) -> None:
    report = await check(settings, "good.test", selectors=(selector,))
    key = find(report, "dkim.key", selector)
    assert key.status == status and words in key.summary
    if status != "pass":
        assert key.fix


async def test_guessed_selectors_say_a_miss_proves_nothing(settings) -> None:
    report = await check(settings, "monitor.test")
    (key,) = [f for f in report.findings if f.id == "dkim.key"]
    assert key.status == "warn" and "proves nothing" in key.summary
    assert report.selectors_guessed


async def test_null_mx_is_recognised(settings) -> None:
    report = await check(settings, "nullmx.test")
    mx = find(report, "mx.hosts")
    assert mx.status == "warn" and mx.detail["null_mx"] is True and "RFC 7505" in mx.summary
    assert report.mx_hosts == []


async def test_ptr_mismatch_and_missing_ptr_fail(settings) -> None:
    report = await check(settings, "good.test", ips=given(MISMATCH_IP, NO_PTR_IP))
    mismatch = find(report, "ptr.fcrdns", MISMATCH_IP)
    assert mismatch.status == "fail" and "does not resolve back" in mismatch.summary
    assert mismatch.fix.startswith("liar.good.test. IN A 192.0.2.66")
    missing = find(report, "ptr.fcrdns", NO_PTR_IP)
    assert missing.status == "fail" and "no PTR" in missing.summary


@pytest.mark.parametrize("domain", ["broken.test", "slow.test"])
async def test_failed_lookups_are_errors_never_passes(settings, domain: str) -> None:
    report = await check(settings, domain, ips=given(GOOD_IP), selectors=("s1",))
    assert report.status == "error"
    for check_id in (
        "spf.record",
        "dmarc.record",
        "dkim.key",
        "mx.hosts",
        "mta_sts.policy",
        "tls_rpt.record",
    ):
        assert find(report, check_id).status == "error", check_id
    assert find(report, "spf.ip", GOOD_IP).status == "error"


async def test_a_failed_lookup_inside_spf_is_an_error_not_a_warning(settings) -> None:
    # checkdmarc turns the failed a: lookup into a warning; the IP verdict must not pass
    report = await check(settings, "halfbroken.test", ips=given(GOOD_IP))
    assert find(report, "spf.lookups").status == "error"
    assert find(report, "spf.ip", GOOD_IP).status == "error"


async def test_mta_sts_policy_missing_an_mx_host_fails(settings) -> None:
    async with policy_server() as https:
        settings.mta_sts_port = https.port
        settings.ssl_context = https.client_context
        gap = await check(settings, "stsgap.test")
        testing = await check(settings, "ststesting.test")
    policy = find(gap, "mta_sts.policy")
    assert policy.status == "fail" and "mx.stsgap.test" in policy.summary
    assert "mx: mx.stsgap.test" in policy.fix
    assert find(testing, "mta_sts.policy").status == "warn"


async def test_mta_sts_fetch_uses_the_address_map_and_rejects_an_untrusted_certificate(
    settings,
) -> None:
    async with policy_server({"mta-sts.good.test": POLICIES["mta-sts.good.test"]}) as https:
        mapped = dataclasses.replace(
            settings,
            mta_sts_port=https.port,
            ssl_context=https.client_context,
            address_map={"mta-sts.good.test": "127.0.0.1"},
        )
        ok = await check(mapped, "good.test")
        # the system CAs do not trust the test CA: that is a broken policy host, a fail
        untrusted = await check(dataclasses.replace(mapped, ssl_context=None), "good.test")
    assert find(ok, "mta_sts.policy").status == "pass"
    bad = find(untrusted, "mta_sts.policy")
    assert bad.status == "fail" and "certificate" in bad.summary


async def test_mta_sts_policy_server_down_is_an_error(settings) -> None:
    async with policy_server() as https:
        port = https.port
    settings.mta_sts_port = port  # nothing listens there any more
    report = await check(settings, "good.test")
    assert find(report, "mta_sts.policy").status == "error"


async def test_oversized_policy_fails(settings) -> None:
    big = POLICIES["mta-sts.good.test"] + "# padding\n" * 8000
    async with policy_server({"mta-sts.good.test": big}) as https:
        settings.mta_sts_port = https.port
        settings.ssl_context = https.client_context
        report = await check(settings, "good.test")
    policy = find(report, "mta_sts.policy")
    assert policy.status == "fail" and "larger than" in policy.summary


def test_input_validation() -> None:
    assert normalize_domain("Example.COM.") == "example.com"
    assert normalize_ip("2001:DB8::1") == "2001:db8::1"
    assert normalize_selector("S2048") == "s2048"
    for bad in ("nodot", "-bad.example", "exa mple.com", "192.0.2.1"):
        with pytest.raises(DomainInputError):
            normalize_domain(bad)
    with pytest.raises(DomainInputError):
        normalize_ip("example.com")
    with pytest.raises(DomainInputError):
        normalize_selector("bad selector")


def test_json_shape_keeps_the_documented_keys() -> None:
    report = DomainReport(
        "example.com",
        [Finding("spf.record", "example.com", "fail", "no SPF record", "why", "fix")],
    )
    data = report.to_dict()
    assert data["status"] == "fail"
    assert set(data["checks"][0]) >= {"id", "subject", "status", "summary", "fix"}
