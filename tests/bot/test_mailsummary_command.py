"""/mailsummary from chat: headline and suspects, evidence in thread replies, the long report as a
file, recorded in the store; later runs take their baseline from that history."""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.checks.mailsummary import baseline_from_store
from bot.commands import mailsummary
from bot.commands.base import CommandContext, CommandUsageError, Requester
from bot.config import Config
from bot.store import Store
from handlers.logsummary.timefmt import TimeWindow
from tests.fixtures.real_log import real_postfix_log

SHARED_LOG = real_postfix_log()
# just after the shared log ends (it was written 2026-11-28 21:30–21:41 local time)
LOG_END = datetime(2026, 11, 28, 22, 0).astimezone()


async def _noop(text: str) -> None:
    return None


@pytest.fixture
def config(tmp_path: Path) -> Config:
    log = tmp_path / "mail.log"
    shutil.copyfile(SHARED_LOG, log)
    os.utime(log, (LOG_END.timestamp(), LOG_END.timestamp()))
    config = Config()
    config.logs.paths = [str(log)]
    config.logs.window = "24h"
    config.logsummary.internal_networks = ["127.0.0.0/24"]
    return config


@pytest.fixture
def clock() -> list[datetime]:
    return [LOG_END]


@pytest.fixture
def store(tmp_path: Path, clock: list[datetime]):
    with Store(tmp_path / "rw.db", clock=lambda: clock[0]) as opened:
        yield opened


def _ctx(config: Config, store: Store, clock: list[datetime], admin: bool = False):
    progress: list[str] = []

    async def record(text: str) -> None:
        progress.append(text)

    ctx = CommandContext(config, store, Requester("U1", "C1", admin), record, lambda: clock[0])
    return ctx, progress


async def test_reply_headline_suspects_evidence_and_report(config, store, clock) -> None:
    ctx, progress = _ctx(config, store, clock)
    reply = await mailsummary.run(ctx, "")
    assert progress[0] == "reading the mail logs (24h)…"
    assert reply.text.startswith(
        ":red_circle: Mail summary (24h): open relay (mail relayed for strangers), "
        "2 suspected compromises, 41 attackers (probes, guessing)"
    )
    assert "3,805 received, 7,125 delivered" in reply.text
    lines = reply.text.splitlines()
    assert lines[2].startswith("[99] this server (server): relayed for a stranger (open relay)")
    assert lines[3].startswith("[95] 127.0.0.66 (client)")
    assert lines[4].startswith("[71] mallory@lab.test (account)")
    # the mail-per-hour chart first (tests/bot/test_mailchart.py), then one thread reply per shown
    # suspect with its log lines, then the full report (a file)
    chart, *thread = reply.thread
    assert chart.file is not None and chart.file.filename == "mail-per-hour.png"
    evidence, report = thread[:5], thread[-1]
    assert "client=unknown[127.0.2." in evidence[0].text
    assert "client=unknown[127.0.0.66]" in evidence[1].text
    assert "sasl_username=mallory@lab.test" in evidence[2].text
    assert report.file is not None and report.file.filename == "mailsummary.txt"
    assert "Grand totals" in report.file.content
    blocks = [b.to_dict() for b in reply.blocks]
    buttons = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    # the top suspect can be contained from here (admins; Slack asks to confirm first)
    assert [b["action_id"] for b in buttons] == [
        "contain_block",
        "contain_hold",
        "contain_throttle",
        "rerun",
        "show_details",
    ]
    assert all("confirm" in b for b in buttons[:3])
    # which LAN the verdicts assumed, and where it came from
    assert "Internal networks assumed: 127.0.0.0/24 (from [logsummary] internal_networks)" in (
        json.dumps(blocks)
    )
    (record,) = store.checks("mailsummary")
    assert (record.subject, record.status) == ("24h", "problem")
    assert buttons[-1]["value"] == str(record.id)
    assert record.result["inputs"] == "configured"
    assert record.result["volumes"]["client:127.0.0.66"] == 700


@pytest.mark.parametrize("text", ["/var/log/auth.log", "../secret", "~root/x", "24h /etc/passwd"])
async def test_files_cannot_be_named(config, store, clock, text: str) -> None:
    ctx, _ = _ctx(config, store, clock, admin=True)
    with pytest.raises(CommandUsageError, match="not a file"):
        await mailsummary.run(ctx, text)
    assert store.checks("mailsummary") == []


@pytest.mark.parametrize("text", ["yesterday", "24h 48h 72h", "2026-11-28 2026-11-27"])
async def test_bad_windows(config, store, clock, text: str) -> None:
    ctx, _ = _ctx(config, store, clock)
    with pytest.raises(CommandUsageError) as caught:
        await mailsummary.run(ctx, text)
    # one line saying what is wrong; the dispatcher adds the usage line once
    assert "\n" not in str(caught.value) and "Usage" not in str(caught.value)
    assert store.checks("mailsummary") == []


async def test_baseline_from_earlier_windows(config, store, clock) -> None:
    # two days earlier the gateway sent 2 messages in a day and mallory 1
    clock[0] = LOG_END - timedelta(days=2)
    store.record_check(
        "mailsummary",
        "24h",
        "ok",
        {
            "inputs": "configured",
            "window": {"hours": 24},
            "volumes": {"client:127.0.0.66": 2, "sasl:mallory@lab.test": 1},
            "totals": {},
        },
    )
    clock[0] = LOG_END
    window = TimeWindow(since=(LOG_END - timedelta(hours=24)).timestamp())
    assert baseline_from_store(store, window) == {
        "client:127.0.0.66": pytest.approx(2 / 24),
        "sasl:mallory@lab.test": pytest.approx(1 / 24),
    }
    ctx, _ = _ctx(config, store, clock)
    await mailsummary.run(ctx, "")
    latest = store.checks("mailsummary")[0]
    kinds = {s["subject"]: s["kinds"] for s in latest.result["suspects"]}
    assert "volume_spike" in kinds["127.0.0.66"]
    assert "volume_spike" in kinds["mallory@lab.test"]
    assert "volume_spike" not in kinds.get("alice@lab.test", [])  # no history: no baseline


async def test_failure_is_reported_and_recorded(config, store, clock, tmp_path: Path) -> None:
    config.logs.paths = [str(tmp_path / "nothing-here.log")]
    ctx, _ = _ctx(config, store, clock)
    reply = await mailsummary.run(ctx, "7d")
    assert "could not complete" in reply.text and "no log file at" in reply.text
    (record,) = store.checks("mailsummary")
    assert (record.subject, record.status) == ("7d", "failed")
    assert record.result["error"].startswith("no log file at")
