"""The LAN defaults to what the local Postfix trusts: Debian's real postconf reads a main.cf in a
temp directory (the relay suite's, mynetworks = 203.0.113.0/24), and every report says which
networks were assumed and where they came from."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from bot.cli import main
from handlers.logsummary.lan import discover_internal_networks
from tests.handlers.logsummary.conftest import PostfixLog
from tests.integration.postfix.postfix_instance import MAIN_CF, SERVER_NAME

pytestmark = pytest.mark.skipif(
    shutil.which("postconf") is None,
    reason="Debian's postfix is not installed (postconf missing; .ci/run installs it)",
)


def _postfix_config(root: Path, extra: str = "") -> Path:
    etc = root / "etc"
    etc.mkdir()
    main_cf = MAIN_CF.format(name=SERVER_NAME, interfaces="127.0.0.1", root=root)
    (etc / "main.cf").write_text(main_cf + extra)
    (etc / "master.cf").write_text("")
    return etc


def test_postconf_mynetworks_is_the_default(tmp_path: Path) -> None:
    etc = _postfix_config(tmp_path)
    lan = discover_internal_networks(postfix_config_dir=str(etc))
    assert lan.networks == ("203.0.113.0/24",)
    assert lan.source == "Postfix mynetworks (postconf -h mynetworks)"


def test_postconf_entries_that_are_not_networks_are_named(tmp_path: Path) -> None:
    etc = _postfix_config(
        tmp_path,
        "mynetworks = 127.0.0.0/8 [::1]/128 192.0.2.0/25, hash:/etc/postfix/network_table\n",
    )
    lan = discover_internal_networks(postfix_config_dir=str(etc))
    assert lan.networks == ("127.0.0.0/8", "::1/128", "192.0.2.0/25")
    assert lan.skipped == ("hash:/etc/postfix/network_table",)


def test_configured_networks_win_over_postfix(tmp_path: Path) -> None:
    etc = _postfix_config(tmp_path)
    lan = discover_internal_networks(["10.0.0.0/8"], postfix_config_dir=str(etc))
    assert (lan.networks, lan.source) == (("10.0.0.0/8",), "[logsummary] internal_networks")


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    for name in list(os.environ):
        if name.startswith("RELAYWATCH_"):
            monkeypatch.delenv(name)
    # postconf(1) reads the configuration named by MAIL_CONFIG, as it would /etc/postfix
    monkeypatch.setenv("MAIL_CONFIG", str(_postfix_config(tmp_path)))
    config = tmp_path / "config.toml"
    config.write_text(f'[store]\npath = "{tmp_path / "rw.db"}"\n')  # no internal_networks
    log = PostfixLog()
    for _ in range(60):  # a host of 203.0.113.0/24 (mynetworks) sending straight out
        log.message("203.0.113.5", "printer@our.example", ["a@far.example"])
    return config, log.write(tmp_path / "mail.log")


def test_mailsummary_uses_and_names_the_postfix_lan(cli_env, capsys) -> None:
    config, log = cli_env
    assert main(["--config", str(config), "mailsummary", str(log), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["internal_networks"] == ["203.0.113.0/24"]
    assert data["internal_networks_source"] == "Postfix mynetworks (postconf -h mynetworks)"
    assert [(s["subject"], s["kind"]) for s in data["suspects"]] == [
        ("203.0.113.5", "internal_host_outbound")
    ]
    assert main(["--config", str(config), "mailsummary", str(log)]) == 1
    header = capsys.readouterr().out.splitlines()[1]
    assert header == (
        "Internal networks assumed: 203.0.113.0/24 (from Postfix mynetworks (postconf -h "
        "mynetworks))"
    )


def test_internal_networks_option_overrides(cli_env, capsys) -> None:
    config, log = cli_env
    args = ["--config", str(config), "mailsummary", str(log), "--json"]
    assert main([*args, "--internal-networks", "10.0.0.0/8, 192.168.0.0/16"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["internal_networks"] == ["10.0.0.0/8", "192.168.0.0/16"]
    assert data["internal_networks_source"] == "--internal-networks"
    # outside the LAN now, and unauthenticated: the server relayed for a stranger
    assert [s["kind"] for s in data["suspects"]] == ["open_relay"]


@pytest.mark.parametrize("bad", ["lan", "127.0.0.0/33", ","])
def test_internal_networks_option_rejects_non_networks(cli_env, capsys, bad: str) -> None:
    config, log = cli_env
    assert main(["--config", str(config), "mailsummary", str(log), "--internal-networks", bad]) == 2
    err = capsys.readouterr().err
    assert "--internal-networks:" in err and "is not a network" in err and "\n" == err[-1]
    assert err.count("\n") == 1
