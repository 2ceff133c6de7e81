"""`relaywatch relaycheck` through the real CLI entry point, against local aiosmtpd servers."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from bot.cli import main
from bot.store import Store
from handlers.relay import BATTERY
from tests.fixtures.relay_smtp import RelayPolicy, closed_rcpt, threaded_smtp_server


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("RELAYWATCH_"):
            monkeypatch.delenv(name)
    path = tmp_path / "config.toml"
    # DNS goes to a loopback port where nothing answers: no traffic leaves the machine
    path.write_text(
        f'[store]\npath = "{tmp_path / "rw.db"}"\n'
        '[relay]\nnameservers = ["127.0.0.1:9"]\ndns_timeout = 0.2\n'
        "connect_timeout = 1.0\nbanner_timeout = 1.0\ncommand_timeout = 1.0\n"
        "target_budget = 10.0\n"
    )
    return path


def run(config_file: Path, *args: str) -> int:
    return main(["--config", str(config_file), "relaycheck", *args])


def test_list_tests(config_file, capsys):
    assert run(config_file, "--list-tests") == 0
    out = capsys.readouterr().out
    assert f"{len(BATTERY)} tests" in out
    for spec in BATTERY:
        assert spec.name in out
    assert 'MAIL FROM:<sender@[IP]> → RCPT TO:<"user@EXT"@[IP]>' in out
    assert run(config_file, "--list-tests", "--json") == 0
    listed = json.loads(capsys.readouterr().out)["tests"]
    assert len(listed) == len(BATTERY) >= 20
    assert {"name", "kind", "mail_from", "rcpt_to", "description"} <= set(listed[0])


def test_open_relay_json_exit_1_and_recorded(config_file, capsys):
    with threaded_smtp_server(RelayPolicy()) as server:
        code = run(config_file, server.target, "--json")
    assert code == 1
    data = json.loads(capsys.readouterr().out)
    (entry,) = data["targets"]
    assert entry["target"] == server.target and entry["verdict"] == "open"
    assert entry["source_ip"] == "127.0.0.1"
    test = entry["tests"][0]
    assert set(test) >= {"name", "mail_from", "rcpt_to", "accepted", "reply"}
    assert test["accepted"] is True and test["reply"] == "250 2.1.5 Ok"
    assert isinstance(entry["diagnostics"], dict) and entry["warnings"]
    with Store(config_file.parent / "rw.db") as store:
        record = store.latest_check("relay", server.target)
    assert record is not None and record.status == "problem"
    assert record.result == data


def test_closed_server_text_exit_0(config_file, capsys):
    with threaded_smtp_server(RelayPolicy(rcpt=closed_rcpt)) as server:
        code = run(config_file, server.target)
    out = capsys.readouterr().out
    assert code == 0
    # one line and the refused count; the warnings stay, the per-test lines need --details
    assert f"{server.target} (127.0.0.1) — closed (not a relay): 23 of 23 relay attempts" in out
    assert "REFUSED" not in out and "diagnostics:" not in out
    assert "loopback" in out
    with threaded_smtp_server(RelayPolicy(rcpt=closed_rcpt)) as server:
        assert run(config_file, server.target, "--details") == 0
    out = capsys.readouterr().out
    assert "REFUSED" in out and "Relay access denied" in out
    assert "diagnostics:" in out and "banner      220 mx.relaywatch.test" in out


def test_unreachable_exit_3(config_file, capsys):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert run(config_file, f"127.0.0.1:{port}") == 3
    assert "unreachable" in capsys.readouterr().out


def test_only_selected_tests_and_confirm(config_file, capsys):
    policy = RelayPolicy()
    with threaded_smtp_server(policy) as server:
        code = run(
            config_file, server.target, "--json", "--confirm", "--test", "external-to-external"
        )
    assert code == 1
    (entry,) = json.loads(capsys.readouterr().out)["targets"]
    assert [t["name"] for t in entry["tests"]] == ["external-to-external"]
    assert entry["tests"][0]["data_reply"].startswith("354")
    assert policy.messages_completed == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["mx.example.com:99999"], "port must be a number"),
        (["--test", "no-such-test", "127.0.0.1"], "unknown test 'no-such-test'"),
        (["bad host!"], "is not a host name"),
    ],
)
def test_usage_errors_are_one_line_exit_2(config_file, capsys, args, message):
    assert run(config_file, *args) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.err.count("\n") == 1
    assert captured.out == ""


def test_help_has_an_example(capsys):
    with pytest.raises(SystemExit) as info:
        main(["relaycheck", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "relaywatch relaycheck --mx example.com --json" in out
    assert "--confirm" in out and "--list-tests" in out


@pytest.mark.parametrize("behaviour", ["endless_line", "endless_reply", "stall"])
def test_hostile_server_exit_3_with_what_it_did(config_file, capsys, behaviour):
    from tests.fixtures.hostile_smtp import Hostile, threaded_hostile_server

    with threaded_hostile_server(Hostile(after_banner=behaviour)) as target:
        code = run(config_file, target)
    captured = capsys.readouterr()
    assert code == 3
    assert "inconclusive" in captured.out and "Traceback" not in captured.err
    said = "no reply to EHLO" if behaviour == "stall" else "Response too long"
    assert said in captured.out


def test_no_data_and_the_old_confirm_flag(config_file, capsys):
    with threaded_smtp_server(RelayPolicy(data="554 5.7.1 Relaying denied at DATA")) as server:
        by_default = run(config_file, server.target, "--test", "external-to-external")
        default_out = capsys.readouterr().out
        rcpt_only = run(config_file, server.target, "--no-data", "--test", "external-to-external")
        rcpt_out = capsys.readouterr().out
        old_flag = run(config_file, server.target, "--confirm", "--test", "external-to-external")
        capsys.readouterr()
    assert by_default == 1 and "SUSPECT" in default_out  # refused at DATA: not open
    assert old_flag == 1
    assert rcpt_only == 1 and "OPEN RELAY" in rcpt_out and "may overstate" in rcpt_out
