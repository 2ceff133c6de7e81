"""manifest.yml installs as-is: every chat command has a slash command, only needed scopes."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.commands import chat_commands

yaml = pytest.importorskip("yaml")

MANIFEST = Path(__file__).resolve().parent.parent / "manifest.yml"


@pytest.fixture(scope="module")
def manifest() -> dict:
    return yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))


def test_the_five_slash_commands_with_descriptions_and_hints(manifest: dict) -> None:
    commands = {c["command"]: c for c in manifest["features"]["slash_commands"]}
    assert set(commands) == {
        "/relaycheck",
        "/blacklist",
        "/mailsummary",
        "/domaincheck",
        "/mailhealth",
    }
    for command in commands.values():
        assert 0 < len(command["description"]) <= 2000
        assert command["usage_hint"]
        # slash command text reaches the bot verbatim (no <http://...> links to unwrap)
        assert command["should_escape"] is False
    # every chat command this build has is reachable from Slack
    assert {f"/{name}" for name in chat_commands()} <= set(commands)


def test_scopes_events_and_modes(manifest: dict) -> None:
    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == [
        "app_mentions:read",
        "chat:write",
        "commands",
        "files:write",
        "usergroups:read",
    ]
    settings = manifest["settings"]
    assert settings["event_subscriptions"]["bot_events"] == ["app_mention"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["socket_mode_enabled"] is True
    info = manifest["display_information"]
    assert len(info["description"]) <= 140
    assert 175 <= len(info["long_description"]) <= 4000
    assert manifest["features"]["bot_user"]["display_name"] == "relaywatch"
