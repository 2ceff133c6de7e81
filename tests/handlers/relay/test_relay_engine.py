"""The relay engine against aiosmtpd servers on 127.0.0.1 that reproduce real relay policies."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time

import pytest

from handlers.relay import (
    BATTERY,
    AttemptOutcome,
    ProbeOptions,
    ProbeTimeouts,
    TargetReport,
    Verdict,
    check_relay,
)
from tests.fixtures.relay_smtp import (
    RelayPolicy,
    closed_rcpt,
    self_signed_context,
    silent_server,
    smtp_server,
    trick_only_rcpt,
)

FAST = ProbeTimeouts(connect=1.0, banner=0.5, command=0.5, budget=10.0)
PLAIN_NAMES = {spec.name for spec in BATTERY if spec.kind == "plain"}
TRICK_NAMES = {spec.name for spec in BATTERY if spec.kind == "trick"}


class NoDns:
    """Reverse DNS that knows nothing, answered at once (no network)."""

    async def addresses(self, name: str) -> list[str]:
        raise LookupError(f"{name}: no such name (NXDOMAIN)")

    async def ptr(self, address: str) -> list[str]:
        raise LookupError(f"PTR {address}: no such name (NXDOMAIN)")

    async def mx(self, domain: str) -> list[tuple[int, str]]:
        raise LookupError(f"MX {domain}: no such name (NXDOMAIN)")


async def probe(target: str, **options) -> TargetReport:
    options.setdefault("timeouts", FAST)
    report = await check_relay([target], ProbeOptions(**options), NoDns())
    assert len(report.targets) == 1
    return report.targets[0]


def commands_of(report: TargetReport) -> list[str]:
    sent = [e.command for e in report.connect_log]
    for test in report.tests:
        sent.extend(e.command for e in test.exchanges)
    return sent


async def test_closed_server_every_attempt_refused_with_evidence():
    policy = RelayPolicy(rcpt=closed_rcpt)
    async with smtp_server(policy) as server:
        report = await probe(server.target)
    assert report.verdict is Verdict.CLOSED, report.explanation
    assert len(report.tests) == len(BATTERY) >= 20
    assert all(t.outcome is AttemptOutcome.REFUSED for t in report.tests)
    assert report.evidence == []
    first = report.tests[0]
    assert first.name == "null-sender"
    assert [e.command for e in first.exchanges] == [
        "MAIL FROM:<>",
        "RCPT TO:<relaywatch-test@example.net>",
    ]
    assert first.reply == "554 5.7.1 <relaywatch-test@example.net>: Relay access denied"
    assert first.exchanges[1].code == 554
    assert policy.data_commands == 0 and policy.messages_completed == 0
    assert "DATA" not in commands_of(report)


async def test_open_server_one_session_reused_with_rset():
    policy = RelayPolicy()
    async with smtp_server(policy) as server:
        report = await probe(server.target, confirm=False)
    assert report.verdict is Verdict.OPEN
    assert set(report.evidence) == PLAIN_NAMES
    assert "external-to-external" in report.evidence
    assert "OPEN RELAY" in report.explanation and "external-to-external" in report.explanation
    assert "--no-data" in report.explanation and "may overstate" in report.explanation
    # one connection for the whole battery: RSET between tests, never a completed message
    assert policy.sessions == 1 and report.diagnostics.sessions == 1
    sent = commands_of(report)
    assert sent.count("RSET") == len(BATTERY) - 1
    assert "DATA" not in sent and policy.data_commands == 0
    assert policy.messages_completed == 0
    test = next(t for t in report.tests if t.name == "external-to-external")
    assert test.accepted and test.reply == "250 2.1.5 Ok"
    assert test.mail_from == "<relaywatch@example.org>"
    assert test.rcpt_to == "<relaywatch-test@example.net>"


async def test_open_server_confirm_gets_354_and_hangs_up_without_a_message():
    policy = RelayPolicy()
    async with smtp_server(policy) as server:
        report = await probe(server.target, confirm=True, only_tests=("external-to-external",))
        await asyncio.sleep(0.05)  # let the server notice the hang-up
    assert report.verdict is Verdict.OPEN
    (test,) = report.tests
    assert test.data_reply is not None and test.data_reply.startswith("354")
    assert [e.command for e in test.exchanges][-2:] == ["DATA", "(hang up)"]
    assert policy.data_commands == 1
    assert policy.messages_completed == 0  # no final dot: nothing queued
    assert "354" in report.explanation


async def test_trick_only_server_is_suspect_not_open():
    async with smtp_server(RelayPolicy(rcpt=trick_only_rcpt)) as server:
        report = await probe(server.target)
    assert report.verdict is Verdict.SUSPECT
    assert set(report.evidence) == TRICK_NAMES
    assert all(not t.accepted for t in report.tests if t.kind == "plain")
    assert "local mailbox" in report.explanation
    assert "percent-hack-ip" in report.explanation


async def test_open_server_by_default_one_354_then_rcpt_only():
    policy = RelayPolicy()
    async with smtp_server(policy) as server:
        report = await probe(server.target)
    assert report.verdict is Verdict.OPEN and "354" in report.explanation
    # DATA once, hang up on its 354 (nothing queued); the rest reuse one more session
    assert policy.data_commands == 1 and policy.messages_completed == 0
    assert policy.sessions == 2
    assert "may overstate" not in report.explanation


async def test_accept_at_rcpt_reject_at_data():
    policy = RelayPolicy(data="554 5.7.1 Relaying denied at DATA")
    async with smtp_server(policy) as server:
        without_data = await probe(
            server.target, confirm=False, only_tests=("external-to-external",)
        )
        by_default = await probe(server.target, only_tests=("external-to-external", "null-sender"))
    assert without_data.verdict is Verdict.OPEN  # RCPT acceptance alone counts as open
    assert "may overstate" in without_data.explanation
    confirmed = by_default
    assert confirmed.verdict is Verdict.SUSPECT  # not open: it refuses at DATA
    assert all(t.data_reply == "554 5.7.1 Relaying denied at DATA" for t in confirmed.tests)
    assert "refused DATA" in confirmed.explanation
    assert policy.messages_completed == 0


async def test_greylisting_is_inconclusive():
    policy = RelayPolicy(rcpt=lambda a: "450 4.2.0 <x>: Recipient address rejected: Greylisted")
    async with smtp_server(policy) as server:
        report = await probe(server.target)
    assert report.verdict is Verdict.INCONCLUSIVE
    assert all(t.outcome is AttemptOutcome.TEMPFAIL for t in report.tests)
    assert "greylisting" in report.explanation.lower()
    assert report.tests[0].reply.startswith("450 4.2.0")


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_auth_required_is_inconclusive():
    async with smtp_server(RelayPolicy(auth_required=True)) as server:
        report = await probe(server.target)
    assert report.verdict is Verdict.INCONCLUSIVE
    assert {t.outcome for t in report.tests} == {AttemptOutcome.AUTH_REQUIRED}
    assert report.tests[0].reply.startswith("530")
    assert "authentication" in report.explanation


async def test_missing_banner_tarpit_is_inconclusive_and_fast():
    async with silent_server() as port:
        started = time.perf_counter()
        report = await probe(f"127.0.0.1:{port}")
    assert time.perf_counter() - started < 2.0
    assert report.verdict is Verdict.INCONCLUSIVE
    assert "no SMTP greeting" in report.explanation
    assert report.tests == []
    assert report.connect_log[-1].reply == "no greeting (timed out)"


async def test_slow_banner_tarpit_is_inconclusive():
    async with smtp_server(RelayPolicy(greeting_delay=2.0)) as server:
        report = await probe(server.target)
    assert report.verdict is Verdict.INCONCLUSIVE
    assert "no SMTP greeting within 0.5s" in report.explanation


async def test_command_tarpit_stops_after_repeated_timeouts():
    policy = RelayPolicy(command_delay=2.0)
    async with smtp_server(policy) as server:
        started = time.perf_counter()
        report = await probe(server.target)
    assert time.perf_counter() - started < 3.0
    assert report.verdict is Verdict.INCONCLUSIVE
    outcomes = [t.outcome for t in report.tests]
    assert outcomes[:2] == [AttemptOutcome.TIMEOUT, AttemptOutcome.TIMEOUT]
    assert set(outcomes[2:]) == {AttemptOutcome.NOT_RUN}
    assert "tarpit" in report.explanation
    assert report.tests[0].exchanges[-1].code is None


async def test_budget_caps_the_whole_target():
    policy = RelayPolicy(rcpt=closed_rcpt, command_delay=0.3)
    timeouts = ProbeTimeouts(connect=1.0, banner=1.0, command=1.0, budget=1.0)
    async with smtp_server(policy) as server:
        started = time.perf_counter()
        report = await probe(server.target, timeouts=timeouts)
    assert time.perf_counter() - started < 2.0
    assert report.verdict is Verdict.INCONCLUSIVE
    assert any("budget" in t.reply for t in report.tests if t.outcome is AttemptOutcome.NOT_RUN)


async def test_server_that_drops_after_errors_is_reconnected_transparently():
    policy = RelayPolicy(rcpt=closed_rcpt, drop_after_errors=3)
    async with smtp_server(policy) as server:
        report = await probe(server.target)
    assert report.verdict is Verdict.CLOSED, report.explanation
    assert all(t.outcome is AttemptOutcome.REFUSED for t in report.tests)
    retried = [t for t in report.tests if t.reconnected]
    assert retried, "the dropped tests should have been retried on a new session"
    # the server's 421 is kept as evidence on the test it interrupted
    assert all(any(e.code == 421 for e in t.exchanges) for t in retried)
    assert policy.sessions > 2 and report.diagnostics.sessions == policy.sessions


async def test_sessions_rotate_before_the_servers_error_limit():
    policy = RelayPolicy(rcpt=closed_rcpt)
    async with smtp_server(policy) as server:
        report = await probe(server.target, errors_per_session=8)
    # EXPN's 502 + 23 refusals = 24 errors, 8 per connection (VRFY's 252 is no error)
    assert policy.sessions == 3
    assert not any(t.reconnected for t in report.tests)


async def test_starttls_self_signed_and_auth_in_clear():
    policy = RelayPolicy(
        rcpt=closed_rcpt, tls_context=self_signed_context(), offer_auth_in_clear=True
    )
    async with smtp_server(policy) as server:
        report = await probe(server.target)
    assert report.verdict is Verdict.CLOSED
    diagnostics = report.diagnostics
    tls = diagnostics.tls
    assert tls.offered and tls.negotiated and not tls.implicit
    assert tls.protocol.startswith("TLSv1")
    assert tls.cipher
    assert tls.certificate is not None and tls.certificate.self_signed
    assert tls.certificate.subject == "CN=mx.relaywatch.test"
    assert 28 <= (tls.certificate.days_left or 0) <= 30
    assert {"PLAIN", "LOGIN"} <= set(diagnostics.auth_before_tls)
    assert any("clear text" in w for w in report.warnings)
    assert any("self-signed" in w for w in report.warnings)
    assert "STARTTLS" in [e.command for e in report.connect_log]


async def test_tls_off_does_not_negotiate():
    policy = RelayPolicy(rcpt=closed_rcpt, tls_context=self_signed_context())
    async with smtp_server(policy) as server:
        report = await probe(server.target, tls="off")
    assert report.diagnostics.tls.offered and not report.diagnostics.tls.negotiated
    assert "STARTTLS" not in [e.command for e in report.connect_log]


async def test_tls_require_without_starttls_is_inconclusive():
    async with smtp_server(RelayPolicy(rcpt=closed_rcpt)) as server:
        report = await probe(server.target, tls="require")
    assert report.verdict is Verdict.INCONCLUSIVE
    assert "STARTTLS" in report.explanation
    assert report.tests == []


async def test_implicit_tls_port():
    from aiosmtpd.smtp import SMTP

    from tests.fixtures.relay_smtp import PolicySMTP

    policy = RelayPolicy(rcpt=closed_rcpt)
    context = self_signed_context()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: PolicySMTP(policy, timeout=30), host="127.0.0.1", port=0, ssl=context
    )
    port = server.sockets[0].getsockname()[1]
    try:
        report = await probe(f"127.0.0.1:{port}", implicit_tls_ports=(port,))
    finally:
        server.close()
    assert issubclass(PolicySMTP, SMTP)
    assert report.verdict is Verdict.CLOSED
    assert report.diagnostics.tls.implicit and report.diagnostics.tls.negotiated
    assert report.diagnostics.tls.certificate is not None


async def test_unreachable_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    report = await probe(f"127.0.0.1:{port}")
    assert report.verdict is Verdict.UNREACHABLE
    assert "cannot connect" in report.explanation
    assert report.tests == []
    assert not any("STARTTLS" in w for w in report.warnings)


async def test_refusing_greeting_is_inconclusive():
    async with smtp_server(RelayPolicy(greeting="554 5.7.1 No SMTP service for you")) as server:
        report = await probe(server.target)
    assert report.verdict is Verdict.INCONCLUSIVE
    assert "554 5.7.1 No SMTP service for you" in report.explanation
    assert report.diagnostics.banner.startswith("554")


async def test_vantage_and_diagnostics_from_the_same_session():
    async with smtp_server(RelayPolicy(rcpt=closed_rcpt)) as server:
        report = await probe(server.target)
    assert report.source_ip == "127.0.0.1"
    assert any("loopback" in w and "mynetworks" in w for w in report.warnings)
    diagnostics = report.diagnostics
    assert diagnostics.banner.startswith("220 mx.relaywatch.test")
    assert diagnostics.banner_name == "mx.relaywatch.test"
    assert diagnostics.banner_ms is not None and diagnostics.banner_ms < 500
    assert diagnostics.esmtp and diagnostics.ehlo_name == "mx.relaywatch.test"
    assert diagnostics.size_limit == 33554432
    assert diagnostics.vrfy.startswith("252") and diagnostics.vrfy_enabled is False
    assert diagnostics.expn.startswith("502") and diagnostics.expn_enabled is False
    assert diagnostics.total_ms > 0
    # the server's own name fills the SERVER forms of the battery
    test = next(t for t in report.tests if t.name == "percent-hack-server")
    assert test.rcpt_to == "<relaywatch-test%example.net@mx.relaywatch.test>"


async def test_targets_run_concurrently_and_keep_their_order():
    policies = [RelayPolicy(rcpt=closed_rcpt, command_delay=0.2) for _ in range(4)]
    async with (
        smtp_server(policies[0]) as a,
        smtp_server(policies[1]) as b,
        smtp_server(RelayPolicy()) as c,
        smtp_server(policies[3]) as d,
    ):
        names = [a.target, b.target, c.target, d.target]
        started = time.perf_counter()
        report = await check_relay(
            names,
            ProbeOptions(timeouts=FAST, only_tests=("null-sender", "bang-path")),
            NoDns(),
            concurrency=4,
        )
        elapsed = time.perf_counter() - started
    assert [t.target for t in report.targets] == names
    assert [t.verdict for t in report.targets] == [
        Verdict.CLOSED,
        Verdict.CLOSED,
        Verdict.OPEN,
        Verdict.CLOSED,
    ]
    # three delayed servers, 2 RCPTs each at 200 ms: one after another would take >= 1.2 s
    assert elapsed < 0.9


async def test_progress_reports_each_test():
    seen: list[str] = []
    async with smtp_server(RelayPolicy(rcpt=closed_rcpt)) as server:
        await check_relay(
            [server.target], ProbeOptions(timeouts=FAST), NoDns(), progress=seen.append
        )
    assert seen[0].startswith(f"0/{len(BATTERY)} tests on 127.0.0.1:")
    assert seen[-1].startswith(f"{len(BATTERY)}/{len(BATTERY)} tests")
    assert len(seen) == len(BATTERY) + 1


async def test_unresolvable_name_is_unreachable_not_an_exception():
    report = await check_relay(["mx.nowhere.invalid:25"], ProbeOptions(timeouts=FAST), NoDns())
    (target,) = report.targets
    assert target.verdict is Verdict.UNREACHABLE
    assert "does not resolve" in target.explanation


def test_json_document_keeps_the_documented_keys():
    from handlers.relay.model import RelayReport, RelayTestResult

    report = RelayReport(
        [
            TargetReport(
                target="mx.example.com:25",
                host="mx.example.com",
                port=25,
                address="192.0.2.7",
                verdict=Verdict.CLOSED,
                explanation="x",
                source_ip="198.51.100.2",
                tests=[
                    RelayTestResult(
                        name="null-sender",
                        kind="plain",
                        description="d",
                        mail_from="<>",
                        rcpt_to="<a@example.net>",
                        outcome=AttemptOutcome.REFUSED,
                        reply="554 5.7.1 no",
                    )
                ],
            )
        ]
    )
    data = report.to_dict()
    (entry,) = data["targets"]
    assert {"target", "verdict", "source_ip", "tests", "diagnostics", "warnings"} <= set(entry)
    assert entry["target"] == "mx.example.com:25" and entry["verdict"] == "closed"
    (test,) = entry["tests"]
    assert {"name", "mail_from", "rcpt_to", "accepted", "reply"} <= set(test)
    assert test["accepted"] is False and test["reply"] == "554 5.7.1 no"
    assert isinstance(entry["diagnostics"], dict)


@pytest.mark.parametrize("tls_mode", ["auto", "require"])
async def test_failed_starttls_handshake(tls_mode):
    # a server whose STARTTLS answers 220 but then speaks garbage instead of TLS
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)  # no certificate loaded
    policy = RelayPolicy(rcpt=closed_rcpt, tls_context=context)
    async with smtp_server(policy) as server:
        report = await probe(server.target, tls=tls_mode, only_tests=("null-sender",))
    tls = report.diagnostics.tls
    assert tls.offered and not tls.negotiated and tls.error
    if tls_mode == "require":
        assert report.verdict is Verdict.INCONCLUSIVE
    else:
        # auto: carry on in clear text on a new connection and still decide
        assert report.verdict is Verdict.CLOSED
        assert any("handshake failed" in w for w in report.warnings)


async def test_helo_fallback_when_ehlo_is_refused():
    async with smtp_server(RelayPolicy(rcpt=closed_rcpt, refuse_ehlo=True)) as server:
        report = await probe(server.target)
    assert report.verdict is Verdict.CLOSED
    sent = [e.command for e in report.connect_log]
    assert sent[2].startswith("EHLO ") and sent[3].startswith("HELO ")
    assert report.diagnostics.esmtp is False
    assert not any("STARTTLS is not offered" in w for w in report.warnings)


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")
async def test_ipv6_target_and_address_literal():
    async with smtp_server(RelayPolicy(rcpt=closed_rcpt, host="::1")) as server:
        report = await probe(server.target)
    assert report.target == server.target and report.address == "::1"
    assert report.verdict is Verdict.CLOSED
    assert report.source_ip == "::1"
    test = next(t for t in report.tests if t.name == "ip-literal-sender")
    assert test.mail_from == "<relaywatch@[IPv6:::1]>"
