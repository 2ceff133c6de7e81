"""[policy] keys the containment commands read are validated at load, one line naming the key."""

from pathlib import Path

import pytest

from bot.config import ConfigError, load_config


def load(tmp_path: Path, text: str):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return load_config(env={"RELAYWATCH_CONFIG": str(path)})


def test_defaults_load(tmp_path: Path) -> None:
    config = load(tmp_path, "")
    assert (config.policy.default_expiry, config.policy.max_expiry) == ("24h", "7d")
    assert config.policy.auto_action == {}


def test_auto_action_for_a_known_rule(tmp_path: Path) -> None:
    config = load(tmp_path, '[policy]\nauto_action = { account_messages_per_minute = "hold" }\n')
    assert config.policy.auto_action == {"account_messages_per_minute": "hold"}


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('default_expiry = "soon"', "policy.default_expiry"),
        ('max_expiry = "12"', "policy.max_expiry"),
        ('remind_before = "10s"', "policy.remind_before"),
        ('default_expiry = "8d"', "policy.default_expiry"),
        ('throttle_rate = "fast"', "policy.throttle_rate"),
        ('auto_action = { account_messages_per_minute = "nuke" }', "policy.auto_action"),
        ('auto_action = { no_such_rule = "hold" }', "policy.auto_action"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, f"[policy]\n{text}\n")
    assert str(caught.value).startswith(key) and "\n" not in str(caught.value)
