"""Hostile and tarpitting SMTP servers give verdicts (inconclusive, saying what the server did),
never exceptions, and a tarpit's answer comes within the tarpit budget (delays scaled down)."""

from __future__ import annotations

import time

import pytest

from handlers.relay import AttemptOutcome, ProbeOptions, ProbeTimeouts, Verdict, check_relay
from tests.fixtures.hostile_smtp import Hostile, hostile_server
from tests.handlers.relay.test_relay_engine import NoDns

# the production ratios (banner/command 30 s, tarpit at 5 s, answer within 30 s) scaled down
FAST = ProbeTimeouts(
    connect=1.0, banner=1.0, command=1.0, budget=20.0, tarpit_reply=0.2, tarpit_budget=1.2
)


async def probe(target: str, timeouts: ProbeTimeouts = FAST, **options):
    report = await check_relay([target], ProbeOptions(timeouts=timeouts, **options), NoDns())
    (entry,) = report.targets
    return entry


@pytest.mark.parametrize(
    ("behaviour", "said"),
    [
        ("endless_line", "Response too long"),
        ("endless_reply", "Response too long"),
        ("stall", "no reply to EHLO"),
    ],
)
async def test_hostile_server_is_inconclusive_with_what_it_did(behaviour: str, said: str) -> None:
    async with hostile_server(Hostile(after_banner=behaviour)) as target:
        started = time.monotonic()
        report = await probe(target)
        took = time.monotonic() - started
    assert report.verdict is Verdict.INCONCLUSIVE
    assert said in report.explanation and "no relay test could run" in report.explanation
    assert said in report.error or said in " ".join(e.reply for e in report.connect_log)
    assert took < 3  # one command timeout at most, not the 20 s budget
    assert report.to_dict()["verdict"] == "inconclusive"


async def test_tarpit_banner_and_replies_answer_within_the_tarpit_budget() -> None:
    # "20 s banner, 20 s per reply" at 1/50 scale: 0.4 s each, tarpit threshold 0.2 s
    hostile = Hostile(banner_delay=0.4, reply_delay=0.4)
    async with hostile_server(hostile) as target:
        started = time.monotonic()
        report = await probe(target)
        took = time.monotonic() - started
    assert report.verdict is Verdict.INCONCLUSIVE
    assert took < FAST.tarpit_budget + 0.5  # not the 20 s budget
    assert "tarpit (the greeting took" in report.explanation
    assert "Tests that ran: none" in report.explanation
    assert "raise" not in report.explanation.lower()  # the advice is not "wait longer"
    assert "postconf smtpd_relay_restrictions" in report.explanation


async def test_tarpit_on_replies_runs_the_plain_forms_first_and_names_what_ran() -> None:
    hostile = Hostile(reply_delay=0.25)  # fast greeting, every reply slow
    async with hostile_server(hostile) as target:
        started = time.monotonic()
        report = await probe(target)
        took = time.monotonic() - started
    assert took < FAST.tarpit_budget + 0.6
    ran = [t for t in report.tests if t.outcome is not AttemptOutcome.NOT_RUN]
    assert ran and len(ran) < len(report.tests)  # some ran, the rest were not waited for
    assert "external-to-external" in {t.name for t in ran}  # the plain forms went first
    assert report.diagnostics.sessions > 1  # side by side
    assert report.verdict is Verdict.INCONCLUSIVE
    assert "tarpit (the reply to EHLO took" in report.explanation
    assert "Tests that ran: " in report.explanation and "external-to-external" in report.explanation
    assert f"not run: {len(report.tests) - len(ran)}" in report.explanation
    assert report.diagnostics.vrfy == ""  # a tarpit's time goes to the relay tests
    assert "Re-run" not in report.explanation


async def test_tarpit_tests_side_by_side_reach_a_real_verdict_in_the_budget() -> None:
    # one session would need 23 tests x 3 replies x 0.25 s = 17 s; eight take a few seconds
    hostile = Hostile(reply_delay=0.25)
    timeouts = ProbeTimeouts(**{**FAST.__dict__, "tarpit_budget": 6.0})
    async with hostile_server(hostile) as target:
        started = time.monotonic()
        report = await probe(target, timeouts=timeouts)
        took = time.monotonic() - started
    assert report.verdict is Verdict.CLOSED, report.explanation
    assert all(t.outcome is AttemptOutcome.REFUSED for t in report.tests)
    assert took < 6.0
    assert hostile.connections > 4
    assert "tests ran over" in report.explanation and "side by side" in report.explanation


async def test_a_slow_but_honest_server_is_not_a_tarpit() -> None:
    hostile = Hostile(reply_delay=0.02)
    async with hostile_server(hostile) as target:
        report = await probe(target, only_tests=("external-to-external", "null-sender"))
    assert report.verdict is Verdict.CLOSED
    assert "tarpit" not in report.explanation
