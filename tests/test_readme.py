"""The README's two set-up commands are what CI and users run; it documents every config key."""

import dataclasses
import re
from pathlib import Path

from bot.config import Config

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


def test_every_config_key_is_documented() -> None:
    config = Config()
    missing = []
    for section in dataclasses.fields(config):
        value = getattr(config, section.name)
        if section.name in ("secrets", "source"):
            continue
        if not dataclasses.is_dataclass(value):
            if f"`{section.name}`" not in README:
                missing.append(section.name)
            continue
        for key in dataclasses.fields(value):
            if f"`{section.name}.{key.name}`" not in README:
                missing.append(f"{section.name}.{key.name}")
    assert not missing, f"README's configuration reference lacks: {', '.join(missing)}"
