"""A run that read no mail is "could not check", never "no suspects": the CLI exits 3, the chat
reply is yellow with the reason, the digest says the log is quiet, and a log that had traffic and
goes silent raises an alert (closed when lines come back) — all through the real engine."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.cli import main
from bot.commands import mailsummary
from bot.commands.base import CommandContext, Requester
from bot.config import Config
from bot.digest import build_digest
from bot.monitor import Monitor
from bot.store import Store
from tests.fixtures.digest_history import RecordingPoster
from tests.handlers.logsummary.conftest import PostfixLog

# the synthetic log is written at 10:xx local time on Nov 28; "now" is just after
NOW = datetime(2026, 11, 28, 11, 30).astimezone()


def _traffic(path: Path) -> Path:
    log = PostfixLog(day="Nov 28", hour=10)
    for n in range(3):
        log.message("192.0.2.7", f"s{n}@partner.example", ["bob@lab.test"], transport="virtual")
    log.write(path)
    os.utime(path, (NOW.timestamp(), NOW.timestamp()))
    return path


def _garbage(path: Path) -> Path:
    path.write_text("".join(f"random text {n} that is no log at all\n" for n in range(200)))
    return path


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("RELAYWATCH_"):
            monkeypatch.delenv(name)
    path = tmp_path / "config.toml"
    path.write_text(
        f'[store]\npath = "{tmp_path / "rw.db"}"\n'
        '[logsummary]\ninternal_networks = ["10.0.0.0/8"]\n'
    )
    return path


@pytest.mark.parametrize(
    ("writer", "extra", "detail"),
    [
        (lambda p: p.write_text("") and p, (), "the log is empty"),
        (_garbage, (), "none of the 200 lines read is a log line relaywatch can parse"),
        (_traffic, ("--since", "2026-11-29T00:00"), "every log file lies outside the time window"),
    ],
    ids=["empty", "garbage", "outside-window"],
)
def test_cli_exits_3_when_no_mail_line_was_read(
    config_file: Path, tmp_path: Path, capsys, writer, extra, detail
) -> None:
    log = tmp_path / "mail.log"
    writer(log)
    code = main(["--config", str(config_file), "mailsummary", str(log), *extra])
    out = capsys.readouterr().out
    assert code == 3
    assert "Suspects: none" not in out
    assert "COULD NOT CHECK: no mail log lines" in out and "is logging alive?" in out
    assert detail in out


def test_cli_exits_3_when_almost_every_line_is_unparsed(
    config_file: Path, tmp_path: Path, capsys
) -> None:
    log = _traffic(tmp_path / "mail.log")
    with log.open("a") as stream:
        stream.write("".join(f"garbled {n}\n" for n in range(500)))
    assert main(["--config", str(config_file), "mailsummary", str(log)]) == 3
    out = capsys.readouterr().out
    assert "could not be parsed" in out and "Suspects: none" not in out


def test_cli_reading_mail_still_exits_0(config_file: Path, tmp_path: Path, capsys) -> None:
    log = _traffic(tmp_path / "mail.log")
    assert main(["--config", str(config_file), "mailsummary", str(log)]) == 0
    assert "Suspects: none" in capsys.readouterr().out


async def test_chat_reply_is_yellow_with_the_reason(tmp_path: Path) -> None:
    config = Config()
    config.logs.paths = [str(tmp_path / "mail.log")]
    (tmp_path / "mail.log").write_text("")
    with Store(tmp_path / "rw.db", clock=lambda: NOW) as store:

        async def progress(text: str) -> None:
            return None

        ctx = CommandContext(config, store, Requester("U1", "C1", False), progress, lambda: NOW)
        reply = await mailsummary.run(ctx, "")
        (record,) = store.checks("mailsummary")
    assert reply.text.startswith(":large_yellow_circle: Mail summary (24h): could not check")
    assert "no mail log lines in the last 24 h — is logging alive?" in reply.text
    assert record.status == "failed"


async def test_log_going_silent_alerts_shows_in_digest_and_closes(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    config = Config()
    config.logs.paths = [str(log)]
    config.logsummary.internal_networks = ["10.0.0.0/8"]
    config.slack.digest_channel = "C0DIGEST"
    clock = [NOW]
    poster = RecordingPoster()
    with Store(tmp_path / "rw.db", clock=lambda: clock[0]) as store:
        store.add_watch("ip", "192.0.2.1")
        monitor = Monitor(config, store, poster=poster, channel="C0DIGEST", clock=lambda: clock[0])

        # never had traffic: could not check, but nothing "went" silent
        log.write_text("")
        (first,) = (await monitor.run("mailsummary")).records
        assert first.status == "failed" and poster.posts == []

        _traffic(log)
        clock[0] += timedelta(minutes=30)
        (ok,) = (await monitor.run("mailsummary")).records
        assert ok.status == "ok" and poster.posts == []

        log.write_text("")  # rotated away, and nothing writes the new file
        clock[0] += timedelta(hours=1)
        report = await monitor.run("mailsummary")
        assert [e.action for e in report.events] == ["opened"]
        (opening,) = poster.posts
        assert "the mail log went silent" in opening.reply.text
        assert "no mail log lines in the last 24 h — is logging alive?" in opening.reply.text
        assert "read 21 mail log lines" in opening.reply.text  # the earlier summary's figure

        digest = build_digest(store, config, clock[0])
        assert digest.status == "yellow"
        assert "no mail log lines in the last 24 h — is logging alive?" in digest.reasons
        assert digest.mail is None

        clock[0] += timedelta(hours=1)
        await monitor.run("mailsummary")  # still silent: no second alert
        assert len(poster.posts) == 1

        _traffic(log)
        clock[0] += timedelta(minutes=5)
        report = await monitor.run("mailsummary")
        assert [e.action for e in report.events] == ["closed"]
        assert "mail log lines are back" in poster.posts[-1].reply.text
        assert poster.posts[-1].thread_ts == opening.ts
