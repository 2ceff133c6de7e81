"""End to end with the real blocklist and log-summary engines: the fixture DNS server with test
DNSBL zones, a DNS server that never answers, and the real Postfix log in tests/data."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.config import Config
from bot.digest import build_digest
from bot.monitor import Monitor
from bot.render import digest as render
from bot.store import Store
from tests.fixtures.digest_history import Clock, RecordingPoster
from tests.fixtures.dns_server import DnsTestServer
from tests.fixtures.dnsbl_zones import (
    CLEAN_IP,
    LISTED_IP,
    UNHEALTHY_ZONES,
    populate,
    rev,
    write_catalog,
)
from tests.fixtures.real_log import real_postfix_log

SHARED_LOG = real_postfix_log()


@pytest.fixture
def dns_server() -> Iterator[DnsTestServer]:
    with DnsTestServer() as server:
        populate(server)
        yield server


@pytest.fixture
def silent_nameserver() -> Iterator[str]:
    """A UDP port on 127.0.0.1 that takes queries and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sock.getsockname()[1]}"


def _config(tmp_path: Path, nameserver: str) -> Config:
    cfg = Config()
    cfg.slack.digest_channel = "C0DIGEST"
    cfg.blacklist.catalog_file = str(write_catalog(tmp_path))
    cfg.blacklist.nameservers = [nameserver]
    cfg.blacklist.timeout = 0.2
    cfg.blacklist.retries = 1
    # the lists that never answer / are dead would make every run incomplete; this test is
    # about listings and about a resolver that is down
    cfg.blacklist.disabled_zones = sorted(UNHEALTHY_ZONES)
    return cfg


async def test_real_blocklist_runs_alert_on_a_new_listing_and_a_dead_resolver_is_failed(
    tmp_path: Path, dns_server: DnsTestServer, silent_nameserver: str
) -> None:
    clock = Clock()
    cfg = _config(tmp_path, dns_server.nameserver)
    with Store(tmp_path / "rw.db", clock=clock) as store:
        store.add_watch("ip", CLEAN_IP)
        store.add_watch("ip", LISTED_IP)
        poster = RecordingPoster()
        monitor = Monitor(cfg, store, poster=poster, channel="C0DIGEST", clock=clock)

        report = await monitor.run("blacklist")
        assert {r.subject: r.status for r in report.records} == {
            CLEAN_IP: "ok",
            LISTED_IP: "problem",
        }
        (alert,) = poster.posts
        assert f"`{LISTED_IP}` is listed" in alert.reply.text
        assert "zen.dnsbl.test" in alert.reply.text

        clock.advance(hours=1)
        await monitor.run("blacklist")
        assert len(poster.posts) == 1  # the same listings: no second alert

        # the clean address gets listed: one new alert, its own thread
        dns_server.add_record(f"{rev(CLEAN_IP)}.zen.dnsbl.test", "A", "127.0.0.4")
        clock.advance(hours=1)
        await monitor.run("blacklist")
        assert len(poster.posts) == 2
        assert f"`{CLEAN_IP}` is listed" in poster.posts[1].reply.text
        assert poster.posts[1].thread_ts is None

        digest = build_digest(store, cfg, clock())
        listed = {a.subject: [x.zone for x in a.listings] for a in digest.addresses}
        assert listed[CLEAN_IP] == ["zen.dnsbl.test"]
        assert digest.status == "red"

        # the resolver goes quiet: the runs fail, nothing is called clean, no alert moves
        cfg.blacklist.nameservers = [silent_nameserver]
        clock.advance(hours=1)
        report = await monitor.run("blacklist")
        assert {r.status for r in report.records} == {"failed"}
        assert len(poster.posts) == 2
        assert len(store.alerts("open")) == 2
        digest = build_digest(store, cfg, clock())
        assert {a.status for a in digest.addresses} == {"failed"}
        assert {n.subject for n in digest.not_run} >= {CLEAN_IP, LISTED_IP}
        assert "clean" not in render.text(digest).split("Open relay")[0]


async def test_real_log_summary_feeds_the_digest_and_alerts_on_compromise_only(
    tmp_path: Path,
) -> None:
    clock = Clock(datetime(2026, 11, 28, 23, 0, tzinfo=UTC))  # the log ends at about 21:36
    cfg = Config()
    cfg.logs.paths = [str(SHARED_LOG)]
    with Store(tmp_path / "rw.db", clock=clock) as store:
        poster = RecordingPoster()
        monitor = Monitor(cfg, store, poster=poster, channel="C0DIGEST", clock=clock)
        report = await monitor.run("mailsummary")
        (record,) = report.records
        assert record.subject == "24h" and record.status == "problem"
        digest = build_digest(store, cfg, clock())
        assert digest.mail is not None
        assert digest.mail.current["received"] == 3805  # pflogsumm's figure for this log
        assert digest.mail.current["rejected"] == 1046
        assert digest.suspects
        alerted = {e.subject_key for e in report.events if e.action == "opened"}
        compromise = {f"suspect:{s.kind}:{s.subject}" for s in digest.suspects if not s.attack}
        assert alerted == compromise and alerted
        assert len(poster.top_level()) == len(alerted)
        clock.advance(hours=1)
        await monitor.run("mailsummary")
        assert len(poster.top_level()) == len(alerted)  # the same suspects: no new alerts
