"""Two and three replicas on one store (SQLite and PostgreSQL): every alert, follow-up and digest is
posted exactly once, counted at the poster or the Slack stand-in; a poster that dies mid-post is
replaced once its lease runs out; a killed scheduler leader is replaced and the next digest still
goes out once; a containment entry written through one replica reaches another within a second."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.monitor import Monitor
from bot.render.reply import ChatReply
from bot.scheduler import ScheduledJobs
from bot.scheduler.leader import LEASE, Leadership, leader_only
from bot.slack.client import web_client
from bot.slack.poster import SlackPoster
from bot.store import Store
from bot.store_changes import containment_changes
from tests.fixtures.digest_history import (
    Clock,
    RecordingPoster,
    ScriptedRunner,
    blacklist_data,
    config,
    mail_data,
    record,
    suspect,
)
from tests.fixtures.slack_api import SlackStandIn

IP = "192.0.2.10"
ROOT = Path(__file__).parents[2]


class HeldPoster:
    """Delegates to a shared poster; while `hold` is set, each post waits until released — or
    never returns, if its task is cancelled there (a process dying mid-post)."""

    def __init__(self, inner: RecordingPoster) -> None:
        self.inner = inner
        self.hold = False
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def post(self, channel: str, reply: ChatReply, thread_ts: str | None = None) -> str:
        if self.hold:
            self.entered.set()
            await self.release.wait()
        return await self.inner.post(channel, reply, thread_ts)

    async def update(self, channel: str, ts: str, reply: ChatReply) -> None:
        await self.inner.update(channel, ts, reply)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def replicas(store_location: str, clock: Clock) -> Iterator[list[Store]]:
    stores = [Store(store_location, clock=clock) for _ in range(3)]
    stores[0].add_watch("ip", IP)
    try:
        yield stores
    finally:
        for store in stores:
            store.close()


def _monitor(store: Store, runner: ScriptedRunner, poster, clock: Clock) -> Monitor:
    return Monitor(config(), store, runner, poster, "C0DIGEST", clock)


async def test_a_replica_does_not_repost_an_alert_another_is_still_posting(
    replicas: list[Store], clock: Clock
) -> None:
    """The observed bug: B saw A's alert before A stored its thread ts and posted it again."""
    shared = RecordingPoster()
    slow = HeldPoster(shared)
    runner = ScriptedRunner()
    first = _monitor(replicas[0], runner, slow, clock)
    others = [_monitor(s, runner, shared, clock) for s in replicas[1:]]
    runner.set("blacklist", IP, blacklist_data(IP, ["zen.spamhaus.org", "bl.spamcop.net"]))
    carol, host = suspect("sasl_many_ips", "carol@lab.test"), suspect("spam_burst", "127.0.0.45")
    runner.set("mailsummary", "24h", mail_data(suspects=[carol, host]))
    slow.hold = True
    for kind in ("blacklist", "mailsummary"):
        slow.entered.clear()
        slow.release.clear()
        running = asyncio.create_task(first.run(kind))
        await slow.entered.wait()  # A has claimed and is posting its (first) opening
        for other in others:
            await other.run(kind)
        slow.release.set()
        await running
    openings = [p.reply.text for p in shared.top_level()]
    assert len(openings) == 3, openings
    assert sum("is listed on 2 blocklists" in t for t in openings) == 1
    assert sum("carol@lab.test" in t for t in openings) == 1
    assert sum("127.0.0.45" in t for t in openings) == 1
    # a change seen by all three at once: one follow-up
    slow.hold = False
    clock.advance(hours=1)
    runner.set("blacklist", IP, blacklist_data(IP, ["zen.spamhaus.org"]))
    await asyncio.gather(*(m.run("blacklist") for m in [first, *others]))
    alert = replicas[2].open_alert(f"blacklist:{IP}")
    follow_ups = shared.in_thread(alert.thread_ts)
    assert len(follow_ups) == 1 and "removed from bl.spamcop.net" in follow_ups[0].reply.text


