"""A secret pasted into a non-secret key is never echoed by the error about that key."""

from __future__ import annotations

import random
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config import ConfigError, load_config
from bot.secretlike import SECRET_ADVICE, looks_like_secret


def _realistic_tokens(count: int) -> list[str]:
    """Tokens shaped like the real ones, from a fixed seed so every run sees the same."""
    rnd = random.Random(16)
    alnum = string.ascii_letters + string.digits

    def pick(alphabet: str, n: int) -> str:
        return "".join(rnd.choice(alphabet) for _ in range(n))

    tokens = []
    for i in range(count):
        prefix = ("xoxb", "xoxp", "xoxa", "xoxr", "xoxs")[i % 5]
        tokens.append(
            f"{prefix}-{pick(string.digits, 12)}-{pick(string.digits, 13)}-{pick(alnum, 24)}"
        )
        tokens.append(
            f"xapp-1-A{pick(string.digits, 10)}-{pick(string.digits, 13)}-"
            + pick("0123456789abcdef", 64)
        )
        tokens.append(pick(string.ascii_lowercase + string.digits, 25) + "7")  # Spamhaus DQS key
        tokens.append(pick("0123456789abcdef", 32))  # Slack signing secret
        tokens.append(pick(alnum + "-_", 40))  # any long random string
    return tokens


TOKENS = st.sampled_from(_realistic_tokens(20))


@settings(max_examples=60, deadline=None)
@given(
    TOKENS,
    st.sampled_from(
        [
            "relay.tls",
            "relay.connect_timeout",
            "relay.concurrency",
            "schedule.digest_time",
            "logs.journal",
        ]
    ),
)
def test_a_pasted_token_is_not_echoed(token: str, key: str) -> None:
    # each key gets the token where a value of another kind belongs, so loading must fail
    section, name = key.split(".")
    env = {f"RELAYWATCH_{section.upper()}_{name.upper()}": token, "HOME": "/nonexistent"}
    with pytest.raises(ConfigError) as caught:
        load_config(env=env)
    message = str(caught.value)
    assert token not in message
    assert SECRET_ADVICE in message


def test_a_token_in_the_config_file_is_not_echoed(tmp_path: Path) -> None:
    token = "xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
    path = tmp_path / "config.toml"
    path.write_text(f'[relay]\ntls = "{token}"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), env={"HOME": str(tmp_path)})
    assert token not in str(caught.value) and "relay.tls" in str(caught.value)
    assert SECRET_ADVICE in str(caught.value)


@pytest.mark.parametrize(
    "text",
    [
        "relay.tls: expected auto, require or off, got 'maybe'",
        "/etc/relaywatch/config.toml",
        "postfix@-.service",
        "mx.example.com:25",
        "2026-11-27T00:00:00+00:00",
        "relaywatch-test",
    ],
)
def test_ordinary_values_are_not_taken_for_secrets(text: str) -> None:
    assert not looks_like_secret(text)


def test_config_check_does_not_print_a_pasted_token(tmp_path: Path) -> None:
    from bot.config import effective_config_toml

    token = _realistic_tokens(1)[0]
    config = load_config(env={"HOME": str(tmp_path), "RELAYWATCH_RELAY_HELO_NAME": token})
    text = effective_config_toml(config)
    assert token not in text and SECRET_ADVICE in text
