"""`relaywatch digest` through the CLI entry point: text, --json, exit codes, --post checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from bot.store import Store
from tests.fixtures.digest_history import (
    blacklist_data,
    mail_data,
    record,
    record_failed,
    relay_data,
)

IP = "192.0.2.10"
MX = "mx.example.com:25"


@pytest.fixture
def store_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("RELAYWATCH_CONFIG", "SLACK_BOT_TOKEN", "RELAYWATCH_SLACK_DIGEST_CHANNEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    path = tmp_path / "rw.db"
    monkeypatch.setenv("RELAYWATCH_STORE_PATH", str(path))
    with Store(path) as store:  # the real clock: these results are fresh
        store.add_watch("ip", IP)
        store.add_watch("server", MX)
        record(store, "blacklist", IP, blacklist_data(IP))
        record(store, "relay", MX, relay_data(MX, "closed"))
        record(store, "mailsummary", "24h", mail_data())
    return path


def test_green_digest_exits_0(store_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["digest", "--cached"]) == 0
    out = capsys.readouterr().out
    assert "status: GREEN" in out
    assert "192.0.2.10: clean" in out


def test_red_digest_exits_1_and_json_has_the_keys(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Store(store_path) as store:
        record(store, "relay", MX, relay_data(MX, "open"))
    assert main(["digest", "--cached", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "red"
    assert data["servers"][0]["verdict"] == "open"
    assert "mx.example.com:25 is an open relay" in data["reasons"]


def test_check_that_could_not_run_exits_3(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Store(store_path) as store:
        record_failed(store, "blacklist", IP, "no nameserver answered")
    assert main(["digest", "--cached"]) == 3
    out = capsys.readouterr().out
    assert "status: YELLOW" in out
    assert "blacklist 192.0.2.10: no nameserver answered" in out


def test_post_without_slack_settings_is_a_one_line_usage_error(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["digest", "--cached", "--post"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "SLACK_BOT_TOKEN" in err[0]


def test_help_has_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["digest", "--help"])
    out = capsys.readouterr().out
    assert "relaywatch digest --cached --json" in out and "exit codes" in out
