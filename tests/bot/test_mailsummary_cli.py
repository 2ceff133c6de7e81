"""`relaywatch mailsummary` through the real CLI entry point, on the shared real Postfix log."""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import types
from pathlib import Path

import pytest

from bot.cli import main
from bot.store import Store
from tests.fixtures.real_log import real_postfix_log

SHARED_LOG = real_postfix_log()
TOTAL_KEYS = {
    "received",
    "delivered",
    "forwarded",
    "deferred",
    "deferrals",
    "bounced",
    "rejected",
    "reject_warnings",
    "held",
    "discarded",
    "bytes_received",
    "bytes_delivered",
    "senders",
    "sending_hosts",
    "recipients",
    "recipient_hosts",
}


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("RELAYWATCH_"):
            monkeypatch.delenv(name)
    path = tmp_path / "config.toml"
    # 127.0.0.0/24 plays the LAN in the shared log (see tests/handlers/logsummary)
    path.write_text(
        f'[store]\npath = "{tmp_path / "rw.db"}"\n'
        f'[logs]\npaths = ["{tmp_path / "logs" / "mail.log"}"]\n'
        '[logsummary]\ninternal_networks = ["127.0.0.0/24"]\n'
    )
    return path


def run(config_file: Path, *args: str) -> int:
    return main(["--config", str(config_file), "mailsummary", *args])


def test_json_document_exit_1_and_recorded(config_file: Path, tmp_path: Path, capsys) -> None:
    assert run(config_file, str(SHARED_LOG), "--json") == 1
    data = json.loads(capsys.readouterr().out)
    assert set(data["totals"]) == TOTAL_KEYS
    assert data["totals"]["received"] == 3805 and data["totals"]["rejected"] == 1046
    assert data["unparsed_lines"] == 0
    top = data["suspects"][:3]
    assert top[0]["kind"] == "open_relay"  # the server relayed for strangers
    assert {s["subject"] for s in top} == {"this server", "127.0.0.66", "mallory@lab.test"}
    assert set(top[0]) >= {"kind", "subject", "score", "reasons", "evidence"}
    assert all(isinstance(line, str) for line in top[0]["evidence"])
    with Store(tmp_path / "rw.db") as store:
        (record,) = store.checks("mailsummary")
    assert record.status == "problem"
    assert record.subject == "all of postfix-mixed.log"
    assert record.result["totals"] == data["totals"]
    assert record.result["inputs"] == "files"


def test_text_report(config_file: Path, capsys) -> None:
    assert run(config_file, str(SHARED_LOG), "--top", "3") == 1
    out = capsys.readouterr().out
    assert "[95] 127.0.0.66 (client)" in out
    # compromises and attackers apart, as in the chat reply; compromises first
    compromises = out.index("Open relay and suspected compromises (")
    attackers = out.index("Attackers: probes and password guessing (")
    assert compromises < out.index("[95] 127.0.0.66") < attackers
    assert attackers < out.index("(client): relay probing")
    assert "(client): relay probing" not in out[compromises:attackers]
    assert "    3805  received" in out and "  86579k  bytes delivered" in out
    assert (
        "     700  info@lab.test" in out and "frank@lab.test" not in out.split("Senders")[1][:400]
    )
    assert "Relay access denied" in out


def test_window_narrows_the_file(config_file: Path, capsys) -> None:
    assert run(
        config_file,
        str(SHARED_LOG),
        "--since",
        "2026-11-28T21:35",
        "--until",
        "2026-11-28T21:36",
        "--json",
    ) in (0, 1)
    data = json.loads(capsys.readouterr().out)
    assert 0 < data["totals"]["received"] < 3805
    assert data["window"]["since"].startswith("2026-11-28T21:35")


def test_usage_errors_exit_2(config_file: Path, tmp_path: Path, capsys) -> None:
    assert run(config_file, str(SHARED_LOG), "--since", "yesterday-ish") == 2
    err = capsys.readouterr().err
    assert "24h" in err and len(err.strip().splitlines()) == 1
    assert run(config_file, str(tmp_path / "missing.log")) == 2
    assert "no such file" in capsys.readouterr().err
    assert run(config_file, "--top", "0") == 2


def test_stdin(config_file: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(
        sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(SHARED_LOG.read_bytes()))
    )
    assert run(config_file, "-", "--json") == 1
    assert json.loads(capsys.readouterr().out)["totals"]["delivered"] == 7125


def test_configured_logs_missing_exit_3(config_file: Path, capsys) -> None:
    assert run(config_file) == 3
    err = capsys.readouterr().err
    assert "no log file at" in err and "journal = true" in err


def test_configured_logs_with_rotation(config_file: Path, tmp_path: Path, capsys) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    lines = SHARED_LOG.read_text(encoding="utf-8").splitlines(keepends=True)
    (logs / "mail.log.1").write_text("".join(lines[:15000]))
    (logs / "mail.log").write_text("".join(lines[15000:]))
    shutil.copystat(SHARED_LOG, logs / "mail.log.1")
    shutil.copystat(SHARED_LOG, logs / "mail.log")
    assert run(config_file, "--since", "2026-11-28T00:00", "--json") == 1
    data = json.loads(capsys.readouterr().out)
    assert data["totals"]["received"] == 3805  # both files, in order: nothing lost at the seam
    assert [Path(s["name"]).name for s in data["sources"]] == ["mail.log.1", "mail.log"]
    assert data["inputs"] == "configured"
