"""Real failures end in one line and exit 3 ("could not complete"), never a traceback or exit 1.

The failures are provoked for real — a store path that is a directory, output to a full device,
a store that goes away under a running shell session — not by patching our code.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from bot.config import Config
from bot.dispatch import Dispatcher
from bot.exitcodes import ExitCode
from bot.shell import ShellAdapter, ShellPoster
from bot.store import Store

ROOT = Path(__file__).parents[3]


def relaywatch(
    home: Path, *args: str, stdout: int | None = subprocess.PIPE
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAYWATCH_", "SLACK_"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "cfg"), XDG_STATE_HOME=str(home / "st"))
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=ROOT,
        env=env,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
    )


def test_a_store_path_that_is_a_directory_is_one_line_exit_3(tmp_path: Path) -> None:
    store = tmp_path / "store-dir"
    store.mkdir()
    result = relaywatch(tmp_path, "--store", str(store), "watch", "list")
    assert result.returncode == ExitCode.INCOMPLETE, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert str(store) in result.stderr and "--store" in result.stderr


def test_output_to_a_full_device_is_one_line_with_an_error_id(tmp_path: Path) -> None:
    if not os.path.exists("/dev/full"):
        return
    with open("/dev/full", "w") as full:
        result = relaywatch(
            tmp_path, "--store", str(tmp_path / "rw.db"), "config", "check", stdout=full.fileno()
        )
    assert result.returncode == ExitCode.INCOMPLETE, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "could not complete" in lines[0] and "error id" in lines[0]
    assert "-vv" in lines[0]


def test_with_vv_the_traceback_is_shown(tmp_path: Path) -> None:
    if not os.path.exists("/dev/full"):
        return
    with open("/dev/full", "w") as full:
        result = relaywatch(
            tmp_path,
            "-vv",
            "--store",
            str(tmp_path / "rw.db"),
            "config",
            "check",
            stdout=full.fileno(),
        )
    assert result.returncode == ExitCode.INCOMPLETE
    assert "Traceback" in result.stderr and "could not complete" in result.stderr


async def test_a_shell_session_survives_a_store_that_went_away(tmp_path: Path) -> None:
    store = Store(tmp_path / "rw.db")
    out = io.StringIO()
    adapter = ShellAdapter(
        Dispatcher(Config(), store),
        ShellPoster(out),
        stdin=io.StringIO(
            "/nosuch\ndetails 1\nack 99999999999999999999999\n/mailhealth watch list\n"
        ),
        stderr=io.StringIO(),
        user="alice",
    )
    store.close()  # every store call from here on fails for real
    assert await adapter.run() == ExitCode.INCOMPLETE
    text = out.getvalue()
    # every line was read and answered: the session did not end at the first failure
    assert text.count("could not complete") + text.count("failed unexpectedly") == 4
    assert "> /mailhealth watch list" in text
    assert "Traceback" not in text


async def test_a_typo_does_not_end_an_interactive_style_session(tmp_path: Path) -> None:
    with Store(tmp_path / "rw.db") as store:
        out = io.StringIO()
        adapter = ShellAdapter(
            Dispatcher(Config(), store),
            ShellPoster(out),
            stdin=io.StringIO("/mailhelth\n/mailhealth watch lst\n/mailhealth watch list\n"),
            stderr=io.StringIO(),
            user="alice",
        )
        assert await adapter.run() == ExitCode.USAGE
        assert "watch list is empty" in out.getvalue()


def test_short_output_to_a_full_device_is_exit_3_too(tmp_path: Path) -> None:
    if not os.path.exists("/dev/full"):
        return
    with open("/dev/full", "w") as full:
        result = relaywatch(
            tmp_path, "--store", str(tmp_path / "rw.db"), "watch", "list", stdout=full.fileno()
        )
    assert result.returncode == ExitCode.INCOMPLETE, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
