"""store.url: a PostgreSQL URL validated at load; its password only from the environment or the
owner-only secrets file, joined to the URL for the connection and never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, load_config


def _config_file(tmp_path: Path, body: str) -> str:
    path = tmp_path / "config.toml"
    path.write_text(body)
    return str(path)


def test_sqlite_is_the_default(tmp_path: Path) -> None:
    config = load_config(_config_file(tmp_path, f'[store]\npath = "{tmp_path}/rw.db"\n'), env={})
    assert config.store_location == f"{tmp_path}/rw.db"


def test_password_from_the_environment_joins_the_url(tmp_path: Path) -> None:
    path = _config_file(tmp_path, '[store]\nurl = "postgresql://relaywatch@db.lab.test/rw"\n')
    config = load_config(path, env={"RELAYWATCH_STORE_PASSWORD": "p@ss/word"})
    assert config.store_location == "postgresql://relaywatch:p%40ss%2Fword@db.lab.test/rw"
    assert config.store_display == "postgresql://relaywatch@db.lab.test/rw"
    assert "p@ss" not in repr(config.secrets)


def test_password_from_the_secrets_file(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.env"
    secrets.write_text("RELAYWATCH_STORE_PASSWORD=s3cret\n")
    secrets.chmod(0o600)
    path = _config_file(
        tmp_path,
        f'secrets_file = "{secrets}"\n[store]\nurl = "postgresql://rw@127.0.0.1:5433/rw"\n',
    )
    config = load_config(path, env={})
    assert config.store_location == "postgresql://rw:s3cret@127.0.0.1:5433/rw"


def test_url_from_the_environment(tmp_path: Path) -> None:
    config = load_config(None, env={"RELAYWATCH_STORE_URL": "postgres://rw@db/rw"})
    assert config.store_location == "postgres://rw@db/rw"  # no password: libpq's own ways apply


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://rw@db/rw", "store.url: expected postgresql://"),
        ("postgresql:///rw", "store.url: expected postgresql://"),
        ("postgresql://rw:secret@db/rw", "store.url: the password does not belong in the URL"),
    ],
)
def test_bad_urls_are_one_line_errors(tmp_path: Path, url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(_config_file(tmp_path, f'[store]\nurl = "{url}"\n'), env={})
    assert "\n" not in str(caught.value) and ":secret@" not in str(caught.value)
