"""Store faults through the real CLI: one line saying what is wrong and what to do, exit 3.

A damaged page, a foreign SQLite file with a plausible user_version, a path that cannot be
created, a lock another process holds, a full disk (a tiny tmpfs; skipped when it cannot be
mounted). When only the recording fails, the check's result is still printed.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.exitcodes import ExitCode
from bot.store import Store, StoreError

ROOT = Path(__file__).parents[2]

LOG = """\
Nov 28 10:00:01 mx postfix/smtpd[123]: connect from unknown[198.51.100.7]
Nov 28 10:00:02 mx postfix/smtpd[123]: 4AB12C0001: client=unknown[198.51.100.7]
Nov 28 10:00:03 mx postfix/cleanup[124]: 4AB12C0001: message-id=<a@example.org>
Nov 28 10:00:03 mx postfix/qmgr[125]: 4AB12C0001: from=<alice@example.org>, size=1234, nrcpt=1 \
(queue active)
Nov 28 10:00:04 mx postfix/smtp[126]: 4AB12C0001: to=<bob@example.net>, \
relay=mx.example.net[203.0.113.5]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=2.0.0, status=sent (250 ok)
Nov 28 10:00:04 mx postfix/qmgr[125]: 4AB12C0001: removed
Nov 28 10:00:05 mx postfix/smtpd[123]: disconnect from unknown[198.51.100.7]
"""


def relaywatch(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """The CLI; `--store PATH` among the args is passed as RELAYWATCH_STORE_PATH instead, so the
    faults are exercised through the environment as well as the option (tests/bot/cli)."""
    if "--store" in args:
        at = args.index("--store")
        env = {"RELAYWATCH_STORE_PATH": args[at + 1], **env}
        args = args[:at] + args[at + 2 :]
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RELAYWATCH_", "SLACK_"))}
    base.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "cfg"), XDG_STATE_HOME=str(home / "st"))
    base.update(env)
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_one_line_exit_3(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == ExitCode.INCOMPLETE, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_a_damaged_page(tmp_path: Path) -> None:
    path = tmp_path / "rw.db"
    with Store(path) as store:
        for n in range(200):
            store.add_watch("ip", f"192.0.2.{n}")
    size = path.stat().st_size
    with open(path, "r+b") as raw:  # keep the header, scribble over the pages after the first
        raw.seek(4096)
        raw.write(b"\xa5" * (size - 4096))
    result = relaywatch(tmp_path, "--store", str(path), "watch", "list")
    assert_one_line_exit_3(result, str(path), "restore it from a backup", "move it aside")


def test_a_damaged_header(tmp_path: Path) -> None:
    path = tmp_path / "rw.db"
    path.write_bytes(b"this is not SQLite at all\n" * 400)
    path.chmod(0o600)
    result = relaywatch(tmp_path, "--store", str(path), "watch", "list")
    assert_one_line_exit_3(result, str(path), "restore it from a backup")


def test_a_foreign_database_with_a_plausible_user_version(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.executescript("CREATE TABLE users (id INTEGER, name TEXT); PRAGMA user_version = 2;")
    db.close()
    path.chmod(0o600)
    before = path.read_bytes()
    result = relaywatch(tmp_path, "--store", str(path), "watch", "add", "192.0.2.1")
    assert_one_line_exit_3(result, "not a relaywatch store", "users", "--store")
    assert path.read_bytes() == before  # refused before writing anything


def test_a_foreign_database_without_a_user_version_is_not_migrated(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.executescript("CREATE TABLE watch (x TEXT);")
    db.close()
    with pytest.raises(StoreError, match="not a relaywatch store") as caught:
        Store(path)
    assert caught.value.kind == "foreign"


def test_a_lock_is_a_kind_callers_can_retry_on(tmp_path: Path) -> None:
    path = tmp_path / "rw.db"
    with Store(path) as holder, Store(path, busy_timeout=0.05) as waiter:
        with holder.transaction():
            with pytest.raises(StoreError, match="locked") as caught:
                waiter.add_watch("ip", "192.0.2.1")
        assert caught.value.kind == "locked"
        assert waiter.add_watch("ip", "192.0.2.1")  # usable again once the lock is gone


def test_a_path_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    path = blocker / "state" / "rw.db"
    result = relaywatch(tmp_path, "--store", str(path), "watch", "list")
    assert_one_line_exit_3(result, str(path), "cannot create", "--store")


def test_a_lock_held_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "rw.db"
    Store(path).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys; db = sqlite3.connect(sys.argv[1], isolation_level=None); "
            "db.execute('BEGIN IMMEDIATE'); print('locked', flush=True); sys.stdin.read()",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        result = relaywatch(
            tmp_path,
            "--store",
            str(path),
            "watch",
            "add",
            "192.0.2.1",
            RELAYWATCH_STORE_BUSY_TIMEOUT="0.3",
        )
    finally:
        holder.communicate("", timeout=10)
    assert_one_line_exit_3(result, "locked", "0.3 s", "try again")


@contextlib.contextmanager
def tiny_tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root?) to simulate a full disk")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(directory: Path) -> None:
    with contextlib.suppress(OSError), open(directory / "filler", "wb") as filler:
        while True:
            filler.write(b"\0" * 4096)
            filler.flush()


def test_a_full_disk_still_prints_the_result(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text(LOG)
    with tiny_tmpfs(tmp_path / "disk", "2m") as disk:
        store = disk / "rw.db"
        assert relaywatch(tmp_path, "--store", str(store), "watch", "list").returncode == 0
        _fill(disk)
        result = relaywatch(tmp_path, "--store", str(store), "mailsummary", str(log), "--json")
    assert result.returncode == ExitCode.INCOMPLETE, result.stderr
    assert "Traceback" not in result.stderr
    assert '"totals"' in result.stdout  # the result is out
    assert "not recorded" in result.stderr and "free some space" in result.stderr
