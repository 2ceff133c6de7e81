"""Config precedence (defaults < file < environment), validation errors and secret handling."""

import os
from pathlib import Path

import pytest

from bot.config import ConfigError, effective_config_toml, load_config


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_need_nothing(tmp_path: Path) -> None:
    config = load_config(env={"XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path)})
    assert config.relay.default_target == "localhost:25"
    assert config.logs.paths == ["/var/log/mail.log"]
    assert config.source == "defaults"
    assert config.store_path.name == "relaywatch.db"


def test_file_overrides_defaults_and_env_overrides_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[relay]\ndefault_target = "mx.example.com:25"\nconcurrency = 4\n'
        '[blacklist]\nnameservers = ["127.0.0.1:5353"]\n',
    )
    env = {"RELAYWATCH_CONFIG": str(path), "RELAYWATCH_RELAY_CONCURRENCY": "7"}
    config = load_config(env=env)
    assert config.relay.default_target == "mx.example.com:25"  # from the file
    assert config.relay.concurrency == 7  # env beats file
    assert config.blacklist.nameservers == ["127.0.0.1:5353"]
    assert config.source == str(path)


def test_explicit_path_beats_env_path(tmp_path: Path) -> None:
    first = write(tmp_path, '[relay]\ntest_domain = "a.example"\n', "a.toml")
    second = write(tmp_path, '[relay]\ntest_domain = "b.example"\n', "b.toml")
    config = load_config(str(first), env={"RELAYWATCH_CONFIG": str(second)})
    assert config.relay.test_domain == "a.example"


def test_env_lists_accept_commas_and_toml_arrays() -> None:
    config = load_config(
        env={
            "RELAYWATCH_SLACK_ADMINS": "U1, U2",
            "RELAYWATCH_RELAY_EXTRA_PORTS": "[2526, 10025]",
            "RELAYWATCH_LOGS_JOURNAL": "yes",
            "HOME": "/nonexistent",
        }
    )
    assert config.slack.admins == ["U1", "U2"]
    assert config.relay.extra_ports == [2526, 10025]
    assert config.logs.journal is True


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[relay\n", "not valid TOML"),
        ("bogus = 1\n", "bogus: unknown key"),
        ("[relay]\nbogus = 1\n", "relay.bogus: unknown key"),
        ('[relay]\nconcurrency = "ten"\n', "relay.concurrency: expected a whole number"),
        ('[relay]\ntls = "sometimes"\n', "relay.tls: expected auto, require or off"),
        ('[schedule]\ndigest_time = "25:00"\n', "schedule.digest_time: expected HH:MM"),
        ('[schedule]\ntimezone = "Mars/Olympus"\n', "schedule.timezone: unknown time zone"),
        ("relay = 3\n", "relay: expected a [relay] table"),
        (
            '[domain]\nnameservers = ["dns.example"]\n',
            "domain.nameservers[0]: 'dns.example': expected an IP address",
        ),
        ('[domain]\nselectors = ["a b"]\n', "domain.selectors[0]: 'a b' is not a DKIM selector"),
        ('[domain]\nsending_ips = ["mx"]\n', "domain.sending_ips[0]: 'mx' is not an IP"),
        ('[domain]\nhelo_names = ["x"]\n', "domain.helo_names[0]: 'x' is not a domain"),
        ("[domain]\ntimeout = 0\n", "domain.timeout: must be more than 0"),
        ("[domain]\nmta_sts_max_bytes = 10\n", "domain.mta_sts_max_bytes: must be at least"),
        ('[slack]\nallowed_channels = ["#mail-ops"]\n', "slack.allowed_channels[0]: '#mail-ops'"),
        ('[slack]\nallowed_channels = ["c0ops"]\n', "is not a channel ID"),
        ('[slack]\nadmins = ["alice"]\n', "slack.admins[0]: 'alice' is not a Slack user ID"),
        ('[slack]\nadmin_usergroup = "@admins"\n', "slack.admin_usergroup: '@admins'"),
        ('slack_bot_token = "xoxb-1"\n', "secrets are not read from the config file"),
    ],
)
def test_invalid_file_is_one_line_naming_key(tmp_path: Path, text: str, reason: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), env={})
    assert reason in str(caught.value)
    assert "\n" not in str(caught.value)


def test_unknown_env_setting_is_rejected() -> None:
    with pytest.raises(ConfigError, match="RELAYWATCH_RELAY_NOPE: unknown environment setting"):
        load_config(env={"RELAYWATCH_RELAY_NOPE": "1"})


def test_bad_env_value_names_variable() -> None:
    with pytest.raises(ConfigError, match="RELAYWATCH_BLACKLIST_TIMEOUT: cannot parse"):
        load_config(env={"RELAYWATCH_BLACKLIST_TIMEOUT": "soon"})


def test_secrets_from_env_are_masked_everywhere() -> None:
    token = "xoxb-123456-secret-value"
    config = load_config(env={"SLACK_BOT_TOKEN": token, "HOME": "/nonexistent"})
    assert config.secrets.slack_bot_token == token
    rendered = effective_config_toml(config)
    assert token not in rendered
    assert "SLACK_BOT_TOKEN = <set>" in rendered
    assert "SLACK_APP_TOKEN = <not set>" in rendered
    assert token not in repr(config) and token not in repr(config.secrets)


def test_secrets_file_must_be_owner_only(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.env"
    secrets.write_text("SLACK_SIGNING_SECRET=abc123\nexport SPAMHAUS_DQS_KEY='k3y'\n")
    os.chmod(secrets, 0o644)
    env = {"RELAYWATCH_SECRETS_FILE": str(secrets)}
    with pytest.raises(ConfigError, match="readable by group or others; run chmod 600"):
        load_config(env=env)
    os.chmod(secrets, 0o600)
    config = load_config(env=env)
    assert config.secrets.slack_signing_secret == "abc123"
    assert config.secrets.spamhaus_dqs_key == "k3y"


def test_env_secret_beats_secrets_file(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.env"
    secrets.write_text("SLACK_BOT_TOKEN=from-file\n")
    os.chmod(secrets, 0o600)
    config = load_config(
        env={"RELAYWATCH_SECRETS_FILE": str(secrets), "SLACK_BOT_TOKEN": "from-env"}
    )
    assert config.secrets.slack_bot_token == "from-env"


def test_secrets_file_rejects_unknown_names(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.env"
    secrets.write_text("PASSWORD=hunter2\n")
    os.chmod(secrets, 0o600)
    with pytest.raises(ConfigError, match="line 1") as caught:
        load_config(env={"RELAYWATCH_SECRETS_FILE": str(secrets)})
    assert "hunter2" not in str(caught.value)


def test_state_directory_from_systemd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    config = load_config(env={})
    assert config.store_path == tmp_path / "state" / "relaywatch.db"
