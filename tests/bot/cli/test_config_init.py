"""`relaywatch config init`: a commented file with every key, an owner-only secrets file, and no
overwriting."""

from __future__ import annotations

import dataclasses
import re
import stat
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import Config, load_config


def _init(*args: str) -> int:
    return main(["config", "init", *args])


def _all_keys(config: Config) -> set[str]:
    keys = set()
    for section in dataclasses.fields(config):
        value = getattr(config, section.name)
        if dataclasses.is_dataclass(value) and section.name != "secrets":
            keys |= {f"{section.name}.{f.name}" for f in dataclasses.fields(value)}
    return keys


def test_writes_every_key_commented_and_a_0600_secrets_file(tmp_path: Path) -> None:
    target = tmp_path / "etc" / "config.toml"
    assert _init(str(target)) == 0
    secrets = tmp_path / "etc" / "secrets.env"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    text = target.read_text(encoding="utf-8")
    section = ""
    written = set()
    for line in text.splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif match := re.match(r"#(\w+) = ", line):
            written.add(f"{section}.{match.group(1)}")
    assert written == _all_keys(Config())
    # as written (only secrets_file active) it loads, and the defaults are in force
    loaded = load_config(str(target), env={})
    assert loaded.secrets_file == str(secrets.resolve())
    assert dataclasses.replace(loaded, secrets_file="", source="defaults") == Config()


def test_every_commented_value_is_valid_and_is_the_default(tmp_path: Path) -> None:
    target = tmp_path / "config.toml"
    assert _init(str(target), "--secrets", str(tmp_path / "s.env")) == 0
    uncommented = re.sub(r"(?m)^#(\w+ = )", r"\1", target.read_text(encoding="utf-8"))
    target.write_text(uncommented, encoding="utf-8")
    loaded = load_config(str(target), env={})
    assert dataclasses.replace(loaded, secrets_file="", source="defaults") == Config()


def test_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "config.toml"
    target.write_text("# mine\n", encoding="utf-8")
    assert _init(str(target)) == 2
    assert target.read_text(encoding="utf-8") == "# mine\n"
    assert not (tmp_path / "secrets.env").exists()
    assert "not overwriting" in capsys.readouterr().err


def test_keeps_an_existing_secrets_file(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.env"
    secrets.write_text("SLACK_BOT_TOKEN=xoxb-1\n", encoding="utf-8")
    secrets.chmod(0o600)
    assert _init(str(tmp_path / "config.toml")) == 0
    assert secrets.read_text(encoding="utf-8") == "SLACK_BOT_TOKEN=xoxb-1\n"
    assert load_config(str(tmp_path / "config.toml"), env={}).secrets.slack_bot_token == "xoxb-1"


def test_a_random_looking_path_is_written_as_it_is(tmp_path: Path) -> None:
    # mkdtemp-style names (relaywatch-deploy-k3J9xq2Z) look random: still the admin's own path
    where = tmp_path / "relaywatch-deploy-k3J9xq2Z7Lp0aQ4m" / "config.toml"
    assert _init(str(where)) == 0
    assert f'secrets_file = "{where.with_name("secrets.env").resolve()}"' in where.read_text()
    assert load_config(str(where), env={}).secrets_file == str(where.with_name("secrets.env"))
