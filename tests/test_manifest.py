"""manifest.yml installs as-is and is what `relaywatch manifest` makes; every usage hint parses.

The slash commands' usage hints come from the commands' own HINT (the same line `/x help`, usage
errors and `/mailhealth help` show), so each hint is expanded into concrete command lines here and
fed to that command's own parser: a hint that shows a form the command refuses fails the test.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.commands import chat_commands
from bot.config import Config
from bot.dispatch import Dispatcher, Invocation
from bot.manifest import ManifestError, build_manifest, events_url
from bot.render.reply import escape
from bot.store import Store

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "manifest.yml"
NOW = datetime(2026, 11, 28, 22, 0, tzinfo=UTC)

# a value for each <placeholder> a hint may use
EXAMPLES = {
    "<host[:port]>": "mx.example.com:25",
    "<ip>": "192.0.2.1",
    "<cidr>": "192.0.2.0/24",
    "<domain>": "example.com",
    "<host>": "mail.example.com",
    "<window>": "7d",
    "<when>": "2026-11-27T00:00",  # its second use in a hint: a day later (see _example)
    "<value>": "example.com",
    "<account>": "carol@example.com",
    "<address>": "carol@example.com",
    "<duration>": "24h",
    "<reason>": "compromised",
    "<rate>": "20/h",
    "<selector>": "s2024",
}


@pytest.fixture(scope="module")
def manifest() -> dict:
    return yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))


def test_committed_manifest_is_the_generated_one() -> None:
    assert MANIFEST.read_text(encoding="utf-8") == build_manifest(Config()), (
        "manifest.yml differs from `relaywatch manifest`: run `python -m bot.docs_gen`"
    )


def test_every_slash_command_with_descriptions_and_hints(manifest: dict) -> None:
    commands = {c["command"]: c for c in manifest["features"]["slash_commands"]}
    assert set(commands) == {f"/{name}" for name in chat_commands()}
    modules = chat_commands()
    for name, command in commands.items():
        assert 0 < len(command["description"]) <= 2000
        # one source: the hint is the command's own, and its usage line is built from it
        module = modules[name.lstrip("/")]
        assert command["usage_hint"] == module.HINT
        assert module.USAGE == f"{name} {module.HINT}"
        # slash command text reaches the bot verbatim (no <http://...> links to unwrap)
        assert command["should_escape"] is False
        assert "url" not in command
    # every chat command this build has is reachable from Slack
    assert {f"/{name}" for name in modules} <= set(commands)


def test_scopes_events_and_modes(manifest: dict) -> None:
    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == [
        "app_mentions:read",
        "chat:write",
        "commands",
        "files:write",
    ]
    settings = manifest["settings"]
    assert settings["event_subscriptions"]["bot_events"] == ["app_mention"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["socket_mode_enabled"] is True
    info = manifest["display_information"]
    assert len(info["description"]) <= 140
    assert 175 <= len(info["long_description"]) <= 4000
    assert manifest["features"]["bot_user"]["display_name"] == "relaywatch"


def test_usergroups_read_only_when_an_admin_usergroup_is_set() -> None:
    config = Config()
    config.slack.admin_usergroup = "S0123ABCD"
    scopes = yaml.safe_load(build_manifest(config))["oauth_config"]["scopes"]["bot"]
    assert "usergroups:read" in scopes


def test_http_variant_fills_in_every_request_url() -> None:
    generated = yaml.safe_load(build_manifest(Config(), "https://bot.example.com/"))
    url = "https://bot.example.com/slack/events"
    urls = [c["url"] for c in generated["features"]["slash_commands"]]
    urls.append(generated["settings"]["interactivity"]["request_url"])
    urls.append(generated["settings"]["event_subscriptions"]["request_url"])
    assert urls == [url] * (len(chat_commands()) + 2)
    assert generated["settings"]["socket_mode_enabled"] is False


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("https://bot.example.com", "https://bot.example.com/slack/events"),
        (
            "https://example.com:8443/relaywatch/",
            "https://example.com:8443/relaywatch/slack/events",
        ),
        ("https://bot.example.com/slack/events", "https://bot.example.com/slack/events"),
    ],
)
def test_events_url(base: str, url: str) -> None:
    assert events_url(base) == url


@pytest.mark.parametrize(
    "base", ["http://bot.example.com", "bot.example.com", "https://", "https://h/?a=1"]
)
def test_events_url_refuses_what_slack_cannot_use(base: str) -> None:
    with pytest.raises(ManifestError):
        events_url(base)


def test_cli_prints_the_http_manifest_and_refuses_plain_http(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "RELAYWATCH_SLACK_ADMIN_USERGROUP": "S1"}
    run = [sys.executable, "-m", "bot.cli", "manifest"]
    done = subprocess.run(
        [*run, "--http", "https://bot.example.com"],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    generated = yaml.safe_load(done.stdout)
    assert "usergroups:read" in generated["oauth_config"]["scopes"]["bot"]
    assert generated["settings"]["interactivity"]["request_url"].endswith("/slack/events")
    refused = subprocess.run(
        [*run, "--http", "http://bot.example.com"],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert refused.returncode == 2 and refused.stdout == ""
    assert len(refused.stderr.strip().splitlines()) == 1


# -- the hints parse ------------------------------------------------------------------------


def expand(hint: str) -> list[str]:
    """Every command line a hint describes: optional parts left out or put in, each alternative."""
    tokens = re.findall(r"<[^>]+>|\[|\]|\||[^\s\[\]|<]+(?:\|[^\s\[\]|]+)*", hint)
    seen: dict[str, int] = {}
    tokens = [_example(token, seen) for token in tokens]
    forms, rest = _sequence(tokens)
    assert not rest, f"unbalanced hint {hint!r}"
    return sorted({" ".join(words) for words in forms})


def _sequence(tokens: list[str]) -> tuple[list[list[str]], list[str]]:
    """Alternatives separated by | until a closing ]; each alternative a list of word choices."""
    alternatives: list[list[str]] = []
    current: list[list[list[str]]] = []
    while tokens:
        token = tokens.pop(0)
        if token == "]":
            tokens.insert(0, token)
            break
        if token == "|":
            alternatives.extend(_product(current))
            current = []
        elif token == "[":
            inner, tokens = _sequence(tokens)
            assert tokens and tokens.pop(0) == "]"
            current.append([[], *inner])
        elif token == "...":
            current.append([[], current[-1][-1]])  # once more, or not
        else:
            current.append([[word] for word in _alternatives(token)])
    alternatives.extend(_product(current))
    return alternatives, tokens


def _example(token: str, seen: dict[str, int]) -> str:
    """A placeholder's example value; a later use of the same placeholder is a day later."""
    if not token.startswith("<"):
        return token
    assert token in EXAMPLES, f"no example for {token} in the hint grammar test"
    seen[token] = seen.get(token, 0) + 1
    value = EXAMPLES[token]
    return value.replace("-27T", "-28T") if seen[token] > 1 else value


