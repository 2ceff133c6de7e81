"""Delisting followed until done: a listing of a watched address becomes a case, is re-asked on
its own schedule, and its alert thread hears "removed after 26 h", an overdue note, a relisting.
Real DNS (the test server's zones change underneath), the real blocklist engine, injected clock."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import Config
from bot.digest import build_digest
from bot.dispatch import Dispatcher, Invocation
from bot.monitor import Monitor
from bot.monitor.delisting import CaseKeeper
from bot.render import digest as render_digest
from bot.store import Store
from tests.fixtures.digest_history import Clock, RecordingPoster
from tests.fixtures.dns_server import DnsTestServer
from tests.fixtures.dnsbl_zones import rev

IP = "192.0.2.60"
EXPIRING = "expiring.dnsbl.test"  # removal by itself, about 24 h after the cause stops
REVIEWED = "reviewed.dnsbl.test"  # removal on request, reviewed by a person

CATALOG = f"""
[[list]]
zone = "{EXPIRING}"
kind = "ipv4"
severity = "major"
removal = "expires"
expires_hours = 24
delist_url = "https://expiring.example/delist"

[[list]]
zone = "{REVIEWED}"
kind = "ipv4"
severity = "minor"
removal = "request"
delist_url = "https://reviewed.example/remove"
"""


@pytest.fixture
def dns() -> DnsTestServer:
    with DnsTestServer() as server:
        for zone in (EXPIRING, REVIEWED):
            server.add_zone(zone, negative_ttl=0)
            server.add_record(f"2.0.0.127.{zone}", "A", "127.0.0.2", ttl=0)
            server.add_record(f"{rev(IP)}.{zone}", "A", "127.0.0.2", ttl=0)
        yield server


@pytest.fixture
def config(dns: DnsTestServer, tmp_path: Path) -> Config:
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(CATALOG, encoding="utf-8")
    cfg = Config()
    cfg.blacklist.catalog_file = str(catalog)
    cfg.blacklist.nameservers = [dns.nameserver]
    cfg.blacklist.timeout = 1.0
    return cfg


def _texts(poster: RecordingPoster, thread_ts: str) -> list[str]:
    return [p.reply.text for p in poster.posts if p.thread_ts == thread_ts]


async def test_a_listing_followed_until_removed_overdue_and_relisted(
    dns: DnsTestServer, config: Config, tmp_path: Path
) -> None:
    clock = Clock()
    poster = RecordingPoster()
    with Store(tmp_path / "rw.db", clock=clock) as store:
        store.add_watch("ip", IP)
        monitor = Monitor(config, store, poster=poster, channel="C0DIGEST", clock=clock)
        keeper: CaseKeeper = monitor.cases

        await monitor.run("blacklist")
        (opening,) = poster.posts
        labels = [
            e["text"]["text"]
            for b in opening.reply.blocks
            if b.to_dict()["type"] == "actions"
            for e in b.to_dict()["elements"]
        ]
        assert "Cause fixed" in labels and "Delisting requested" in labels
        cases = {c.zone: c for c in store.delist_cases("listed")}
        assert set(cases) == {EXPIRING, REVIEWED}
        assert cases[EXPIRING].alert_id == store.open_alert(f"blacklist:{IP}").id

        # the buttons record who and when, and say what to do next, in the thread
        dispatcher = Dispatcher(config, store)
        fixed = await dispatcher.delisting(
            Invocation("delisting_cause_fixed", IP, "UADMIN", "C0DIGEST", source="button"),
            "cause_fixed",
        )
        assert "marked the cause fixed" in fixed.reply.text
        assert "https://reviewed.example/remove" in fixed.reply.text
        assert "expires by itself" in fixed.reply.text
        requested = await dispatcher.delisting(
            Invocation("delisting_requested", IP, "UADMIN", "C0DIGEST", source="button"),
            "requested",
        )
        assert "requested removal" in requested.reply.text
        assert store.delist_case(IP, REVIEWED).requested_by == "UADMIN"

        # nothing due yet: no lookups, no posts; then every 30 minutes while still listed
        assert await keeper.recheck_due() == []
        clock.advance(minutes=31)
        assert await keeper.recheck_due() == []
        assert store.delist_case(IP, EXPIRING).next_check_at == clock() + timedelta(minutes=30)

        # past 24 h after the cause was fixed, the 24 h list is overdue: said once
        clock.advance(hours=24)
        events = await keeper.recheck_due()
        assert [e.kind for e in events] == ["overdue"]
        assert any("past the list's own expiry" in t for t in _texts(poster, opening.ts))
        clock.advance(minutes=31)
        assert await keeper.recheck_due() == []

        # the reviewed list drops the address: "removed after 26 h" in the thread
        dns.remove_records(f"{rev(IP)}.{REVIEWED}")
        clock.advance(minutes=31)
        events = await keeper.recheck_due()
        assert [e.kind for e in events] == ["removed"]
        assert f"{IP} removed from {REVIEWED} after 26 h, 26 h after removal" in events[0].text
        assert store.delist_case(IP, REVIEWED).state == "removed"

        digest = build_digest(store, config, clock())
        (note,) = digest.delisting
        assert (note.zone, note.overdue) == (EXPIRING, True)
        assert "OVERDUE" in render_digest.text(digest)

        # listed again: a relisting, said in the (still open) alert's thread
        dns.add_record(f"{rev(IP)}.{REVIEWED}", "A", "127.0.0.2", ttl=0)
        clock.advance(hours=2)
        await monitor.run("blacklist")
        relisted = [t for t in _texts(poster, opening.ts) if "again" in t]
        assert relisted and f"listed on {REVIEWED} again" in relisted[0]
        assert store.delist_case(IP, REVIEWED).relistings == 1


async def test_a_list_that_does_not_answer_concludes_nothing(
    dns: DnsTestServer, config: Config, tmp_path: Path
) -> None:
    clock = Clock()
    with Store(tmp_path / "rw.db", clock=clock) as store:
        store.add_watch("ip", IP)
        monitor = Monitor(config, store, poster=RecordingPoster(), channel="C0", clock=clock)
        await monitor.run("blacklist")
        dns.silent_zone(REVIEWED)
        clock.advance(minutes=31)
        assert await monitor.cases.recheck_due() == []
        assert store.delist_case(IP, REVIEWED).state == "listed"
