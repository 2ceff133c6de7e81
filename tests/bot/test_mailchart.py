"""The mail-per-hour chart: drawn from real summaries, attached to /mailsummary and the digest,
uploaded to Slack's thread as a PNG, saved to a file by the shell, and never loaded at CLI start."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.commands import mailsummary
from bot.commands.base import CommandContext, Requester
from bot.config import Config
from bot.mailchart import FILENAME, summary_chart
from bot.render.chart import hour_order, mail_chart_png, series, suspect_series
from bot.render.reply import ChatReply, ReplyFile
from bot.shell.poster import reply_text
from bot.store import Store
from tests.handlers.logsummary.conftest import PostfixLog

matplotlib = pytest.importorskip("matplotlib")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def mail_log(path: Path, gateway_messages: int) -> Path:
    """A Postfix log (hours 10 and 11 of Nov 28) with a LAN host sending straight out."""
    log = PostfixLog(hour=10)
    for number in range(gateway_messages):
        log.message("192.168.1.50", "printer@example.org", [f"user{number}@remote.example"])
    log.hour = 11
    for _ in range(3):
        log.message("203.0.113.9", "alice@example.org", ["bob@remote.example"], sasl_user="alice")
    for _ in range(6):
        log.relay_denied("198.51.100.77")
    return log.write(path)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    config = Config()
    config.logs.paths = [str(mail_log(tmp_path / "mail.log", 60))]
    config.logs.window = "24h"
    config.logsummary.internal_networks = ["192.168.0.0/16"]
    return config


@pytest.fixture
def clock() -> list[datetime]:
    return [NOW]


@pytest.fixture
def store(tmp_path: Path, clock: list[datetime]) -> Store:
    with Store(tmp_path / "rw.db", clock=lambda: clock[0]) as opened:
        yield opened


async def _noop(text: str) -> None:
    return None


def _ctx(config: Config, store: Store, clock: list[datetime]) -> CommandContext:
    return CommandContext(config, store, Requester("U1", "C1", True), _noop, lambda: clock[0])


def _pixels(png: bytes) -> tuple[int, int]:
    from matplotlib import image

    return image.imread(io.BytesIO(png)).shape[:2]


async def test_mailsummary_reply_carries_the_chart_against_the_previous_window(
    config: Config, store: Store, clock: list[datetime], tmp_path: Path
) -> None:
    # yesterday's summary, one window earlier: a quieter log
    clock[0] = NOW - timedelta(hours=24)
    config.logs.paths = [str(mail_log(tmp_path / "yesterday.log", 5))]
    first = await mailsummary.run(_ctx(config, store, clock), "")
    assert "no earlier summary" in first.thread[0].text
    clock[0] = NOW
    config.logs.paths = [str(mail_log(tmp_path / "mail.log", 60))]
    reply = await mailsummary.run(_ctx(config, store, clock), "")
    chart = reply.thread[0]
    assert chart.file is not None and chart.file.filename == FILENAME
    assert chart.file.title == "Mail per hour, 24h against the 24h before"
    png = chart.file.content
    assert isinstance(png, bytes) and png.startswith(PNG_SIGNATURE)
    height, width = _pixels(png)
    assert width == 800 and height > 500  # three panels: volume, rejects, suspects


def test_series_come_from_the_summary_in_log_order(config: Config, store: Store) -> None:
    current = {
        "window": {"last_line": "2026-11-28T11:59:00+00:00"},
        "per_hour": [
            {"hour": h, "received": h, "rejected": 2 * h, "delivered": 0} for h in range(24)
        ],
        "suspects": [
            {"kind": "relay_probe", "subject": "198.51.100.77", "subject_type": "client",
             "per_hour": [1] * 24},
            {"kind": "internal_host_outbound", "subject": "192.168.1.50",
             "subject_type": "client", "per_hour": [0] * 10 + [60] + [0] * 13},
        ],
    }  # fmt: skip
    earlier = [0] * 10 + [5] + [0] * 13
    previous = {
        "suspects": [{"subject": "192.168.1.50", "subject_type": "client", "per_hour": earlier}]
    }
    order = hour_order(current)
    assert order[0] == 12 and order[-1] == 11  # the window ends with the last line's hour
    assert series(current, "rejected", order)[-1] == 22
    assert series(None, "received", order) is None
    # attackers are not drawn; a suspect seen a window earlier gets its earlier line
    ((label, values, before),) = suspect_series(current, previous, order)
    assert label == "192.168.1.50" and values[order.index(10)] == 60
    assert before is not None and before[order.index(10)] == 5
    assert mail_chart_png({"window": {}}, None, "nothing") is None  # no per-hour data: no chart


def test_real_summary_suspects_carry_their_sending_per_hour(
    config: Config, store: Store, clock: list[datetime]
) -> None:
    import asyncio

    asyncio.run(mailsummary.run(_ctx(config, store, clock), ""))
    (record,) = store.checks("mailsummary")
    suspect = next(s for s in record.result["suspects"] if s["subject"] == "192.168.1.50")
    assert suspect["per_hour"][10] == 60 and sum(suspect["per_hour"]) == 60
    assert summary_chart(store, record.id) is not None


def test_shell_saves_the_image_and_prints_its_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    png = PNG_SIGNATURE + b"rest"
    shown = reply_text(ChatReply(text="chart", file=ReplyFile(FILENAME, "Mail per hour", png)))
    path = Path(shown.rsplit(": ", 1)[1].split(" ──")[0])
    assert path.parent == tmp_path and path.suffix == ".png"
    assert path.read_bytes() == png
    assert path.stat().st_mode & 0o077 == 0  # private, like every temp file from mkstemp


@pytest.fixture
async def slack() -> AsyncIterator[object]:
    from tests.fixtures.slack_api import SlackStandIn

    standin = await SlackStandIn().start()
    yield standin
    await standin.stop()


async def test_slack_uploads_the_png_into_the_thread(slack) -> None:
    from bot.slack import SlackPoster, web_client

    config = Config()
    config.secrets.slack_bot_token = "xoxb-test"
    poster = SlackPoster(web_client(config, env={"SLACK_API_URL": slack.api_url}))
    png = PNG_SIGNATURE + bytes(range(256))
    chart = ChatReply(text="Mail per hour", file=ReplyFile(FILENAME, "Mail per hour", png))
    ts = await poster.post("C1", ChatReply(text="digest", thread=[chart]))
    (upload,) = slack.of("upload")
    assert upload.params["body"] == png
    (complete,) = slack.of("files.completeUploadExternal")
    assert complete.params["thread_ts"] == ts


def test_cli_start_does_not_import_matplotlib(tmp_path: Path) -> None:
    log = mail_log(tmp_path / "mail.log", 3)
    code = (
        "import sys\nfrom bot.cli import main\n"
        f"main(['mailsummary', {str(log)!r}, '--json'])\n"
        "import bot.dispatch\n"  # the chat commands, chart module included
        "sys.stderr.write(str('matplotlib' in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert done.stderr.endswith("False"), done.stderr


async def test_digest_reply_carries_the_chart(
    config: Config, store: Store, clock: list[datetime]
) -> None:
    from bot.digest import build_digest_reply

    await mailsummary.run(_ctx(config, store, clock), "")
    reply = await build_digest_reply(_ctx(config, store, clock))
    chart = reply.thread[0]
    assert chart.file is not None and chart.file.filename == FILENAME
    assert chart.file.content.startswith(PNG_SIGNATURE)
