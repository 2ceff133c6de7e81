"""Open-relay evidence from the log, end to end through the real engine: the scheduled summary
alerts "open relay" (not "possible compromise"), and the digest turns red."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from bot.config import Config
from bot.digest import build_digest
from bot.monitor import Monitor
from bot.store import Store
from tests.fixtures.digest_history import RecordingPoster
from tests.handlers.logsummary.conftest import PostfixLog

NOW = datetime(2026, 11, 28, 11, 30).astimezone()


async def test_relayed_stranger_alerts_open_relay_and_digest_is_red(tmp_path: Path) -> None:
    log = PostfixLog(day="Nov 28", hour=10)
    log.message("198.51.100.9", "friend@far.example", ["bob@our.example"], transport="virtual")
    log.message("203.0.113.66", "spam@spam.example", ["v1@victim.example", "v2@other.example"])
    path = log.write(tmp_path / "mail.log")
    os.utime(path, (NOW.timestamp(), NOW.timestamp()))
    config = Config()
    config.logs.paths = [str(path)]
    config.logsummary.internal_networks = ["192.168.0.0/16"]
    poster = RecordingPoster()
    with Store(tmp_path / "rw.db", clock=lambda: NOW) as store:
        store.add_watch("ip", "192.0.2.1")
        monitor = Monitor(config, store, poster=poster, channel="C0DIGEST", clock=lambda: NOW)
        (record,) = (await monitor.run("mailsummary")).records
        assert record.status == "problem"
        (opening,) = poster.posts
        assert opening.reply.text.startswith(
            ":rotating_light: *open relay*: the mail log shows this server relaying mail for "
            "strangers"
        )
        assert "reject_unauth_destination" in opening.reply.text
        digest = build_digest(store, config, NOW)
    assert digest.status == "red"
    assert any("this server (open_relay)" in reason for reason in digest.reasons)
