"""The digest built from history: listings new / removed / days listed, relay verdicts, mail deltas,
suspects, checks that could not run (never green), acknowledged alerts, and its renderings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.commands.base import CommandContext, Requester
from bot.digest import build_digest, build_digest_reply
from bot.render import digest as render
from bot.render.reply import MAX_BLOCKS
from bot.slack.poster import block_dicts
from bot.store import Store
from tests.fixtures.digest_history import (
    Clock,
    blacklist_data,
    config,
    domain_data,
    mail_data,
    record,
    record_failed,
    relay_data,
    suspect,
)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Store:
    with Store(tmp_path / "rw.db", clock=clock) as opened:
        yield opened


def _all_clean(store: Store) -> None:
    """Fresh, clean results for a watch list of one IP, one domain and one server."""
    record(store, "blacklist", "192.0.2.10", blacklist_data("192.0.2.10"))
    record(store, "blacklist", "example.com", blacklist_data("example.com", total=20))
    record(store, "relay", "mx.example.com:25", relay_data("mx.example.com:25", "closed"))
    record(store, "mailsummary", "24h", mail_data())
    record(store, "domain", "example.com", domain_data("example.com"))


def _watch(store: Store) -> None:
    store.add_watch("ip", "192.0.2.10")
    store.add_watch("domain", "example.com")
    store.add_watch("server", "mx.example.com:25")


def test_green_only_when_everything_ran_and_nothing_is_wrong(store: Store, clock: Clock) -> None:
    _watch(store)
    _all_clean(store)
    digest = build_digest(store, config(), clock())
    assert digest.status == "green", digest.reasons
    assert not digest.not_run
    assert [a.status for a in digest.addresses] == ["clean", "clean"]
    assert digest.servers[0].verdict == "closed"


def test_empty_watch_list_is_not_green(store: Store, clock: Clock) -> None:
    record(store, "mailsummary", "24h", mail_data())
    digest = build_digest(store, config(), clock())
    assert digest.status == "yellow"
    assert any("watch list is empty" in r for r in digest.reasons)


def test_listing_history_gives_new_removed_and_days_listed(store: Store, clock: Clock) -> None:
    _watch(store)
    # three days ago: listed on spamcop; two days ago also on zen; a digest was sent yesterday
    clock.advance(days=-3)
    record(store, "blacklist", "192.0.2.10", blacklist_data("192.0.2.10", ["bl.spamcop.net"]))
    clock.advance(days=1)
    record(
        store,
        "blacklist",
        "192.0.2.10",
        blacklist_data("192.0.2.10", ["bl.spamcop.net", "zen.spamhaus.org"]),
    )
    clock.advance(days=1)
    run = store.claim_digest("2026-11-27T07:00:00+00:00", "test")
    store.finish_digest(run.id, "sent", "C0DIGEST", "1.1")
    clock.advance(hours=1)
    # since that digest: off zen (a failed check in between must not break the streak)
    record_failed(store, "blacklist", "192.0.2.10")
    clock.advance(hours=22)
    record(store, "blacklist", "192.0.2.10", blacklist_data("192.0.2.10", ["bl.spamcop.net"]))
    _fresh_rest(store)
    digest = build_digest(store, config(), clock())
    report = next(a for a in digest.addresses if a.subject == "192.0.2.10")
    assert report.status == "listed"
    (spamcop,) = report.listings
    assert spamcop.zone == "bl.spamcop.net"
    assert spamcop.days_listed == 2  # first seen 2 days 23 hours ago
    assert not spamcop.new
    assert report.removed == ["192.0.2.10 zen.spamhaus.org"]
    assert digest.since == "2026-11-27T07:00:00+00:00"
    assert digest.status == "red"
    assert digest.reasons[0] == "192.0.2.10 is listed on bl.spamcop.net"


def _address(digest, subject: str):
    return next(a for a in digest.addresses if a.subject == subject)


def _fresh_rest(store: Store) -> None:
    record(store, "blacklist", "example.com", blacklist_data("example.com", total=20))
    record(store, "relay", "mx.example.com:25", relay_data("mx.example.com:25", "closed"))
    record(store, "mailsummary", "24h", mail_data())


def test_new_listing_since_previous_digest_is_marked_new(store: Store, clock: Clock) -> None:
    _watch(store)
    record(store, "blacklist", "192.0.2.10", blacklist_data("192.0.2.10"))
    run = store.claim_digest("2026-11-28T07:00:00+00:00", "test")
    store.finish_digest(run.id, "sent", "C0DIGEST", "1.1")
    clock.advance(hours=3)
    record(store, "blacklist", "192.0.2.10", blacklist_data("192.0.2.10", ["zen.spamhaus.org"]))
    _fresh_rest(store)
    digest = build_digest(store, config(), clock())
    listing = _address(digest, "192.0.2.10").listings[0]
    assert listing.new and listing.days_listed == 0
    assert "NEW" in render.text(digest)


def test_times_are_shown_in_the_schedule_time_zone(store: Store, clock: Clock) -> None:
    _watch(store)
    _all_clean(store)
    digest = build_digest(store, config(timezone="Europe/Berlin"), clock())
    assert digest.generated_at == "2026-11-28T07:00:00+00:00"  # stored and JSON: UTC
    assert render.text(digest).startswith("Mail health digest 2026-11-28 08:00 CET")


def test_policy_listing_is_yellow_not_red(store: Store, clock: Clock) -> None:
    _watch(store)
    _all_clean(store)
    data = blacklist_data("192.0.2.10", ["pbl.spamhaus.org"])
    data["targets"][0]["listed"][0]["severity"] = "policy"
    record(store, "blacklist", "192.0.2.10", data)
    digest = build_digest(store, config(), clock())
    assert digest.status == "yellow"
    assert "policy list" in digest.reasons[0]


def test_a_failed_check_is_shown_as_failed_never_clean(store: Store, clock: Clock) -> None:
    _watch(store)
    _all_clean(store)
    clock.advance(minutes=5)
    record_failed(store, "blacklist", "192.0.2.10", "no DNS answer from 127.0.0.1:5399")
    digest = build_digest(store, config(), clock())
    report = next(a for a in digest.addresses if a.subject == "192.0.2.10")
    assert report.status == "failed"
    assert "no DNS answer" in report.note
    assert digest.status == "yellow"
    assert [(n.kind, n.subject) for n in digest.not_run] == [("blacklist", "192.0.2.10")]
    text = render.text(digest)
    assert "192.0.2.10: COULD NOT CHECK" in text
    assert "192.0.2.10: clean" not in text
    reply = render.chat_reply(digest)
    rendered = json.dumps([b.to_dict() for b in reply.blocks])
    assert "could not check" in rendered
    assert ":large_green_circle: `192.0.2.10`" not in rendered


def test_no_list_answering_counts_as_not_run(store: Store, clock: Clock) -> None:
    _watch(store)
    _all_clean(store)
    data = blacklist_data("192.0.2.10", total=60, failed=60)
    record(store, "blacklist", "192.0.2.10", data, status="ok")  # even if an engine said ok
    digest = build_digest(store, config(), clock())
    assert _address(digest, "192.0.2.10").status == "failed"
    assert digest.status != "green"


def test_unchecked_and_stale_items_are_not_run(store: Store, clock: Clock) -> None:
    _watch(store)
    store.add_watch("cidr", "198.51.100.0/30")
    _all_clean(store)
    clock.advance(hours=13)  # relay every 6 h: 13 h old is stale; blacklist every hour: stale
    record(store, "blacklist", "example.com", blacklist_data("example.com"))
    record(store, "mailsummary", "24h", mail_data())
    record(store, "domain", "example.com", domain_data("example.com"))
    digest = build_digest(store, config(), clock())
    by_subject = {n.subject: n.reason for n in digest.not_run}
    assert by_subject["198.51.100.0/30"] == "never checked"
    assert "too old" in by_subject["192.0.2.10"]
    assert "too old" in by_subject["mx.example.com:25"]
    assert "example.com" not in by_subject
    assert digest.status == "yellow"


def test_relay_verdict_change_and_warnings(store: Store, clock: Clock) -> None:
    _watch(store)
    _all_clean(store)
    run = store.claim_digest("2026-11-28T07:00:00+00:00", "test")
    store.finish_digest(run.id, "sent", "C0DIGEST", "1.1")
    clock.advance(hours=2)
    record(
        store,
        "relay",
        "mx.example.com:25",
        relay_data("mx.example.com:25", "open", ["AUTH PLAIN offered on a clear connection"]),
    )
    record(store, "blacklist", "192.0.2.10", blacklist_data("192.0.2.10"))
    record(store, "blacklist", "example.com", blacklist_data("example.com"))
    record(store, "mailsummary", "24h", mail_data())
    digest = build_digest(store, config(), clock())
    server = digest.servers[0]
    assert (server.verdict, server.previous_verdict) == ("open", "closed")
    assert server.warnings == ["AUTH PLAIN offered on a clear connection"]
    assert digest.status == "red"
    assert "mx.example.com:25 is an open relay" in digest.reasons
    assert "open (was closed)" in render.text(digest)


def test_mail_totals_against_the_previous_window(store: Store, clock: Clock) -> None:
    _watch(store)
    clock.advance(hours=-24)
    record(store, "mailsummary", "24h", mail_data(received=100))
    clock.advance(hours=24)
    _all_clean(store)
    record(store, "mailsummary", "24h", mail_data(received=130))
    digest = build_digest(store, config(), clock())
    assert digest.mail is not None
    assert digest.mail.current["received"] == 130
    assert digest.mail.previous["received"] == 100
    assert digest.mail.deltas["received"] == 30
    assert digest.mail.deltas["delivered"] == 60
    assert "received        130 (+30)" in render.text(digest)


def test_mail_totals_without_history_have_no_deltas(store: Store, clock: Clock) -> None:
    _watch(store)
    _all_clean(store)
    digest = build_digest(store, config(), clock())
    assert digest.mail.previous is None and digest.mail.deltas is None


def test_suspects_new_and_attack_kinds(store: Store, clock: Clock) -> None:
    _watch(store)
    _all_clean(store)
    run = store.claim_digest("2026-11-28T07:00:00+00:00", "test")
    store.finish_digest(run.id, "sent", "C0DIGEST", "1.1")
    # known before the last digest: a brute forcer (an attack on us, not a compromise)
    record(
        store, "mailsummary", "24h", mail_data(suspects=[suspect("sasl_bruteforce", "203.0.113.9")])
    )
    clock.advance(hours=1)
    record(
        store,
        "mailsummary",
        "24h",
        mail_data(
            suspects=[
                suspect("sasl_bruteforce", "203.0.113.9", 50),
                suspect("sasl_many_ips", "alice@example.com", 80),
            ]
        ),
    )
    digest = build_digest(store, config(), clock())
    assert [(s.subject, s.new) for s in digest.suspects] == [
        ("alice@example.com", True),
        ("203.0.113.9", False),
    ]
    assert digest.status == "red"
    assert any("alice@example.com" in r for r in digest.reasons)
    assert not any("203.0.113.9" in r for r in digest.reasons)


def test_acknowledged_alerts_show_who_and_when(store: Store, clock: Clock) -> None:
    _watch(store)
    _all_clean(store)
    alert = store.create_alert("blacklist:192.0.2.10", "blacklist", "192.0.2.10 listed on x")
    clock.advance(minutes=3)
    store.acknowledge_alert(alert.id, "U0ADMIN")
    digest = build_digest(store, config(), clock())
    (ack,) = digest.acknowledged
    assert (ack.acknowledged_by, ack.acknowledged_at) == ("U0ADMIN", "2026-11-28T07:03:00+00:00")
    assert "acknowledged by U0ADMIN at 2026-11-28 07:03 UTC" in render.text(digest)
    rendered = json.dumps(block_dicts(render.chat_reply(digest)))  # as sent to Slack
    assert "acknowledged by <@U0ADMIN>" in rendered


def test_chat_reply_fits_slack_and_puts_details_in_the_thread(store: Store, clock: Clock) -> None:
    for i in range(80):  # a big watch list, many listed
        store.add_watch("ip", f"192.0.2.{i}")
        record(
            store, "blacklist", f"192.0.2.{i}", blacklist_data(f"192.0.2.{i}", ["zen.spamhaus.org"])
        )
    store.add_watch("server", "mx.example.com:25")
    record(store, "relay", "mx.example.com:25", relay_data("mx.example.com:25", "suspect", ["w"]))
    record(store, "mailsummary", "24h", mail_data(suspects=[suspect("volume_spike", "bob")]))
    digest = build_digest(store, config(), clock())
    reply = render.chat_reply(digest)
    assert len(reply.blocks) <= MAX_BLOCKS
    for block in reply.blocks:
        text = block.to_dict().get("text", {})
        assert len(text.get("text", "")) <= 3000 if isinstance(text, dict) else True
    assert reply.text.startswith("Mail health digest: red")
    titles = [t.text.split("\n")[0] for t in reply.thread]
    assert any("Blocklist listings" in t for t in titles)
    assert any("Relay verdicts" in t for t in titles)
    assert any("Suspects and evidence" in t for t in titles)
    listing_detail = next(t for t in reply.thread if "Blocklist listings" in t.text)
    body = listing_detail.file.content if listing_detail.file else listing_detail.text
    assert "delist: https://zen.spamhaus.org/delist" in body


def test_json_is_serializable_and_keeps_the_documented_keys(store: Store, clock: Clock) -> None:
    _watch(store)
    _all_clean(store)
    data = build_digest(store, config(), clock()).to_json()
    json.dumps(data)
    assert set(data) >= {
        "generated_at",
        "since",
        "status",
        "reasons",
        "addresses",
        "servers",
        "mail",
        "suspects",
        "not_run",
        "open_alerts",
        "acknowledged",
    }


async def test_build_digest_reply_for_mailhealth(store: Store, clock: Clock) -> None:
    _watch(store)
    _all_clean(store)
    updates: list[str] = []

    async def progress(text: str) -> None:
        updates.append(text)

    ctx = CommandContext(
        config=config(),
        store=store,
        requester=Requester("U0USER", "C0CHAN", False),
        progress=progress,
        clock=clock,
    )
    reply = await build_digest_reply(ctx)
    assert reply.text.startswith("Mail health digest: green")
    assert updates  # the requester saw something happen


def test_lists_that_did_not_answer_make_it_partial_not_clean(store: Store, clock: Clock) -> None:
    _watch(store)
    _all_clean(store)
    # the engine calls an incomplete run "failed"; the lists that answered still count
    record(store, "blacklist", "192.0.2.10", blacklist_data("192.0.2.10", failed_zones=["b.test"]))
    digest = build_digest(store, config(), clock())
    report = _address(digest, "192.0.2.10")
    assert report.status == "partial"
    assert report.lists_answered == 59
    assert "1 list could not be asked: b.test (timeout)" in report.note
    assert digest.status == "yellow"
    assert "NOT CLEAN" in render.text(digest)
    assert "192.0.2.10: clean" not in render.text(digest)


def test_a_list_that_did_not_answer_neither_removes_nor_resets_a_listing(
    store: Store, clock: Clock
) -> None:
    _watch(store)
    clock.advance(days=-2)
    record(store, "blacklist", "192.0.2.10", blacklist_data("192.0.2.10", ["zen.spamhaus.org"]))
    run = store.claim_digest("2026-11-26T07:00:00+00:00", "test")
    store.finish_digest(run.id, "sent", "C0DIGEST", "1.1")
    clock.advance(days=1)
    only_zen_failed = blacklist_data("192.0.2.10", failed_zones=["zen.spamhaus.org"])
    record(store, "blacklist", "192.0.2.10", only_zen_failed)
    _fresh_rest(store)
    report = _address(build_digest(store, config(), clock()), "192.0.2.10")
    assert report.removed == []  # zen did not answer: not "removed"
    assert report.status == "partial"
    clock.advance(days=1)
    record(store, "blacklist", "192.0.2.10", blacklist_data("192.0.2.10", ["zen.spamhaus.org"]))
    _fresh_rest(store)
    report = _address(build_digest(store, config(), clock()), "192.0.2.10")
    assert report.listings[0].days_listed == 2  # the unanswered day did not reset it
    assert report.removed == []


def test_authentication_section_fails_red_with_fixes_in_the_thread(
    store: Store, clock: Clock
) -> None:
    _watch(store)
    _all_clean(store)
    record(
        store,
        "domain",
        "example.com",
        domain_data("example.com", failing=[("spf.all", "+all <!channel> lets anyone send")]),
    )
    digest = build_digest(store, config(), clock())
    (domain,) = digest.domains
    assert domain.status == "fail"
    assert domain.failing == ["spf.all example.com: +all <!channel> lets anyone send"]
    assert digest.status == "red"
    assert "example.com fails sending-domain checks: spf.all" in digest.reasons
    text = render.text(digest)
    assert "Authentication (SPF, DKIM, DMARC, reverse DNS of watched domains)" in text
    assert "example.com: FAIL" in text
    reply = render.chat_reply(digest)
    rendered = json.dumps([b.to_dict() for b in reply.blocks])
    assert "*Authentication*" in rendered and ":red_circle: `example.com` fails spf.all" in rendered
    (auth,) = [t for t in reply.thread if t.text.startswith("Authentication findings")]
    shown = json.dumps([b.to_dict() for b in auth.blocks])
    assert "fix for spf.all" in shown
    assert "<!channel>" not in shown


def test_a_domain_check_that_could_not_run_is_not_clean(store: Store, clock: Clock) -> None:
    _watch(store)
    _all_clean(store)
    record(store, "domain", "example.com", domain_data("example.com", errors=["spf.record"]))
    digest = build_digest(store, config(), clock())
    assert digest.domains[0].status == "error"
    assert [(n.kind, n.subject) for n in digest.not_run] == [("domain", "example.com")]
    assert digest.status == "yellow"
    store.add_watch("domain", "example.org")  # never checked
    digest = build_digest(store, config(), clock())
    assert ("domain", "example.org", "never checked") in {
        (n.kind, n.subject, n.reason) for n in digest.not_run
    }
