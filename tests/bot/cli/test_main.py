"""The relaywatch command frame, driven through its real console entry point."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[3]


def relaywatch(
    *args: str, env: dict[str, str] | None = None, home: Path
) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RELAYWATCH_", "SLACK_"))}
    base.update(
        {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / "cfg"),
            "XDG_STATE_HOME": str(home / "state"),
        }
    )
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_help_lists_every_subcommand(tmp_path: Path) -> None:
    result = relaywatch("--help", home=tmp_path)
    assert result.returncode == 0
    for name in ("config", "watch"):
        assert name in result.stdout
    assert "exit codes" in result.stdout


def test_config_check_with_no_config_at_all(tmp_path: Path) -> None:
    result = relaywatch("config", "check", home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert 'default_target = "localhost:25"' in result.stdout


@pytest.mark.parametrize(
    ("text", "expected"),
    [("[relay\n", "not valid TOML"), ("[relay]\nnope = 1\n", "relay.nope: unknown key")],
)
def test_config_check_fails_cleanly(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = relaywatch("--config", str(path), "config", "check", home=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert expected in result.stderr


def test_config_check_masks_secrets(tmp_path: Path) -> None:
    result = relaywatch(
        "config", "check", home=tmp_path, env={"SLACK_SIGNING_SECRET": "s3cr3t-signing"}
    )
    assert result.returncode == 0
    assert "s3cr3t-signing" not in result.stdout + result.stderr
    assert "SLACK_SIGNING_SECRET = <set>" in result.stdout


def test_usage_error_is_one_line_exit_2(tmp_path: Path) -> None:
    result = relaywatch("watch", "frobnicate", home=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "--help" in result.stderr


def test_closed_stdout_pipe_is_not_a_traceback(tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RELAYWATCH_", "SLACK_"))}
    base["HOME"] = str(tmp_path)
    reader = subprocess.Popen(
        f"{sys.executable} -m bot.cli relaycheck --list-tests | head -c 1",
        shell=True,
        cwd=ROOT,
        env=base,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, err = reader.communicate(timeout=60)
    assert "Traceback" not in err and "BrokenPipeError" not in err


def test_every_subcommand_has_help_with_an_example(tmp_path: Path) -> None:
    listing = relaywatch("--help", home=tmp_path).stdout
    for name in ("relaycheck", "blacklist", "mailsummary", "digest", "serve", "watch", "config"):
        assert name in listing
        result = relaywatch(name, "--help", home=tmp_path)
        assert result.returncode == 0
        assert "example" in result.stdout.lower(), name


def test_usage_errors_show_typed_escape_sequences_visibly(tmp_path: Path) -> None:
    result = relaywatch("relaycheck", "--\x1b[31mred", "\x07", home=tmp_path)
    assert result.returncode == 2
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert "\\x1b[31mred" in result.stderr
