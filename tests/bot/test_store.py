"""The SQLite store: migrations from an empty file, history, alerts, digest claims, crash safety."""

import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.store import MIGRATIONS, Store, StoreError


def test_migrates_an_empty_file_to_the_latest_schema(tmp_path: Path) -> None:
    path = tmp_path / "state" / "relaywatch.db"
    with Store(path) as store:
        assert store.schema_version == len(MIGRATIONS)
        tables = {
            row[0] for row in store.db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        assert {"watch", "checks", "alerts", "digest_runs", "audit"} <= tables
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # reopening does not re-run migrations or lose anything
    with Store(path) as store:
        assert store.schema_version == len(MIGRATIONS)


def test_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "db"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer than this relaywatch"):
        Store(path)


def test_watch_list_add_remove(tmp_path: Path) -> None:
    with Store(tmp_path / "db") as store:
        assert store.add_watch("ip", "192.0.2.1", "U1") is True
        assert store.add_watch("ip", "192.0.2.1", "U1") is False
        assert store.add_watch("domain", "example.com") is True
        assert [(i.kind, i.value) for i in store.watch_list()] == [
            ("domain", "example.com"),
            ("ip", "192.0.2.1"),
        ]
        assert store.remove_watch("ip", "192.0.2.1") is True
        assert store.remove_watch("ip", "192.0.2.1") is False
        with pytest.raises(ValueError):
            store.add_watch("planet", "mars")


def test_check_history_newest_first(tmp_path: Path) -> None:
    moments = iter([datetime(2026, 11, 27, 8, tzinfo=UTC), datetime(2026, 11, 28, 8, tzinfo=UTC)])
    with Store(tmp_path / "db", clock=lambda: next(moments)) as store:
        store.record_check("blacklist", "192.0.2.1", "ok", {"targets": []})
        store.record_check("blacklist", "192.0.2.1", "problem", {"targets": [{"listed": [1]}]})
        latest = store.latest_check("blacklist", "192.0.2.1")
        assert latest is not None and latest.status == "problem"
        assert latest.finished_at == "2026-11-28T08:00:00+00:00"
        assert [c.status for c in store.checks("blacklist")] == ["problem", "ok"]


def test_one_open_alert_per_subject(tmp_path: Path) -> None:
    with Store(tmp_path / "db") as store:
        alert = store.create_alert("listing:192.0.2.1:zen", "listing", "listed on zen")
        assert alert is not None
        assert store.create_alert("listing:192.0.2.1:zen", "listing", "again") is None
        store.set_alert_thread(alert.id, "C1", "1700000000.000100")
        assert store.acknowledge_alert(alert.id, "U9")
        stale = store.open_alert("listing:192.0.2.1:zen")
        assert stale is not None
        assert store.update_alert(stale, "delisted", close=True)
        assert not store.update_alert(stale, "delisted again", close=True)  # already changed
        closed = store.latest_alert("listing:192.0.2.1:zen")
        assert closed is not None and closed.state == "closed" and closed.acknowledged_by == "U9"
        assert closed.thread_ts == "1700000000.000100"
        assert store.create_alert("listing:192.0.2.1:zen", "listing", "relisted") is not None


def test_digest_claim_is_exclusive_across_connections(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with Store(path) as first, Store(path) as second:
        run = first.claim_digest("2026-11-28T08:00:00+00:00", "pid-1")
        assert run is not None
        assert second.claim_digest("2026-11-28T08:00:00+00:00", "pid-2") is None
        first.finish_digest(run.id, "sent", "C1", "123.456")
        stored = second.digest_run("2026-11-28T08:00:00+00:00")
        assert stored is not None and stored.status == "sent" and stored.claimed_by == "pid-1"


def test_audit_log(tmp_path: Path) -> None:
    with Store(tmp_path / "db") as store:
        store.audit("U1", "blacklist", "192.0.2.1", allowed=True, channel_id="C1")
        store.audit("U2", "relaycheck", "evil.example", allowed=False, reason="not watched")
        entries = store.audit_log()
        assert [(e.user_id, e.allowed, e.reason) for e in entries] == [
            ("U2", False, "not watched"),
            ("U1", True, ""),
        ]


def test_interrupted_write_keeps_earlier_history(tmp_path: Path) -> None:
    """A process killed mid-transaction loses only its own run, never what was committed before."""
    path = tmp_path / "db"
    with Store(path) as store:
        store.record_check("relay", "mx:25", "ok", {"verdict": "closed"})
    crasher = textwrap.dedent(
        f"""
        import os
        from bot.store import Store
        store = Store({str(path)!r})
        store.db.execute("BEGIN IMMEDIATE")
        store.db.execute(
            "INSERT INTO checks (kind, subject, started_at, finished_at, status, result_json) "
            "VALUES ('relay', 'mx:25', 'x', 'x', 'problem', '{{}}')"
        )
        store.db.execute("DELETE FROM checks WHERE status = 'ok'")
        os._exit(9)  # die with the transaction open: no commit, no rollback, no cleanup
        """
    )
    result = subprocess.run([sys.executable, "-c", crasher], cwd=Path(__file__).parents[2])
    assert result.returncode == 9
    with Store(path) as store:
        history = store.checks("relay")
        assert [(c.subject, c.status) for c in history] == [("mx:25", "ok")]
        # and the store is writable again afterwards
        store.record_check("relay", "mx:25", "problem", {"verdict": "open"})
        assert len(store.checks("relay")) == 2


def test_check_by_id(tmp_path: Path) -> None:
    with Store(tmp_path / "db") as store:
        check_id = store.record_check("relay", "mx:25", "problem", {"verdict": "open"})
        found = store.check(check_id)
        assert found is not None and found.result == {"verdict": "open"}
        assert store.check(check_id + 1) is None


def test_text_that_is_not_valid_utf8_is_stored_escaped(tmp_path: Path) -> None:
    # a file name from the OS with a byte that is not UTF-8 arrives as a surrogate escape
    subject = b"mail-\xff.log".decode("utf-8", "surrogateescape")
    with Store(tmp_path / "db") as store:
        check_id = store.record_check("mailsummary", subject, "ok", {"subject": subject})
        record = store.check(check_id)
        assert record is not None and record.subject == "mail-\\udcff.log"