def _alternatives(token: str) -> list[str]:
    return [token] if "|" not in token else token.split("|")


def _product(parts: list[list[list[str]]]) -> list[list[str]]:
    return [[word for choice in combo for word in choice] for combo in itertools.product(*parts)]


def test_expand_reads_the_hint_grammar() -> None:
    assert expand("[<ip> ... | --mx <domain>] [--tls auto|off]") == sorted(
        {
            "",
            "192.0.2.1",
            "192.0.2.1 192.0.2.1",
            "--mx example.com",
            "--tls auto",
            "--tls off",
            "192.0.2.1 --tls auto",
            "192.0.2.1 --tls off",
            "192.0.2.1 192.0.2.1 --tls auto",
            "192.0.2.1 192.0.2.1 --tls off",
            "--mx example.com --tls auto",
            "--mx example.com --tls off",
        }
    )


def _parse(name: str, text: str) -> object:
    module = chat_commands()[name]
    if name == "mailsummary":
        return module.parse_args(text, NOW)
    return module.parse_args(text)


@pytest.mark.parametrize("name", sorted(chat_commands()))
def test_every_form_a_hint_shows_parses(name: str) -> None:
    forms = expand(chat_commands()[name].HINT)
    assert len(forms) >= 2
    for text in forms:
        _parse(name, text)  # raises CommandUsageError for a form the command refuses


def test_mailsummary_accepts_the_window_and_the_option_forms() -> None:
    assert _parse("mailsummary", "24h") == ("24h", None)
    assert _parse("mailsummary", "--since 24h") == ("24h", None)
    assert _parse("mailsummary", "--since 2026-11-27 --until 2026-11-28") == (
        "2026-11-27",
        "2026-11-28",
    )


async def test_help_shows_the_same_usage_line(tmp_path: Path) -> None:
    with Store(tmp_path / "rw.db") as store:
        dispatcher = Dispatcher(Config(), store)

        async def progress(text: str) -> None:
            return None

        for name, module in chat_commands().items():
            result = await dispatcher.handle(
                Invocation(name, "help", "U1", "shell", source="shell"), progress
            )
            shown = json.dumps([block.to_dict() for block in result.reply.blocks])
            assert json.dumps(escape(module.USAGE))[1:-1] in shown
            assert result.reply.ephemeral
