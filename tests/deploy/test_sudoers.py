"""deploy/sudoers.relaywatch allows exactly the postsuper argument lists the queue actions use."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from handlers.queue import QueuedMessage, parse_selection
from handlers.queue.actions import QUEUE_ACTIONS, plan_action

SUDOERS = Path(__file__).resolve().parents[2] / "deploy" / "sudoers.relaywatch"


def _allowed_commands() -> set[tuple[str, ...]]:
    text = re.sub(r"\\\n\s*", "", SUDOERS.read_text(encoding="utf-8"))
    (rule,) = [line for line in text.splitlines() if line.startswith("relaywatch ")]
    _, _, commands = rule.partition("NOPASSWD:")
    return {tuple(command.split()) for command in commands.split(",")}


def test_the_rule_names_exactly_what_the_actions_run() -> None:
    selection = parse_selection("sender", "s@x")
    queue = [QueuedMessage(queue, "ABCDEF1234", 1.0, 1, "s@x") for queue in ("deferred", "hold")]
    used = set()
    for action in QUEUE_ACTIONS:
        (command,) = plan_action(action, selection, queue, {}, "postfix", []).commands
        used.add(("/usr/sbin/" + command.argv[0], *command.argv[1:]))
    assert used == _allowed_commands()
    assert not any("*" in part or "ALL" in part for cmd in used for part in cmd)


@pytest.mark.skipif(not shutil.which("visudo"), reason="sudo is not installed")
def test_visudo_accepts_the_file() -> None:
    done = subprocess.run(
        ["visudo", "-c", "-f", str(SUDOERS)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
