"""The relay engine against a real Debian Postfix (private instance on 127.0.0.1 high ports).

Skipped when postfix is not installed or we are not root; with CI=true that is a failure instead,
so CI cannot pass without actually running this suite.
"""

from __future__ import annotations

import time

import pytest

from handlers.relay import AttemptOutcome, ProbeOptions, ProbeTimeouts, Verdict, check_relay
from tests.integration.postfix.postfix_instance import (
    PostfixInstance,
    remove,
    require_postfix,
)

pytestmark = pytest.mark.postfix

TIMEOUTS = ProbeTimeouts(connect=5.0, banner=10.0, command=10.0, budget=60.0)


class NoDns:
    async def addresses(self, name: str) -> list[str]:
        raise LookupError(f"{name}: no such name (NXDOMAIN)")

    async def ptr(self, address: str) -> list[str]:
        raise LookupError(f"PTR {address}: no such name (NXDOMAIN)")

    async def mx(self, domain: str) -> list[tuple[int, str]]:
        raise LookupError(f"MX {domain}: no such name (NXDOMAIN)")


@pytest.fixture(scope="module")
def postfix() -> PostfixInstance:
    instance = require_postfix()
    yield instance
    remove(instance)


async def probe(target: str, **options):
    options.setdefault("timeouts", TIMEOUTS)
    report = await check_relay([target], ProbeOptions(**options), NoDns())
    return report.targets[0]


async def test_closed_mx(postfix):
    started = time.perf_counter()
    report = await probe(postfix.target("closed"))
    elapsed = time.perf_counter() - started
    assert report.verdict is Verdict.CLOSED, report.explanation
    assert all(t.outcome is AttemptOutcome.REFUSED for t in report.tests)
    relay_denied = [t for t in report.tests if "Relay access denied" in t.reply]
    assert relay_denied and relay_denied[0].reply.startswith("554 5.7.1")
    diagnostics = report.diagnostics
    assert diagnostics.banner.startswith("220 mx.relaywatch.test ESMTP")
    assert diagnostics.ehlo_name == "mx.relaywatch.test"
    assert diagnostics.size_limit == 10240000
    assert diagnostics.tls.offered and diagnostics.tls.negotiated
    assert diagnostics.tls.certificate is not None and diagnostics.tls.certificate.self_signed
    assert diagnostics.vrfy_enabled is True  # Postfix's default: disable_vrfy_command = no
    # sessions rotate before smtpd_soft_error_limit (10) makes Postfix sleep 1 s per reply
    assert diagnostics.sessions >= 3
    assert elapsed < 10, f"the battery took {elapsed:.1f}s: did Postfix's error sleep kick in?"
    assert postfix.settled_queue_files() == []
    assert postfix.messages_queued() == []


async def test_debian_default_deferring_relay_rule_counts_as_refused(postfix):
    report = await probe(postfix.target("deferring"))
    assert report.verdict is Verdict.CLOSED, report.explanation
    assert any(t.reply.startswith("454 4.7.1") for t in report.tests)
    assert "defer_unauth_destination" in report.explanation
    assert "soft_bounce = yes" in report.explanation  # the other cause of the same 454


async def test_open_relay(postfix):
    report = await probe(postfix.target("open"))
    assert report.verdict is Verdict.OPEN, report.explanation
    assert "external-to-external" in report.evidence
    accepted = next(t for t in report.tests if t.name == "external-to-external")
    assert accepted.reply.startswith("250 2.1.5")
    assert any("loopback" in w for w in report.warnings)
    assert postfix.settled_queue_files() == []
    assert postfix.messages_queued() == []


async def test_open_relay_confirm_never_queues_a_message(postfix):
    report = await probe(
        postfix.target("open"), confirm=True, only_tests=("external-to-external", "null-sender")
    )
    assert report.verdict is Verdict.OPEN
    # the first accepted plain test goes on to DATA (354, hang up); once that proved the relay
    # open, the rest stop at RCPT instead of reconnecting each time
    first, second = report.tests
    assert first.data_reply and first.data_reply.startswith("354")
    assert second.accepted and second.data_reply is None
    assert postfix.settled_queue_files() == []
    assert postfix.messages_queued() == []
    assert "lost connection after DATA" in postfix.log()


async def test_auth_only_submission(postfix):
    report = await probe(postfix.target("submission"))
    assert report.verdict is Verdict.CLOSED, report.explanation
    assert all("Access denied" in t.reply for t in report.tests)
    diagnostics = report.diagnostics
    assert diagnostics.tls.negotiated
    assert diagnostics.auth_before_tls == []  # smtpd_tls_auth_only
    assert "PLAIN" in diagnostics.auth_after_tls


async def test_auth_only_submission_without_tls_is_inconclusive(postfix):
    report = await probe(postfix.target("submission"), tls="off")
    assert report.verdict is Verdict.INCONCLUSIVE, report.explanation
    assert {t.outcome for t in report.tests} == {AttemptOutcome.AUTH_REQUIRED}
    assert report.tests[0].reply.startswith("530 5.7.0 Must issue a STARTTLS command first")


async def test_all_listeners_concurrently(postfix):
    targets = [postfix.target(name) for name in ("closed", "open", "submission")]
    report = await check_relay(targets, ProbeOptions(timeouts=TIMEOUTS), NoDns(), concurrency=3)
    assert [t.verdict for t in report.targets] == [Verdict.CLOSED, Verdict.OPEN, Verdict.CLOSED]
