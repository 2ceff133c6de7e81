"""The README's two set-up commands are what CI and users run; its links lead into the docs.

Every config key is documented in the generated reference (tests/test_docs.py), not here."""

import re
import tomllib
from pathlib import Path

from bot.config import load_config

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()


def quick_start_commands() -> list[str]:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def test_exactly_two_setup_commands() -> None:
    commands = quick_start_commands()
    assert len(commands) == 2
    run_bot, run_tests = commands
    assert run_bot.endswith("relaywatch serve")
    assert "pytest" in run_tests


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert quick_start_commands()[1] in ci


def test_the_three_first_settings_are_explained() -> None:
    settings = README.split("## First, three settings", 1)[1].split("\n## ", 1)[0]
    for key in ("blacklist.nameservers", "logsummary.internal_networks", "logs.paths"):
        assert f"`{key}`" in settings
    # the TOML snippet is valid and sets exactly these three
    snippet = re.search(r"```toml\n(.+?)\n```", settings, re.S).group(1)
    data = tomllib.loads(snippet)
    assert sorted((section, key) for section in data for key in data[section]) == [
        ("blacklist", "nameservers"),
        ("logs", "paths"),
        ("logsummary", "internal_networks"),
    ]
    load_config_from_text(snippet)


def test_links_into_the_docs_exist() -> None:
    links = re.findall(r"\]\((docs/[^)#]+)", README)
    assert links
    for link in links:
        assert (ROOT / link).is_file(), link


def test_readme_is_short() -> None:
    assert len(README.splitlines()) <= 170


def load_config_from_text(text: str) -> None:
    """The snippet loads as a config file (one-line ConfigError otherwise)."""
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "config.toml"
        path.write_text(text, encoding="utf-8")
        load_config(str(path), env={})
