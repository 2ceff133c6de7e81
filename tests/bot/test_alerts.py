"""Change alerts: one alert per change, follow-ups in the alert's thread, closed when it clears —
against a recording poster and against the local Slack stand-in through the real Slack poster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.digest import build_digest
from bot.monitor import Monitor
from bot.monitor.alerts import acknowledge
from bot.render.reply import inert
from bot.slack.client import web_client
from bot.slack.poster import SlackPoster
from bot.store import Store
from tests.fixtures.digest_history import (
    Clock,
    RecordingPoster,
    ScriptedRunner,
    blacklist_data,
    config,
    mail_data,
    relay_data,
    suspect,
)
from tests.fixtures.slack_api import SlackStandIn

IP = "192.0.2.10"
MX = "mx.example.com:25"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Store:
    with Store(tmp_path / "rw.db", clock=clock) as opened:
        opened.add_watch("ip", IP)
        opened.add_watch("server", MX)
        yield opened


def _monitor(store: Store, runner: ScriptedRunner, poster, clock: Clock) -> Monitor:
    return Monitor(config(), store, runner, poster, "C0DIGEST", clock)


def _buttons(reply) -> list[dict]:
    return [
        element
        for block in reply.blocks
        if block.to_dict()["type"] == "actions"
        for element in block.to_dict()["elements"]
    ]


async def test_listing_alerts_once_then_follows_up_in_its_thread(
    store: Store, clock: Clock
) -> None:
    poster = RecordingPoster()
    runner = ScriptedRunner()
    monitor = _monitor(store, runner, poster, clock)

    runner.set("blacklist", IP, blacklist_data(IP))
    await monitor.run("blacklist")
    assert poster.posts == []  # clean: nothing to say

    runner.set("blacklist", IP, blacklist_data(IP, ["zen.spamhaus.org"]))
    report = await monitor.run("blacklist")
    (opening,) = poster.posts
    assert opening.thread_ts is None and opening.channel == "C0DIGEST"
    assert "192.0.2.10" in opening.reply.text and "zen.spamhaus.org" in opening.reply.text
    alert = store.open_alert(f"blacklist:{IP}")
    assert (alert.channel, alert.thread_ts) == ("C0DIGEST", opening.ts)
    ack = next(b for b in _buttons(opening.reply) if b["action_id"] == "acknowledge")
    assert ack["value"] == str(alert.id)
    assert [e.action for e in report.events] == ["opened"]

    for _ in range(3):  # the same listing, run after run: no new message
        clock.advance(hours=1)
        await monitor.run("blacklist")
    assert len(poster.posts) == 1

    clock.advance(hours=1)
    runner.set("blacklist", IP, blacklist_data(IP, ["zen.spamhaus.org", "bl.spamcop.net"]))
    await monitor.run("blacklist")
    follow = poster.posts[-1]
    assert follow.thread_ts == opening.ts
    assert "now also listed on bl.spamcop.net" in follow.reply.text

    clock.advance(hours=1)
    runner.set("blacklist", IP, blacklist_data(IP))
    await monitor.run("blacklist")
    closing = poster.posts[-1]
    assert closing.thread_ts == opening.ts
    assert "no longer listed" in closing.reply.text
    assert store.open_alert(f"blacklist:{IP}") is None
    assert store.latest_alert(f"blacklist:{IP}").state == "closed"
    assert len(poster.posts) == 3

    clock.advance(hours=1)  # listed again later: that is a new change, a new alert
    runner.set("blacklist", IP, blacklist_data(IP, ["zen.spamhaus.org"]))
    await monitor.run("blacklist")
    reopening, relisted = poster.posts[-2:]
    assert reopening.thread_ts is None
    assert len(store.alerts()) == 2
    # the delisting case tells the new thread that this is a relisting, and how soon it came
    assert relisted.thread_ts == reopening.ts
    assert "listed on zen.spamhaus.org again, 1 h after it was removed" in relisted.reply.text


async def test_a_failed_check_changes_no_alert(store: Store, clock: Clock) -> None:
    poster = RecordingPoster()
    runner = ScriptedRunner()
    monitor = _monitor(store, runner, poster, clock)
    runner.set("blacklist", IP, blacklist_data(IP, ["zen.spamhaus.org"]))
    await monitor.run("blacklist")
    clock.advance(hours=1)
    runner.set("blacklist", IP, TimeoutError("no DNS answer"))
    report = await monitor.run("blacklist")
    assert [r.status for r in report.records] == ["failed"]
    assert store.latest_check("blacklist", IP).result["error"].startswith("TimeoutError")
    assert len(poster.posts) == 1
    assert store.open_alert(f"blacklist:{IP}") is not None


async def test_relay_open_then_suspect_then_closed(store: Store, clock: Clock) -> None:
    poster = RecordingPoster()
    runner = ScriptedRunner()
    monitor = _monitor(store, runner, poster, clock)
    runner.set("relay", MX, relay_data(MX, "closed"))
    await monitor.run("relay")
    assert poster.posts == []
    clock.advance(hours=6)
    runner.set("relay", MX, relay_data(MX, "open"))
    await monitor.run("relay")
    (opening,) = poster.posts
    assert "open relay" in opening.reply.text
    assert "external-to-external" in opening.reply.text  # the accepted test is the evidence
    clock.advance(hours=6)
    await monitor.run("relay")
    assert len(poster.posts) == 1
    clock.advance(hours=6)
    runner.set("relay", MX, relay_data(MX, "suspect"))
    await monitor.run("relay")
    assert poster.posts[-1].thread_ts == opening.ts
    assert "now *suspect* (was open)" in poster.posts[-1].reply.text
    clock.advance(hours=6)
    runner.set("relay", MX, relay_data(MX, "closed"))
    await monitor.run("relay")
    assert poster.posts[-1].thread_ts == opening.ts
    assert "Closing" in poster.posts[-1].reply.text
    assert store.open_alert(f"relay:{MX}") is None


async def test_new_suspect_alerts_and_closes_after_a_quiet_day(store: Store, clock: Clock) -> None:
    poster = RecordingPoster()
    runner = ScriptedRunner()
    monitor = _monitor(store, runner, poster, clock)
    brute = suspect("sasl_bruteforce", "203.0.113.9")
    alice = suspect("sasl_many_ips", "alice@example.com")
    runner.set("mailsummary", "24h", mail_data(suspects=[brute]))
    await monitor.run("mailsummary")
    assert poster.posts == []  # an attack on us is digest material, not an alert
    runner.set("mailsummary", "24h", mail_data(suspects=[brute, alice]))
    await monitor.run("mailsummary")
    (opening,) = poster.posts
    assert "alice@example.com" in opening.reply.text
    assert "client=alice@example.com" in opening.reply.thread[0].text  # evidence in the thread
    clock.advance(hours=12)
    runner.set("mailsummary", "24h", mail_data(suspects=[]))
    await monitor.run("mailsummary")
    assert len(poster.posts) == 1  # quiet for 12 hours is not quiet for a day
    clock.advance(hours=13)
    await monitor.run("mailsummary")
    closing = poster.posts[-1]
    assert closing.thread_ts == opening.ts and "quiet for a day" in closing.reply.text
    assert store.alerts("open") == []
    clock.advance(hours=1)
    await monitor.run("mailsummary")
    assert len(poster.posts) == 2


async def test_alert_that_could_not_be_posted_is_posted_on_the_next_run(
    store: Store, clock: Clock
) -> None:
    poster = RecordingPoster(fail_next=1)
    runner = ScriptedRunner()
    monitor = _monitor(store, runner, poster, clock)
    runner.set("blacklist", IP, blacklist_data(IP, ["zen.spamhaus.org"]))
    await monitor.run("blacklist")
    assert poster.posts == [] and store.open_alert(f"blacklist:{IP}").thread_ts == ""
    clock.advance(hours=1)
    await monitor.run("blacklist")
    (opening,) = poster.posts
    assert store.open_alert(f"blacklist:{IP}").thread_ts == opening.ts
    clock.advance(hours=1)
    await monitor.run("blacklist")
    assert len(poster.posts) == 1


async def test_two_processes_alert_and_follow_up_once(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "shared.db"
    with Store(path, clock=clock) as first, Store(path, clock=clock) as second:
        first.add_watch("ip", IP)
        poster = RecordingPoster()
        runner = ScriptedRunner()
        monitors = [_monitor(s, runner, poster, clock) for s in (first, second)]
        runner.set("blacklist", IP, blacklist_data(IP, ["zen.spamhaus.org"]))
        for monitor in monitors:
            await monitor.run("blacklist")
        assert len(poster.top_level()) == 1
        clock.advance(hours=1)
        runner.set("blacklist", IP, blacklist_data(IP))
        for monitor in monitors:
            await monitor.run("blacklist")
        assert len(poster.posts) == 2
        assert "no longer listed" in poster.posts[1].reply.text


async def test_acknowledge_records_who_and_when_for_the_digest(store: Store, clock: Clock) -> None:
    poster = RecordingPoster()
    runner = ScriptedRunner()
    runner.set("blacklist", IP, blacklist_data(IP, ["zen.spamhaus.org"]))
    await _monitor(store, runner, poster, clock).run("blacklist")
    alert = store.open_alert(f"blacklist:{IP}")
    clock.advance(minutes=10)
    reply = acknowledge(store, str(alert.id), "U0ADMIN")
    assert "acknowledged by <@U0ADMIN>" in inert(reply.text)
    assert acknowledge(store, "nope", "U0ADMIN").ephemeral
    assert acknowledge(store, "999", "U0ADMIN").ephemeral
    digest = build_digest(store, config(), clock())
    (note,) = digest.acknowledged
    assert (note.acknowledged_by, note.acknowledged_at) == ("U0ADMIN", "2026-11-28T07:10:00+00:00")


async def test_alert_and_follow_up_through_the_slack_stand_in(store: Store, clock: Clock) -> None:
    slack = await SlackStandIn().start()
    try:
        cfg = config()
        cfg.slack.api_url = slack.api_url
        cfg.secrets.slack_bot_token = "xoxb-test"
        poster = SlackPoster(web_client(cfg, env={}))
        runner = ScriptedRunner()
        monitor = Monitor(cfg, store, runner, poster, "C0DIGEST", clock)
        runner.set("blacklist", IP, blacklist_data(IP, ["zen.spamhaus.org"]))
        await monitor.run("blacklist")
        clock.advance(hours=1)
        await monitor.run("blacklist")  # unchanged: no call to Slack
        clock.advance(hours=1)
        runner.set("blacklist", IP, blacklist_data(IP))
        await monitor.run("blacklist")
        posts = slack.of("chat.postMessage")
        assert len(posts) == 2
        opening, closing = posts
        assert opening.params["channel"] == "C0DIGEST"
        assert not opening.params.get("thread_ts")
        blocks = json.dumps(opening.params["blocks"])
        alert = store.latest_alert(f"blacklist:{IP}")
        assert '"action_id": "acknowledge"' in blocks and f'"value": "{alert.id}"' in blocks
        assert closing.params["thread_ts"] == alert.thread_ts
        assert alert.thread_ts.startswith("1764363600.")
        assert "no longer listed" in closing.params["text"]
        assert alert.state == "closed"
    finally:
        await slack.stop()


def test_follow_up_claim_is_won_by_one_reader_only(tmp_path: Path, clock: Clock) -> None:

    path = tmp_path / "shared.db"
    with Store(path, clock=clock) as first, Store(path, clock=clock) as second:
        first.create_alert("relay:x", "relay", "x relay verdict open")
        seen_by_first = first.open_alert("relay:x")
        seen_by_second = second.open_alert("relay:x")  # both read before either writes
        clock.advance(seconds=1)
        assert first.update_alert(seen_by_first, "x relay verdict closed", close=True)
        assert not second.update_alert(seen_by_second, "x relay verdict closed", close=True)
        assert second.latest_alert("relay:x").state == "closed"


async def test_a_list_that_times_out_does_not_close_its_listing_alert(
    store: Store, clock: Clock
) -> None:
    poster = RecordingPoster()
    runner = ScriptedRunner()
    monitor = _monitor(store, runner, poster, clock)
    runner.set("blacklist", IP, blacklist_data(IP, ["zen.spamhaus.org"]))
    await monitor.run("blacklist")
    clock.advance(hours=1)
    runner.set("blacklist", IP, blacklist_data(IP, failed_zones=["zen.spamhaus.org"]))
    report = await monitor.run("blacklist")
    assert [r.status for r in report.records] == ["failed"]  # incomplete, as the engine says
    assert len(poster.posts) == 1 and store.open_alert(f"blacklist:{IP}") is not None
    clock.advance(hours=1)
    runner.set("blacklist", IP, blacklist_data(IP))
    await monitor.run("blacklist")
    assert "no longer listed" in poster.posts[-1].reply.text
    assert store.open_alert(f"blacklist:{IP}") is None


async def test_a_listed_range_counts_lists_not_address_list_pairs(store: Store, clock: Clock):
    poster = RecordingPoster()
    runner = ScriptedRunner()
    zones = ["zen.spamhaus.org", "bl.spamcop.net"]
    data = blacklist_data("192.0.2.1", zones)
    data["targets"] += [
        {**data["targets"][0], "target": f"192.0.2.{n}"} for n in range(2, 41)
    ]  # 40 addresses of a watched range, each on the same 2 lists
    runner.set("blacklist", "192.0.2.0/26", data)
    store.add_watch("cidr", "192.0.2.0/26")
    await _monitor(store, runner, poster, clock).run("blacklist")
    (opening,) = poster.top_level()
    assert "is listed on 2 blocklists (40 addresses)" in opening.reply.text
    assert "291" not in opening.reply.text and "80 blocklists" not in opening.reply.text
    assert opening.reply.text.count("• zen.spamhaus.org") == 1  # one line per list
    assert len(opening.reply.text) < 3000


async def test_alert_for_a_watched_22_counts_lists_and_fits_slack(
    store: Store, clock: Clock
) -> None:
    # 6 lists; 291 listings spread over the addresses of a /22 (the attack run's numbers)
    zones = [f"list{i}.example" for i in range(6)]
    entries = []
    for n in range(291):
        address = f"198.51.{100 + n // 256}.{n % 256}"
        entries.append(blacklist_data(address, [zones[n % 6]])["targets"][0])
    slack = await SlackStandIn().start()
    try:
        cfg = config()
        cfg.slack.api_url = slack.api_url
        cfg.secrets.slack_bot_token = "xoxb-test"
        poster = SlackPoster(web_client(cfg, env={}))
        runner = ScriptedRunner()
        store.add_watch("cidr", "198.51.100.0/22")
        runner.set("blacklist", "198.51.100.0/22", {"targets": entries})
        await Monitor(cfg, store, runner, poster, "C0DIGEST", clock).run("blacklist")
        (opening,) = [c for c in slack.of("chat.postMessage") if not c.params.get("thread_ts")]
        text = opening.params["text"]
        assert "listed on 6 blocklists (291 addresses)" in text
        assert len(text) <= 40_000 and slack.violations == []
        # one line per list, each naming a few of its addresses and how many there are
        assert text.count("• list2.example") == 1 and "49 addresses" in text
    finally:
        await slack.stop()
