"""The verdict rules on hand-made outcomes (no network)."""

from __future__ import annotations

import pytest

from handlers.relay.model import AttemptOutcome, RelayTestResult, Verdict
from handlers.relay.verdict import decide, is_relay_refusal


def result(name: str, kind: str, outcome: AttemptOutcome, reply: str, data: str | None = None):
    return RelayTestResult(
        name=name,
        kind=kind,
        description="",
        mail_from="<a@example.org>",
        rcpt_to="<b@example.net>",
        outcome=outcome,
        reply=reply,
        data_reply=data,
    )


REFUSED = AttemptOutcome.REFUSED
ACCEPTED = AttemptOutcome.ACCEPTED


def test_plain_acceptance_is_open_and_names_the_tests():
    verdict, text, evidence = decide(
        [
            result("null-sender", "plain", REFUSED, "554 no"),
            result("external-to-external", "plain", ACCEPTED, "250 ok"),
            result("bang-path", "trick", ACCEPTED, "250 ok"),
        ],
        confirm=False,
    )
    assert verdict is Verdict.OPEN and evidence == ["external-to-external"]
    assert "external-to-external" in text and "reject_unauth_destination" in text


def test_confirm_distinguishes_354_from_a_refused_data():
    refused_data = [result("external-to-external", "plain", ACCEPTED, "250 ok", "554 no relay")]
    assert decide(refused_data, confirm=True)[0] is Verdict.SUSPECT
    invited = [result("external-to-external", "plain", ACCEPTED, "250 ok", "354 go ahead")]
    verdict, text, _ = decide(invited, confirm=True)
    assert verdict is Verdict.OPEN and "354" in text and "nothing was queued" in text


def test_trick_only_is_suspect():
    verdict, text, evidence = decide(
        [
            result("external-to-external", "plain", REFUSED, "554 no"),
            result("quoted-address", "trick", ACCEPTED, "250 ok"),
        ],
        confirm=False,
    )
    assert verdict is Verdict.SUSPECT and evidence == ["quoted-address"]
    assert "allow_percent_hack" in text


@pytest.mark.parametrize(
    ("outcome", "phrase"),
    [
        (AttemptOutcome.TEMPFAIL, "greylisting"),
        (AttemptOutcome.AUTH_REQUIRED, "requires authentication"),
        (AttemptOutcome.TIMEOUT, "stopped answering"),
        (AttemptOutcome.DROPPED, "Re-run"),
    ],
)
def test_undecided_attempts_make_it_inconclusive(outcome, phrase):
    verdict, text, evidence = decide(
        [result("a", "plain", REFUSED, "554 no"), result("b", "plain", outcome, "")],
        confirm=False,
    )
    assert verdict is Verdict.INCONCLUSIVE and evidence == ["b"]
    assert phrase.lower() in text.lower() and "1 test refused" in text


def test_all_refused_is_closed_and_mentions_deferring_rules():
    verdict, text, evidence = decide(
        [
            result("a", "plain", REFUSED, "554 5.7.1 Relay access denied"),
            result("b", "plain", REFUSED, "454 4.7.1 <b@example.net>: Relay access denied"),
        ],
        confirm=False,
    )
    assert verdict is Verdict.CLOSED and evidence == []
    assert "defer_unauth_destination" in text


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("4.7.1 <x@example.net>: Relay access denied", True),
        ("5.7.1 Unable to relay recipient in non-accepted domain", True),
        ("4.7.1 Relaying denied. Proper authentication required", True),
        ("4.2.0 <x@example.net>: Recipient address rejected: Greylisted", False),
        ("4.7.0 Try again later", False),
    ],
)
def test_relay_refusal_texts(reply, expected):
    assert is_relay_refusal(reply) is expected
