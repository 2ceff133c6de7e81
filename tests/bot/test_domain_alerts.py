"""Watched domains in the monitor: recorded as check kind "domain", one alert per change in the
alert's thread, closed when everything passes again; a run that could not check changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.monitor import Monitor
from bot.store import Store
from tests.fixtures.digest_history import (
    Clock,
    RecordingPoster,
    ScriptedRunner,
    config,
    domain_data,
)
from tests.fixtures.dns_server import DnsTestServer
from tests.fixtures.domain_zones import GOOD_IP, add_domain_zones

DOMAIN = "example.com"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Store:
    with Store(tmp_path / "rw.db", clock=clock) as opened:
        opened.add_watch("domain", DOMAIN)
        yield opened


async def test_domain_failure_alerts_once_follows_up_and_closes(store: Store, clock: Clock) -> None:
    poster = RecordingPoster()
    runner = ScriptedRunner()
    monitor = Monitor(config(), store, runner, poster, "C0DIGEST", clock)

    runner.set("domain", DOMAIN, domain_data(DOMAIN))
    await monitor.run("domain")
    assert poster.posts == []  # warnings only: nothing to alert on
    assert store.latest_check("domain", DOMAIN).status == "ok"

    runner.set("domain", DOMAIN, domain_data(DOMAIN, failing=[("spf.all", "+all")]))
    clock.advance(hours=6)
    report = await monitor.run("domain")
    (opening,) = poster.posts
    assert opening.thread_ts is None
    assert "`example.com` fails 1 sending-domain check" in opening.reply.text
    assert "spf.all example.com: +all" in opening.reply.text
    assert "fix for spf.all" in opening.reply.thread[0].text  # the record to publish, threaded
    assert [e.action for e in report.events] == ["opened"]
    rerun = [
        e["value"]
        for b in opening.reply.blocks
        if b.to_dict()["type"] == "actions"
        for e in b.to_dict()["elements"]
        if e["action_id"] == "rerun"
    ]
    assert rerun == [f"domaincheck {DOMAIN}"]

    clock.advance(hours=6)
    await monitor.run("domain")  # the same failure: no new message
    assert len(poster.posts) == 1

    clock.advance(hours=6)  # could not check: we know no more than before
    runner.set("domain", DOMAIN, domain_data(DOMAIN, errors=["spf.all", "dmarc.record"]))
    await monitor.run("domain")
    assert len(poster.posts) == 1
    assert store.open_alert(f"domain:{DOMAIN}") is not None

    clock.advance(hours=6)
    runner.set(
        "domain",
        DOMAIN,
        domain_data(DOMAIN, failing=[("spf.all", "+all"), ("dmarc.record", "no DMARC record")]),
    )
    await monitor.run("domain")
    follow = poster.posts[-1]
    assert follow.thread_ts == opening.ts
    assert "now failing: dmarc.record example.com: no DMARC record" in follow.reply.text

    clock.advance(hours=6)
    runner.set("domain", DOMAIN, domain_data(DOMAIN))
    await monitor.run("domain")
    closing = poster.posts[-1]
    assert closing.thread_ts == opening.ts and "Closing this alert" in closing.reply.text
    assert store.open_alert(f"domain:{DOMAIN}") is None
    assert len(poster.posts) == 3


async def test_monitor_runs_the_real_engine_on_watched_domains(tmp_path: Path, clock) -> None:
    with DnsTestServer() as dns_server, Store(tmp_path / "rw.db", clock=clock) as store:
        add_domain_zones(dns_server)
        store.add_watch("domain", "plusall.test")
        store.add_watch("ip", GOOD_IP)  # the watch list's IPs are the sending IPs
        cfg = config()
        cfg.domain.nameservers = [dns_server.nameserver]
        cfg.domain.timeout = 0.4
        poster = RecordingPoster()
        report = await Monitor(cfg, store, poster=poster, channel="C0DIGEST", clock=clock).run(
            "domain"
        )
    (record,) = report.records
    assert (record.kind, record.subject, record.status) == ("domain", "plusall.test", "problem")
    assert {"address": GOOD_IP, "origin": "watch list"} in record.result["domains"][0][
        "sending_ips"
    ]
    (opening,) = poster.posts
    assert "spf.all plusall.test" in opening.reply.text