async def test_a_poster_that_dies_mid_post_is_replaced_after_its_lease(
    replicas: list[Store], clock: Clock
) -> None:
    shared = RecordingPoster()
    dying = HeldPoster(shared)
    runner = ScriptedRunner()
    doomed = _monitor(replicas[0], runner, dying, clock)
    survivor = _monitor(replicas[1], runner, shared, clock)
    runner.set("blacklist", IP, blacklist_data(IP, ["zen.spamhaus.org"]))
    dying.hold = True
    task = asyncio.create_task(doomed.run("blacklist"))
    await dying.entered.wait()
    task.cancel()  # the process dies holding the claim: no release, no thread ts
    with pytest.raises(asyncio.CancelledError):
        await task
    await survivor.run("blacklist")
    assert shared.posts == []  # the lease is still live: it might yet post
    clock.advance(minutes=2)
    await survivor.run("blacklist")
    (opening,) = shared.posts
    assert replicas[2].open_alert(f"blacklist:{IP}").thread_ts == opening.ts
    # now the same for a follow-up: the winner of the change dies before posting it
    dying.entered.clear()
    doomed = _monitor(replicas[0], runner, dying, clock)
    clock.advance(hours=1)
    runner.set("blacklist", IP, blacklist_data(IP))
    task = asyncio.create_task(doomed.run("blacklist"))
    await dying.entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await survivor.run("blacklist")  # the change is A's (it won it); its lease is live
    assert len(shared.posts) == 1
    clock.advance(minutes=2)
    await survivor.run("blacklist")
    assert len(shared.posts) == 2
    closing = shared.posts[1]
    assert closing.thread_ts == opening.ts and "no longer listed" in closing.reply.text
    clock.advance(hours=1)
    await survivor.run("blacklist")
    assert len(shared.posts) == 2


async def test_three_replicas_send_one_digest_and_each_alert_once_through_slack(
    replicas: list[Store], clock: Clock
) -> None:
    slack = await SlackStandIn().start()
    try:
        cfg = config()
        cfg.slack.api_url = slack.api_url
        cfg.secrets.slack_bot_token = "xoxb-test"
        runner = ScriptedRunner()
        runner.set("blacklist", IP, blacklist_data(IP, ["zen.spamhaus.org"]))
        runner.set("mailsummary", "24h", mail_data(suspects=[suspect("spam_burst", "127.0.0.45")]))
        jobs = [
            ScheduledJobs(
                SlackPoster(web_client(cfg, env={})),
                cfg,
                s,
                "C0DIGEST",
                clock,
                runner,
                claimed_by=f"replica-{n}",
            )
            for n, s in enumerate(replicas)
        ]
        clock.set(datetime(2026, 11, 28, 8, 0, 1, tzinfo=UTC))
        # every replica's catch-up and cron fire at once; each refreshes stale checks first
        runs = await asyncio.gather(*(j.digest() for j in jobs), *(j.digest() for j in jobs))
        assert sum(1 for r in runs if r is not None) == 1
        posts = slack.of("chat.postMessage")
        top = [p for p in posts if not p.params.get("thread_ts")]
        texts = sorted(p.params["text"].split("\n")[0] for p in top)
        assert sum(t.startswith("Mail health digest") for t in texts) == 1, texts
        alerts = [t for t in texts if t.startswith(":rotating_light:")]
        assert sum("is listed on 1 blocklist" in t for t in alerts) == 1, texts
        assert sum("possible compromise: `127.0.0.45`" in t for t in alerts) == 1, texts
        assert len(top) == 3, texts
    finally:
        await slack.stop()


HOLDER = textwrap.dedent(
    """
    import sys, time
    from datetime import datetime, timedelta
    from bot.store import Store
    moment = datetime.fromisoformat(sys.argv[2])
    store = Store(sys.argv[1], clock=lambda: moment)
    assert store.hold_leadership("scheduler", "doomed", timedelta(seconds=45))
    print("leading", flush=True)
    time.sleep(600)
    """
)


