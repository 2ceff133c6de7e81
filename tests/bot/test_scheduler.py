"""The schedule: digest time and zone, the missed-digest catch-up (once, within grace, also with two
processes on one store), failed runs recorded as failed, and the jobs APScheduler gets."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.scheduler import (
    ScheduledJobs,
    digest_due,
    digest_trigger,
    first_run_time,
    latest_slot,
    slot_key,
    start_for,
)
from bot.store import Store
from tests.fixtures.digest_history import (
    Clock,
    RecordingPoster,
    ScriptedRunner,
    blacklist_data,
    config,
    mail_data,
    outcome,
    record,
)

IP = "192.0.2.10"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(at("2026-11-28T05:00:00"))


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Store:
    with Store(tmp_path / "rw.db", clock=clock) as opened:
        opened.add_watch("ip", IP)
        yield opened


def _fresh_history(store: Store) -> None:
    record(store, "blacklist", IP, blacklist_data(IP, ["zen.spamhaus.org"]))
    record(store, "mailsummary", "24h", mail_data())


def _jobs(store: Store, clock: Clock, poster: RecordingPoster, cfg=None, **kw) -> ScheduledJobs:
    runner = kw.pop("runner", ScriptedRunner())
    return ScheduledJobs(poster, cfg or config(), store, "C0DIGEST", clock, runner, **kw)


def test_digest_fires_at_the_configured_time_in_the_configured_zone() -> None:
    cfg = config(digest_time="08:00", timezone="Europe/Berlin")
    trigger = digest_trigger(cfg)
    # winter: Berlin is UTC+1
    assert trigger.get_next_fire_time(None, at("2026-11-28T06:30:00")) == at("2026-11-28T07:00:00")
    assert trigger.get_next_fire_time(None, at("2026-11-28T07:00:01")) == at("2026-11-29T07:00:00")
    # summer: UTC+2
    assert trigger.get_next_fire_time(None, at("2026-07-01T05:30:00")) == at("2026-07-01T06:00:00")
    assert latest_slot(at("2026-11-28T07:00:30"), cfg) == at("2026-11-28T07:00:00")
    assert latest_slot(at("2026-11-28T06:59:59"), cfg) == at("2026-11-27T07:00:00")


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "UTC", "Asia/Kolkata"])
def test_latest_slot_agrees_with_the_cron_trigger_across_dst(zone: str) -> None:
    cfg = config(digest_time="08:15", timezone=zone)
    trigger = digest_trigger(cfg)
    now = at("2026-03-26T00:00:00")  # spans Europe's and (earlier) the US's spring change
    while now < at("2026-04-02T00:00:00"):
        slot = latest_slot(now, cfg)
        assert slot <= now
        assert trigger.get_next_fire_time(None, slot) == slot  # it is a fire time
        assert trigger.get_next_fire_time(None, slot + timedelta(seconds=1)) > now  # the latest
        now += timedelta(minutes=37)


def test_digest_due_is_the_latest_slot_within_grace_and_unclaimed(store: Store) -> None:
    cfg = config(digest_time="08:00", timezone="UTC", digest_grace_minutes=60)
    assert digest_due(at("2026-11-28T07:59:00"), cfg, store) is None  # yesterday's: past grace
    assert digest_due(at("2026-11-28T08:00:00"), cfg, store) == at("2026-11-28T08:00:00")
    assert digest_due(at("2026-11-28T09:00:00"), cfg, store) == at("2026-11-28T08:00:00")
    assert digest_due(at("2026-11-28T09:00:01"), cfg, store) is None
    store.claim_digest(slot_key(at("2026-11-28T08:00:00")), "other")
    assert digest_due(at("2026-11-28T08:30:00"), cfg, store) is None


async def test_digest_job_at_its_time_posts_once_with_details_in_thread(
    store: Store, clock: Clock
) -> None:
    poster = RecordingPoster()
    jobs = _jobs(store, clock, poster)
    clock.set(at("2026-11-28T07:59:00"))
    _fresh_history(store)
    assert await jobs.digest() is None  # not time yet
    clock.set(at("2026-11-28T08:00:01"))
    run = await jobs.digest()
    assert run.status == "sent" and run.scheduled_for == "2026-11-28T08:00:00+00:00"
    (posted,) = poster.posts
    assert posted.channel == "C0DIGEST" and run.ts == posted.ts
    assert posted.reply.text.startswith("Mail health digest: red")
    assert posted.reply.thread  # details go in the thread (the poster posts them there)
    assert await jobs.digest() is None
    assert len(poster.posts) == 1


async def test_restart_after_a_missed_digest_sends_exactly_one(store: Store, clock: Clock) -> None:
    cfg = config(digest_time="08:00", digest_grace_minutes=360)
    poster = RecordingPoster()
    # the bot sent yesterday's digest, then was down from 07:30 until 09:30 today
    yesterday = store.claim_digest(slot_key(at("2026-11-27T08:00:00")), "old")
    store.finish_digest(yesterday.id, "sent", "C0DIGEST", "1.1")
    clock.set(at("2026-11-28T09:30:00"))
    _fresh_history(store)
    first_life = _jobs(store, clock, poster, cfg)
    run = await first_life.digest()
    assert run.scheduled_for == "2026-11-28T08:00:00+00:00"
    # it restarts again five minutes later: nothing more
    clock.advance(minutes=5)
    assert await _jobs(store, clock, poster, cfg).digest() is None
    assert len(poster.posts) == 1
    assert [r.status for r in store.digest_runs()] == ["sent", "sent"]


async def test_restart_outside_grace_sends_none(store: Store, clock: Clock) -> None:
    cfg = config(digest_time="08:00", digest_grace_minutes=360)
    poster = RecordingPoster()
    clock.set(at("2026-11-28T14:00:01"))
    _fresh_history(store)
    assert await _jobs(store, clock, poster, cfg).digest() is None
    assert poster.posts == []


async def test_two_schedulers_on_one_store_send_one_digest(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "shared.db"
    clock.set(at("2026-11-28T08:00:00"))
    with Store(path, clock=clock) as first, Store(path, clock=clock) as second:
        first.add_watch("ip", IP)
        _fresh_history(first)
        poster = RecordingPoster()
        a = _jobs(first, clock, poster, claimed_by="host-a:1")
        b = _jobs(second, clock, poster, claimed_by="host-b:2")
        results = await asyncio.gather(a.digest(), b.digest(), a.digest(), b.digest())
        assert sum(1 for r in results if r is not None) == 1
        assert len(poster.posts) == 1
        (run,) = second.digest_runs()
        assert run.status == "sent" and run.claimed_by in ("host-a:1", "host-b:2")


async def test_a_digest_that_fails_to_post_is_recorded_failed_and_not_repeated(
    store: Store, clock: Clock
) -> None:
    poster = RecordingPoster(fail_next=1)
    clock.set(at("2026-11-28T08:00:00"))
    _fresh_history(store)
    jobs = _jobs(store, clock, poster)
    run = await jobs.digest()
    assert run.status == "failed" and "chat service unavailable" in run.error
    clock.advance(minutes=1)
    assert await jobs.digest() is None
    assert poster.posts == []


async def test_digest_refreshes_stale_results_before_building(store: Store, clock: Clock) -> None:
    poster = RecordingPoster()
    runner = ScriptedRunner()
    runner.set("blacklist", IP, blacklist_data(IP))
    runner.set("mailsummary", "24h", TimeoutError("journalctl did not answer"))
    clock.set(at("2026-11-28T08:00:00"))
    jobs = _jobs(store, clock, poster, runner=runner)
    await jobs.digest()
    assert sorted(runner.calls) == [("blacklist", IP), ("mailsummary", "24h")]
    digest_text = poster.posts[-1].reply.text
    assert digest_text.startswith("Mail health digest: yellow")  # the failed summary: not green
    assert store.latest_check("mailsummary", "24h").status == "failed"


async def test_a_crashing_monitor_run_is_recorded_failed(store: Store, clock: Clock) -> None:
    runner = ScriptedRunner()
    runner.set("blacklist", IP, RuntimeError("engine bug"))
    report = await _jobs(store, clock, RecordingPoster(), runner=runner).blacklist()
    assert [r.status for r in report.records] == ["failed"]
    assert "RuntimeError: engine bug" in store.latest_check("blacklist", IP).result["error"]


def test_first_run_waits_for_fresh_history(store: Store, clock: Clock) -> None:
    cfg = config()
    every = timedelta(minutes=60)
    assert first_run_time(store, cfg, "blacklist", every, clock()) == clock()
    record(store, "blacklist", IP, blacklist_data(IP))
    clock.advance(minutes=20)
    assert first_run_time(store, cfg, "blacklist", every, clock()) == clock() + timedelta(
        minutes=40
    )
    clock.advance(minutes=50)
    assert first_run_time(store, cfg, "blacklist", every, clock()) == clock()


async def test_start_for_schedules_the_jobs_in_the_running_loop(store: Store) -> None:
    cfg = config(digest_time="08:00", timezone="Europe/Berlin")
    runner = ScriptedRunner()
    runner.set("blacklist", IP, blacklist_data(IP))
    runner.set("mailsummary", "24h", mail_data())
    handle = start_for(RecordingPoster(), cfg, store, runner=runner)
    try:
        jobs = {job.id: job for job in handle.scheduler.get_jobs()}
        assert {
            "digest",
            "monitor-blacklist",
            "monitor-relay",
            "monitor-mailsummary",
            "monitor-domain",
        } <= set(jobs)
        for job in jobs.values():
            assert job.coalesce is True and job.max_instances == 1
        now = datetime.now(UTC)
        expected = digest_trigger(cfg).get_next_fire_time(None, now)
        assert handle.next_digest_time() == expected
    finally:
        handle.shutdown()


async def test_start_for_catches_up_a_missed_digest_once(store: Store, clock: Clock) -> None:
    # the real scheduler runs the catch-up job in this loop; the injected clock says 09:30
    cfg = config(
        digest_time="08:00",
        timezone="UTC",
        blacklist_every_minutes=0,
        relay_every_hours=0,
        logsummary_every_minutes=0,
    )
    clock.set(at("2026-11-28T09:30:00"))
    _fresh_history(store)
    poster = RecordingPoster()
    handle = start_for(poster, cfg, store, clock=clock, runner=ScriptedRunner())
    try:
        assert handle.scheduler.get_job("digest-catchup") is not None
        for _ in range(200):
            if store.digest_run("2026-11-28T08:00:00+00:00") and poster.posts:
                break
            await asyncio.sleep(0.01)  # let the loop run the job; no schedule time passes
        assert len(poster.posts) == 1
    finally:
        handle.shutdown()
    again = start_for(poster, cfg, store, clock=clock, runner=ScriptedRunner())
    try:
        assert again.scheduler.get_job("digest-catchup") is None
    finally:
        again.shutdown()


async def test_start_for_respects_disabled_schedule_and_missing_channel(store: Store) -> None:
    off = config(enabled=False)
    handle = start_for(RecordingPoster(), off, store, runner=ScriptedRunner())
    assert handle.scheduler.get_jobs() == [] and not handle.scheduler.running
    handle.shutdown()  # live policy alarms are still posted without the schedule
    no_channel = config()
    no_channel.slack.digest_channel = ""
    handle = start_for(RecordingPoster(), no_channel, store, runner=ScriptedRunner())
    try:
        ids = {job.id for job in handle.scheduler.get_jobs()}
        assert "digest" not in ids and "monitor-blacklist" in ids
    finally:
        handle.shutdown()


async def test_digest_refresh_waits_for_a_monitor_run_instead_of_checking_twice(
    store: Store, clock: Clock
) -> None:
    gate = asyncio.Event()
    runner = ScriptedRunner()
    runner.set("mailsummary", "24h", mail_data())

    async def slow_runner(kind: str, subject: str, progress=None):
        if kind == "blacklist":
            await gate.wait()  # a monitor run still under way
        runner.calls.append((kind, subject))
        data = blacklist_data(IP) if kind == "blacklist" else mail_data()
        return outcome(kind, subject, data)

    clock.set(at("2026-11-28T08:00:00"))
    jobs = _jobs(store, clock, RecordingPoster(), runner=slow_runner)
    monitor_run = asyncio.create_task(jobs.blacklist())
    await asyncio.sleep(0)
    digest = asyncio.create_task(jobs.digest())
    await asyncio.sleep(0.01)
    gate.set()
    await asyncio.gather(monitor_run, digest)
    assert runner.calls.count(("blacklist", IP)) == 1


async def test_digest_through_the_slack_stand_in_puts_details_under_it(
    store: Store, clock: Clock
) -> None:
    from bot.slack.client import web_client
    from bot.slack.poster import SlackPoster
    from tests.fixtures.slack_api import SlackStandIn

    slack = await SlackStandIn().start()
    try:
        cfg = config()
        cfg.slack.api_url = slack.api_url
        cfg.secrets.slack_bot_token = "xoxb-test"
        poster = SlackPoster(web_client(cfg, env={}))
        clock.set(at("2026-11-28T08:00:00"))
        _fresh_history(store)
        run = await ScheduledJobs(poster, cfg, store, "C0DIGEST", clock, ScriptedRunner()).digest()
        posts = slack.of("chat.postMessage")
        parent, *details = posts
        assert parent.params["channel"] == "C0DIGEST" and not parent.params.get("thread_ts")
        assert parent.params["text"].startswith("Mail health digest: red")
        assert details and all(d.params["thread_ts"] == run.ts for d in details)
        assert run.status == "sent" and run.channel == "C0DIGEST"
    finally:
        await slack.stop()
