"""End to end with the real engines against local servers: monitor runs record real results, alert
on change in one thread, and the digest shows a check that could not run as failed, never green."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from bot.config import Config
from bot.digest import build_digest
from bot.monitor import Monitor
from bot.render import digest as render
from bot.scheduler import ScheduledJobs
from bot.store import Store
from tests.fixtures.digest_history import Clock, RecordingPoster, mail_data, record
from tests.fixtures.relay_smtp import RelayPolicy, closed_rcpt, smtp_server


def _refused_port() -> int:
    """A loopback port nobody listens on: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _config() -> Config:
    cfg = Config()
    cfg.slack.digest_channel = "C0DIGEST"
    cfg.relay.connect_timeout = 2.0
    cfg.relay.banner_timeout = 2.0
    cfg.relay.command_timeout = 2.0
    cfg.relay.target_budget = 20.0
    return cfg


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Store:
    with Store(tmp_path / "rw.db", clock=clock) as opened:
        yield opened


async def test_real_relay_checks_alert_follow_up_and_digest(store: Store, clock: Clock) -> None:
    cfg = _config()
    policy = RelayPolicy()  # accepts every recipient: an open relay
    refused = f"127.0.0.1:{_refused_port()}"
    async with smtp_server(policy) as server:
        store.add_watch("server", server.target)
        store.add_watch("server", refused)
        poster = RecordingPoster()
        monitor = Monitor(cfg, store, poster=poster, channel="C0DIGEST", clock=clock)

        report = await monitor.run("relay")
        statuses = {r.subject: r.status for r in report.records}
        assert statuses == {server.target: "problem", refused: "failed"}
        (opening,) = poster.posts
        assert f"`{server.target}` is an *open relay*" in opening.reply.text
        assert policy.messages_completed == 0  # the check never delivers anything

        clock.advance(hours=6)
        await monitor.run("relay")
        assert len(poster.posts) == 1  # still open: no second alert

        policy.rcpt = closed_rcpt  # the admin fixed it
        clock.advance(hours=6)
        await monitor.run("relay")
        closing = poster.posts[-1]
        assert closing.thread_ts == opening.ts
        assert "now refuses to relay" in closing.reply.text
        assert store.open_alert(f"relay:{server.target}") is None

    record(store, "mailsummary", "24h", mail_data())
    digest = build_digest(store, cfg, clock())
    servers = {s.subject: s for s in digest.servers}
    assert servers[server.target].verdict == "closed"
    assert servers[refused].status == "failed"
    assert "unreachable" in servers[refused].note
    assert digest.status == "yellow"
    assert [(n.kind, n.subject) for n in digest.not_run] == [("relay", refused)]
    text = render.text(digest)
    assert f"{refused}: COULD NOT CHECK" in text


async def test_scheduled_digest_with_a_refused_relay_target_is_not_green(
    store: Store, clock: Clock
) -> None:
    cfg = _config()
    refused = f"127.0.0.1:{_refused_port()}"
    store.add_watch("server", refused)
    record(store, "mailsummary", "24h", mail_data())
    poster = RecordingPoster()
    clock.set(clock().replace(hour=8, minute=0))
    jobs = ScheduledJobs(poster, cfg, store, "C0DIGEST", clock)  # the real engines
    run = await jobs.digest()
    assert run.status == "sent"
    (posted,) = poster.posts
    assert posted.reply.text.startswith("Mail health digest: yellow")
    assert store.latest_check("relay", refused).status == "failed"