def _start_leader(location: str, moment: datetime) -> subprocess.Popen[str]:
    """A replica in its own process that takes the leadership and holds it until killed."""
    leader = subprocess.Popen(
        [sys.executable, "-c", HOLDER, location, moment.isoformat()],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert leader.stdout is not None and leader.stdout.readline().strip() == "leading"
    return leader


def _sigkill(process: subprocess.Popen[str]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


async def test_a_killed_leader_is_replaced_and_the_next_digest_goes_out_once(
    store_location: str, replicas: list[Store], clock: Clock
) -> None:
    poster = RecordingPoster()
    runner = ScriptedRunner()
    clock.set(datetime(2026, 11, 28, 7, 0, tzinfo=UTC))
    record(replicas[0], "blacklist", IP, blacklist_data(IP))
    record(replicas[0], "mailsummary", "24h", mail_data())
    leader = _start_leader(store_location, clock())
    try:
        standby = [
            Leadership(s, f"replica-{n}", clock) for n, s in enumerate(replicas[1:], start=1)
        ]
        assert [lead.check() for lead in standby] == [False, False]
    finally:
        _sigkill(leader)
    if replicas[0].backend == "sqlite":
        assert [lead.check() for lead in standby] == [False, False]  # its lease still runs
        clock.advance(seconds=LEASE.total_seconds())
    # PostgreSQL drops the dead session's lock as soon as it sees the socket close
    deadline = time.monotonic() + 10
    while not any(lead.check() for lead in standby):
        assert time.monotonic() < deadline, "nobody took over from the killed leader"
        await asyncio.sleep(0.05)
    assert sum(lead.held for lead in standby) == 1
    jobs = [
        leader_only(lead, ScheduledJobs(poster, config(), s, "C0DIGEST", clock, runner).digest)
        for lead, s in zip(standby, replicas[1:], strict=True)
    ]
    clock.set(datetime(2026, 11, 28, 8, 0, 0, tzinfo=UTC))
    runs = await asyncio.gather(*(job() for job in jobs), *(job() for job in jobs))
    assert sum(1 for r in runs if r is not None) == 1
    assert len(poster.top_level()) == 1
    assert poster.posts[0].reply.text.startswith("Mail health digest")


async def test_a_containment_entry_reaches_another_replica_within_a_second(
    store_location: str, clock: Clock
) -> None:
    changes = containment_changes(store_location, poll_seconds=0.2)
    with Store(store_location, clock=clock) as writer:
        start = await asyncio.wait_for(anext(changes), 10)
        expires = datetime(2026, 11, 29, tzinfo=UTC)
        began = time.monotonic()
        writer.add_containment("account", "carol@lab.test", "block", expires, "spam", "U1")
        revision = await asyncio.wait_for(anext(changes), 1.0)
        latency = time.monotonic() - began
        assert revision == start + 1
        with Store(store_location, clock=clock) as reader:  # another replica's view
            (entry,) = reader.active_containments()
            assert entry.subject == "carol@lab.test" and entry.action == "block"
        if writer.backend == "postgresql":
            assert latency < 0.2, f"took {latency:.3f}s: notified, not polled"
    await changes.aclose()


async def test_only_the_leader_runs_the_scheduled_jobs(replicas: list[Store], clock: Clock) -> None:
    from bot.scheduler import start_for

    cfg = config(relay_every_hours=0, logsummary_every_minutes=0)
    runner = ScriptedRunner()
    runner.set("blacklist", IP, blacklist_data(IP))
    handles = [
        start_for(RecordingPoster(), cfg, s, clock, runner=runner, claimed_by=f"replica-{n}")
        for n, s in enumerate(replicas[:2])
    ]
    first = [h.scheduler.get_job("monitor-blacklist").next_run_time for h in handles]
    try:
        for _ in range(300):  # both fire their monitor at start; no schedule time passes
            later = [h.scheduler.get_job("monitor-blacklist").next_run_time for h in handles]
            if all(b > a for a, b in zip(first, later, strict=True)):
                break  # each replica's job has run (and rescheduled itself)
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # let the last one finish its body
        assert runner.calls == [("blacklist", IP)]  # the follower's run did nothing
        leader, follower = sorted(handles, key=lambda h: not h.leadership.held)
        assert leader.leadership.held and not follower.leadership.held
        leader.shutdown()  # a clean stop hands leadership over at once
        assert await follower.scheduler.get_job("monitor-blacklist").func() is not None
        assert follower.leadership.held and runner.calls == [("blacklist", IP)] * 2
    finally:
        for handle in handles:
            handle.shutdown()
