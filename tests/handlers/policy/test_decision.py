from __future__ import annotations

from datetime import timedelta

from handlers.policy.decision import ContainmentIndex, Decider, Verdict
from handlers.policy.protocol import Answers, RequestReader
from tests.handlers.policy.policy_requests import T0, entry, request_bytes

ANSWERS = Answers.from_texts("5.7.1 blocked", "4.7.1 slow", "held")
NOW = T0.timestamp() + 60


def req(**attributes):
    [request] = RequestReader().feed(request_bytes(**attributes))
    return request


def decider(*entries):
    return Decider(ANSWERS, ContainmentIndex(list(entries), T0 + timedelta(seconds=60)))


def test_no_entries_dunno():
    d = decider()
    decision = d.decide(req(), NOW, False)
    assert decision.verdict is Verdict.DUNNO
    assert d.answer(decision) == b"action=DUNNO\n\n"


def test_subject_kinds_match():
    d = decider(
        entry("account", "carol@example.com", "block", 1),
        entry("host", "192.0.2.0/24", "block", 2),
        entry("host", "2001:db8::5", "hold", 3),
        entry("sender", "spam@example.org", "block", 4),
        entry("sender_domain", "bad.example", "hold", 5),
    )
    assert d.decide(req(sasl_username="Carol@example.com"), NOW, False).verdict is Verdict.REJECT
    assert d.decide(req(client_address="192.0.2.200"), NOW, False).verdict is Verdict.REJECT
    assert d.decide(req(client_address="192.0.3.1"), NOW, False).verdict is Verdict.DUNNO
    assert d.decide(req(client_address="2001:db8::5"), NOW, False).verdict is Verdict.HOLD
    assert d.decide(req(client_address="::ffff:192.0.2.9"), NOW, False).verdict is Verdict.REJECT
    assert d.decide(req(sender="SPAM@example.org"), NOW, False).verdict is Verdict.REJECT
    assert d.decide(req(sender="x@bad.example"), NOW, False).verdict is Verdict.HOLD
    assert d.decide(req(sender="x@sub.bad.example"), NOW, False).verdict is Verdict.DUNNO
    assert d.answer(d.decide(req(sender="x@bad.example"), NOW, False)) == b"action=HOLD held\n\n"
    reject = d.answer(d.decide(req(sasl_username="carol@example.com"), NOW, False))
    assert reject == b"action=REJECT 5.7.1 blocked\n\n"


def test_most_severe_wins():
    d = decider(
        entry("account", "carol@example.com", "hold", 1),
        entry("host", "198.51.100.7", "block", 2),
    )
    decision = d.decide(req(sasl_username="carol@example.com"), NOW, False)
    assert decision.verdict is Verdict.REJECT and decision.entry.id == 2


def test_inactive_entries_ignored():
    d = decider(
        entry("account", "a@x.test", "block", 1, released=True),
        entry("account", "b@x.test", "block", 2, expires=timedelta(seconds=30)),
        entry("account", "c@x.test", "block", 3, expires=timedelta(seconds=120)),
    )
    assert d.decide(req(sasl_username="a@x.test"), NOW, False).verdict is Verdict.DUNNO
    assert d.decide(req(sasl_username="b@x.test"), NOW, False).verdict is Verdict.DUNNO
    assert d.decide(req(sasl_username="c@x.test"), NOW, False).verdict is Verdict.REJECT
    # expiry applies between refreshes too: the decision checks the time it is given
    assert d.decide(req(sasl_username="c@x.test"), NOW + 61, False).verdict is Verdict.DUNNO


def test_cut_sessions_one_421_per_client():
    d = decider(entry("account", "carol@example.com", "block", 1, cut=True))
    first = d.decide(req(sasl_username="carol@example.com"), NOW, False)
    assert first.verdict is Verdict.DISCONNECT
    assert d.answer(first).startswith(b"action=421 4.7.1 blocked")
    again = d.decide(req(sasl_username="carol@example.com"), NOW, False)
    assert again.verdict is Verdict.REJECT
    other = d.decide(req(sasl_username="carol@example.com", client_address="192.0.2.1"), NOW, False)
    assert other.verdict is Verdict.DISCONNECT


def test_throttle_defers_past_limit_and_recovers_after_an_hour():
    d = decider(entry("account", "bob@example.com", "throttle", 1, limit=2))
    verdicts = []
    for i in range(3):
        rcpt = d.decide(req(sasl_username="bob@example.com"), NOW + i, False)
        data = d.decide(
            req(sasl_username="bob@example.com", protocol_state="DATA", recipient_count="1"),
            NOW + i,
            True,
        )
        verdicts.append((rcpt.verdict, data.verdict))
    assert verdicts[:2] == [(Verdict.DUNNO, Verdict.DUNNO)] * 2
    assert verdicts[2] == (Verdict.DEFER, Verdict.DEFER)
    assert d.answer(d.decide(req(sasl_username="bob@example.com"), NOW + 5, False)) == (
        b"action=DEFER 4.7.1 slow\n\n"
    )
    later = d.decide(req(sasl_username="bob@example.com"), NOW + 3601, False)
    assert later.verdict is Verdict.DUNNO
    # throttling never touches connection-stage requests
    assert (
        d.decide(
            req(sasl_username="bob@example.com", protocol_state="MAIL"), NOW + 3, False
        ).verdict
        is Verdict.DUNNO
    )


def test_replace_drops_state_of_released_entries():
    d = decider(entry("account", "bob@example.com", "throttle", 1, limit=0))
    assert d.decide(req(sasl_username="bob@example.com"), NOW, False).verdict is Verdict.DEFER
    d.replace(ContainmentIndex([], T0))
    assert d.decide(req(sasl_username="bob@example.com"), NOW, False).verdict is Verdict.DUNNO
    assert d._throttle == {}


def test_bad_host_subject_is_skipped():
    d = decider(entry("host", "not-an-ip", "block", 1))
    assert d.decide(req(), NOW, False).verdict is Verdict.DUNNO
