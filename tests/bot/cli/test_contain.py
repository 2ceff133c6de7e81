"""`relaywatch contain` against a real store file: JSON, exit codes, audit under the login name."""

from __future__ import annotations

import getpass
import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

from bot.cli import build_parser
from bot.cli.context import CliContext
from bot.config import load_config
from bot.store import Store


def run(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    config = load_config(env={"RELAYWATCH_STORE_PATH": str(tmp_path / "rw.db")})
    out, err = StringIO(), StringIO()
    parsed = build_parser(list(args)).parse_args(list(args))
    ctx = CliContext(config=config, stdout=out, stderr=err)
    try:
        code = parsed.run(parsed, ctx)
    finally:
        ctx.close()
    return int(code), out.getvalue(), err.getvalue()


def test_block_list_release_with_json_and_audit(tmp_path: Path) -> None:
    code, out, _ = run(
        tmp_path, "contain", "block", "account", "carol@example.com", "2h", "hacked", "--json"
    )
    assert code == 0
    done = json.loads(out)
    assert done["done"] == "contained"
    entry = done["entry"]
    assert (entry["subject_kind"], entry["subject"], entry["action"]) == (
        "account",
        "carol@example.com",
        "block",
    )
    assert entry["set_by"] == getpass.getuser() and entry["reason"] == "hacked"
    assert "sendmail/pickup" in done["not_done"]

    code, out, _ = run(tmp_path, "contain", "list", "--json")
    assert code == 0
    assert [e["subject"] for e in json.loads(out)["entries"]] == ["carol@example.com"]

    code, out, _ = run(tmp_path, "contain", "release", "account", "carol@example.com")
    assert code == 0 and "Released account carol@example.com" in out
    code, out, _ = run(tmp_path, "contain", "list", "--all", "--json")
    (entry,) = json.loads(out)["entries"]
    assert entry["released_by"] == getpass.getuser()

    with Store(tmp_path / "rw.db") as store:
        audit = [(e.user_id, e.command, e.channel_id) for e in store.audit_log()]
    assert audit[0] == (getpass.getuser(), "contain", "cli")
    assert len(audit) == 4


def test_text_output_says_what_and_until_when(tmp_path: Path) -> None:
    code, out, err = run(tmp_path, "contain", "throttle", "account", "bob@example.com", "20/h")
    assert code == 0
    assert "Throttled account bob@example.com until" in out
    assert "DEFER 4.7.1" in out and "password" in out
    assert "[policy] listen is not set" in err


def test_exit_codes_for_usage_errors_and_nothing_to_release(tmp_path: Path) -> None:
    code, out, err = run(tmp_path, "contain", "block", "host", "10.0.0.0/8")
    assert code == 2 and out == "" and "too wide" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = run(tmp_path, "contain", "throttle", "account", "bob@example.com")
    assert code == 2 and "needs a rate" in err
    code, out, _ = run(tmp_path, "contain", "release", "host", "192.0.2.1")
    assert code == 2 and "Nothing to release" in out
    code, out, _ = run(tmp_path, "contain", "list")
    assert code == 0 and "Nothing is contained" in out


def test_help_has_examples() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "contain", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert "relaywatch contain block account carol@example.com 24h" in result.stdout
    assert "exit codes" in result.stdout
