"""The store on both backends (SQLite and PostgreSQL, the `store_location` fixture): migrations from
empty, history, alerts, digest claims, posting claims, leadership, crash safety."""

import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.store import MIGRATIONS, Store, StoreError
from tests.fixtures.digest_history import Clock
from tests.fixtures.postgres import PostgresServer


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


def test_watch_list_add_remove(store_location: str) -> None:
    with Store(store_location) as store:
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


def test_check_history_newest_first(store_location: str) -> None:
    moments = iter([datetime(2026, 11, 27, 8, tzinfo=UTC), datetime(2026, 11, 28, 8, tzinfo=UTC)])
    with Store(store_location, clock=lambda: next(moments)) as store:
        store.record_check("blacklist", "192.0.2.1", "ok", {"targets": []})
        store.record_check("blacklist", "192.0.2.1", "problem", {"targets": [{"listed": [1]}]})
        latest = store.latest_check("blacklist", "192.0.2.1")
        assert latest is not None and latest.status == "problem"
        assert latest.finished_at == "2026-11-28T08:00:00+00:00"
        assert [c.status for c in store.checks("blacklist")] == ["problem", "ok"]


def test_one_open_alert_per_subject(store_location: str) -> None:
    with Store(store_location) as store:
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


def test_digest_claim_is_exclusive_across_connections(store_location: str) -> None:
    with Store(store_location) as first, Store(store_location) as second:
        run = first.claim_digest("2026-11-28T08:00:00+00:00", "pid-1")
        assert run is not None
        assert second.claim_digest("2026-11-28T08:00:00+00:00", "pid-2") is None
        first.finish_digest(run.id, "sent", "C1", "123.456")
        stored = second.digest_run("2026-11-28T08:00:00+00:00")
        assert stored is not None and stored.status == "sent" and stored.claimed_by == "pid-1"


def test_audit_log(store_location: str) -> None:
    with Store(store_location) as store:
        store.audit("U1", "blacklist", "192.0.2.1", allowed=True, channel_id="C1")
        store.audit("U2", "relaycheck", "evil.example", allowed=False, reason="not watched")
        entries = store.audit_log()
        assert [(e.user_id, e.allowed, e.reason) for e in entries] == [
            ("U2", False, "not watched"),
            ("U1", True, ""),
        ]


def test_interrupted_write_keeps_earlier_history(store_location: str) -> None:
    """A process killed mid-transaction loses only its own run, never what was committed before."""
    path = store_location
    with Store(path) as store:
        store.record_check("relay", "mx:25", "ok", {"verdict": "closed"})
    crasher = textwrap.dedent(
        f"""
        import os, signal
        from bot.store import Store
        store = Store({path!r})
        store.db.execute("BEGIN IMMEDIATE")
        store.db.execute(
            "INSERT INTO checks (kind, subject, started_at, finished_at, status, result_json) "
            "VALUES ('relay', 'mx:25', 'x', 'x', 'problem', '{{}}')"
        )
        store.db.execute("DELETE FROM checks WHERE status = 'ok'")
        os.kill(os.getpid(), signal.SIGKILL)  # die mid-transaction: no commit, no cleanup
        """
    )
    result = subprocess.run([sys.executable, "-c", crasher], cwd=Path(__file__).parents[2])
    assert result.returncode == -signal.SIGKILL
    with Store(path) as store:
        history = store.checks("relay")
        assert [(c.subject, c.status) for c in history] == [("mx:25", "ok")]
        # and the store is writable again afterwards
        store.record_check("relay", "mx:25", "problem", {"verdict": "open"})
        assert len(store.checks("relay")) == 2


def test_check_by_id(store_location: str) -> None:
    with Store(store_location) as store:
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


def _columns(store: Store) -> dict[str, list[str]]:
    if store.backend == "sqlite":
        tables = [
            r[0] for r in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        return {
            t: [r[1] for r in store.db.execute(f"PRAGMA table_info({t})").fetchall()]
            for t in tables
        }
    rows = store.db.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name <> 'relaywatch_schema' "
        "ORDER BY table_name, ordinal_position"
    ).fetchall()
    found: dict[str, list[str]] = {}
    for table, column in rows:
        found.setdefault(table, []).append(column)
    return found


def test_both_backends_have_the_same_schema(tmp_path: Path, store_location: str) -> None:
    with Store(tmp_path / "reference.db") as sqlite_store, Store(store_location) as store:
        assert store.schema_version == len(MIGRATIONS)
        assert _columns(store) == _columns(sqlite_store)


def test_refuses_a_newer_schema_on_either_backend(store_location: str) -> None:
    with Store(store_location) as store:
        store.db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StoreError, match="newer than this relaywatch"):
        Store(store_location)


def test_replicas_starting_at_once_migrate_once(store_location: str) -> None:
    """Three processes open an empty store at once: all start, the schema is built once."""
    opener = textwrap.dedent(
        f"""
        import sys
        from bot.store import Store
        sys.stdin.readline()  # start together
        with Store({store_location!r}) as store:
            store.add_watch("ip", "192.0.2." + sys.argv[1])
            print(store.schema_version)
        """
    )
    root = Path(__file__).parents[2]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", opener, str(n)],
            cwd=root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(3)
    ]
    outputs = [p.communicate("go\n", timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in outputs]
    assert [out.strip() for out, _ in outputs] == [str(len(MIGRATIONS))] * 3
    with Store(store_location) as store:
        assert len(store.watch_list("ip")) == 3


def test_posting_claim_is_exclusive_and_a_dead_posters_lease_runs_out(
    store_location: str,
) -> None:
    clock = Clock()
    with Store(store_location, clock) as first, Store(store_location, clock) as second:
        assert first.claim_post("alert:1:opening", "A", timedelta(minutes=2))
        assert not second.claim_post("alert:1:opening", "B")  # live lease
        assert not first.claim_post("alert:1:opening", "A")  # not even the holder twice
        clock.advance(minutes=2)
        assert second.claim_post("alert:1:opening", "B")  # A's lease ran out: B takes over
        assert not first.finish_post("alert:1:opening", "A", "1.0")  # A lost it
        assert second.finish_post("alert:1:opening", "B", "1.1")
        clock.advance(hours=1)
        assert not first.claim_post("alert:1:opening", "A")  # done is done, lease or not
        claim = first.post_claim("alert:1:opening")
        assert claim is not None and (claim.claimed_by, claim.ts) == ("B", "1.1")


def test_a_released_claim_is_retried_and_abandoned_ones_are_listed(store_location: str) -> None:
    clock = Clock()
    with Store(store_location, clock) as store:
        store.claim_post("alert:7:follow-up:x", "A", channel="C1", thread_ts="1.0", text="hi")
        store.claim_post("digest:2026-11-28T08:00:00+00:00", "A")
        assert store.abandoned_posts("alert:") == []
        store.release_post("alert:7:follow-up:x", "A")  # the post failed
        (abandoned,) = store.abandoned_posts("alert:")
        assert (abandoned.channel, abandoned.thread_ts, abandoned.text) == ("C1", "1.0", "hi")
        assert store.claim_post("alert:7:follow-up:x", "B")
        assert store.abandoned_posts("alert:") == []
        assert store.renew_post("alert:7:follow-up:x", "B")
        assert not store.renew_post("alert:7:follow-up:x", "A")


def test_follow_up_claim_is_written_with_the_winning_update(store_location: str) -> None:
    from bot.store import PendingPost

    clock = Clock()
    with Store(store_location, clock) as first, Store(store_location, clock) as second:
        first.create_alert("relay:x", "relay", "open")
        seen = [first.open_alert("relay:x"), second.open_alert("relay:x")]
        claims = [PendingPost(f"alert:1:follow-up:{n}", n, text="closed") for n in "AB"]
        clock.advance(seconds=1)
        assert first.update_alert(seen[0], "closed", True, follow_up=claims[0])
        assert not second.update_alert(seen[1], "closed", True, follow_up=claims[1])
        assert first.post_claim("alert:1:follow-up:A") is not None
        assert first.post_claim("alert:1:follow-up:B") is None  # the loser claims nothing


def test_an_abandoned_digest_is_taken_over_once(store_location: str) -> None:
    clock = Clock()
    slot = "2026-11-28T08:00:00+00:00"
    with Store(store_location, clock) as first, Store(store_location, clock) as second:
        assert first.claim_digest(slot, "A", timedelta(minutes=15)) is not None
        assert second.claim_digest(slot, "B") is None
        assert not second.digest_abandoned(slot)
        clock.advance(minutes=15)  # A died without finishing
        assert second.digest_abandoned(slot)
        run = second.claim_digest(slot, "B")
        assert run is not None and run.claimed_by == "B"
        assert first.claim_digest(slot, "C") is None
        second.finish_digest(run.id, "sent", "C1", "9.9")
        clock.advance(hours=1)
        assert not first.digest_abandoned(slot)
        assert first.claim_digest(slot, "C") is None


def test_one_leader_at_a_time(store_location: str) -> None:
    clock = Clock()
    lease = timedelta(seconds=45)
    first, second = Store(store_location, clock), Store(store_location, clock)
    try:
        assert first.hold_leadership("scheduler", "A", lease)
        assert first.hold_leadership("scheduler", "A", lease)  # renewing
        assert not second.hold_leadership("scheduler", "B", lease)
        first.resign_leadership("scheduler", "A")
        assert second.hold_leadership("scheduler", "B", lease)
        assert not first.hold_leadership("scheduler", "A", lease)
    finally:
        first.close()
        second.close()


def test_counters_from_every_source_are_summed(store_location: str) -> None:
    window = datetime(2026, 11, 28, 8, tzinfo=UTC)
    with Store(store_location) as one, Store(store_location) as two:
        one.flush_policy_counters(window, 60, [("account", "carol@lab.test", "mx1", 3, 4, 100)])
        two.flush_policy_counters(window, 60, [("account", "carol@lab.test", "mx2", 2, 2, 50)])
        one.flush_policy_counters(window, 60, [("account", "carol@lab.test", "mx1", 1, 1, 10)])
        since = window - timedelta(minutes=1)
        assert two.policy_counter_totals("account", "carol@lab.test", since) == (6, 7, 160)


def test_window_counts_are_summed_over_replicas_in_the_store(store_location: str) -> None:
    minute = datetime(2026, 11, 28, 8, 5, tzinfo=UTC)
    with Store(store_location) as one, Store(store_location) as two:
        one.add_policy_window_counts("replica-a", [(minute, 60, "account", "carol@lab.test", 6)])
        two.add_policy_window_counts("replica-b", [(minute, 60, "account", "carol@lab.test", 6)])
        one.add_policy_window_counts("replica-a", [(minute, 60, "account", "dave@lab.test", 4)])
        one.add_policy_window_counts("replica-a", [(minute, 60, "account", "dave@lab.test", 1)])
        later = minute + timedelta(minutes=1)
        two.add_policy_window_counts("replica-b", [(later, 60, "account", "carol@lab.test", 9)])
        assert two.policy_window_totals_over(minute, 60, "account", 10) == [
            ("carol@lab.test", 12, 2)
        ]
        assert one.policy_window_totals_over(minute, 60, "account", 4) == [
            ("carol@lab.test", 12, 2),
            ("dave@lab.test", 5, 1),
        ]
        assert one.prune_policy_window_counts(later, 60) == 3
        assert one.policy_window_totals_over(minute, 60, "account", 0) == []
        assert one.policy_window_totals_over(later, 60, "account", 0) == [("carol@lab.test", 9, 1)]


def test_one_policy_alarm_per_rule_subject_and_window(store_location: str) -> None:
    from dataclasses import replace

    from handlers.policy.model import PolicyAlarm

    at = datetime(2026, 11, 28, 8, 5, 30, tzinfo=UTC)
    alarm = PolicyAlarm("account_messages_per_minute", "account", "carol@lab.test", 12, 10, 60, at)
    with Store(store_location) as one, Store(store_location) as two:
        assert one.record_policy_alarm(alarm) > 0
        # another replica crossing in the same clock minute: dropped, whatever its count
        assert two.record_policy_alarm(replace(alarm, count=13, at=at + timedelta(seconds=20))) == 0
        assert (
            one.record_policy_alarm(
                replace(alarm, rule="account_messages_per_day", window_seconds=86400)
            )
            > 0
        )
        assert two.record_policy_alarm(replace(alarm, subject="dave@lab.test")) > 0
        assert two.record_policy_alarm(replace(alarm, at=at + timedelta(seconds=30))) > 0
        assert len(one.unposted_policy_alarms()) == 4


def test_a_dropped_postgresql_connection_is_reopened_between_transactions(
    postgres_server: PostgresServer,
) -> None:
    import psycopg

    store_location = postgres_server.create_database()

    with Store(store_location) as store:
        store.add_watch("ip", "192.0.2.1")
        pid = store.db.conn.info.backend_pid
        with psycopg.connect(store_location, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(psycopg.OperationalError):
            store.watch_list()  # the statement that meets the dead connection fails …
        assert [w.value for w in store.watch_list()] == ["192.0.2.1"]  # … the next one reconnects
        assert store.add_watch("ip", "192.0.2.2")
        pid = store.db.conn.info.backend_pid
        with pytest.raises(psycopg.OperationalError), store.transaction() as db:
            db.execute("DELETE FROM watch")
            with psycopg.connect(store_location, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            db.execute("DELETE FROM checks")  # cut off mid-transaction: fails, never autocommits
        assert len(store.watch_list()) == 2


def test_containment_lifecycle_and_revision(store_location: str) -> None:
    clock = Clock()
    with Store(store_location, clock) as one, Store(store_location, clock) as two:
        start = two.containment_revision()
        later = clock() + timedelta(hours=2)
        first = one.add_containment("account", "carol@lab.test", "block", later, "spam", "U1")
        replaced = one.add_containment(
            "account", "carol@lab.test", "throttle", later, "calmer", "U2", limit_per_hour=20
        )
        assert replaced.id == first.id + 1 and replaced.limit_per_hour == 20
        (active,) = two.active_containments()
        assert active.id == replaced.id and active.set_at == clock()
        assert two.containment(first.id).released_by == "replaced by U2"
        assert two.mark_containment_reminded(replaced.id)
        assert not one.mark_containment_reminded(replaced.id)
        clock.advance(hours=3)
        assert two.active_containments() == []
        (lapsed,) = one.lapsed_containments(clock() - timedelta(days=1))
        assert lapsed.id == replaced.id
        assert one.mark_containment_lapse_noted(replaced.id)
        assert not two.mark_containment_lapse_noted(replaced.id)
        assert one.release_containment("account", "carol@lab.test", "U1") == 0  # lapsed already
        assert two.containment_revision() == start + 2
        assert [c.id for c in two.containments()] == [replaced.id, first.id]


def test_policy_alarms_are_claimed_once(store_location: str) -> None:
    from handlers.policy.model import PolicyAlarm

    clock = Clock()
    with Store(store_location, clock) as one, Store(store_location, clock) as two:
        alarm = PolicyAlarm(
            "account_messages_per_minute",
            "account",
            "carol@lab.test",
            50,
            10,
            60,
            clock(),
            client_addresses=("192.0.2.7",),
            detail={"burst": 3},
        )
        alarm_id = one.record_policy_alarm(alarm)
        ((found_id, found),) = two.unposted_policy_alarms()
        assert found_id == alarm_id and found == alarm
        assert two.claim_policy_alarm(alarm_id)
        assert not one.claim_policy_alarm(alarm_id)
        assert one.unposted_policy_alarms() == []


def test_delisting_case_compare_and_set(store_location: str) -> None:
    from dataclasses import replace

    clock = Clock()
    with Store(store_location, clock) as one, Store(store_location, clock) as two:
        case = one.open_delist_case("192.0.2.10", "zen.spamhaus.org", ("127.0.0.2",), "see", 4)
        assert case is not None and case.codes == ("127.0.0.2",) and case.alert_id == 4
        assert two.open_delist_case("192.0.2.10", "zen.spamhaus.org", (), "", None) is None
        (due,) = two.due_delist_cases(clock())
        later = replace(due, next_check_at=clock() + timedelta(minutes=30))
        assert one.save_delist_case(due, later)
        assert not two.save_delist_case(due, replace(due, state="removed"))  # stale read
        assert two.mark_delist_case(case.id, "requested", "U3")
        clock.advance(hours=1)
        (stored,) = one.delist_cases(state="listed", subject="192.0.2.10")
        assert stored.requested_by == "U3" and stored.next_check_at == later.next_check_at
        assert one.due_delist_cases(clock()) == [stored]


def test_an_unreachable_postgresql_is_a_one_line_store_error_without_the_password() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(StoreError, match="cannot open store") as caught:
        Store(f"postgresql://rw:hunter2@127.0.0.1:{port}/rw?connect_timeout=5")
    assert "hunter2" not in str(caught.value) and "\n" not in str(caught.value)
    assert f"postgresql://rw:***@127.0.0.1:{port}/rw" in str(caught.value)


def test_a_postgresql_writer_waits_for_the_write_lock_then_gives_up(
    postgres_server: PostgresServer,
) -> None:
    import psycopg

    location = postgres_server.create_database()
    with Store(location) as holder, Store(location) as waiter:
        waiter.db.conn.execute("SET lock_timeout = '200ms'")  # the 10 s default, shortened
        with holder.transaction():  # holds the write lock until the block ends
            with pytest.raises(psycopg.errors.LockNotAvailable):
                waiter.add_watch("ip", "192.0.2.1")
        assert waiter.add_watch("ip", "192.0.2.1")  # and works once the holder committed
        shown = waiter.db.conn.execute("SHOW idle_in_transaction_session_timeout").fetchone()
        assert shown[0] == "1min"


def test_postgresql_ddl_translation() -> None:
    from bot.store_pg import id_tables, pg_ddl, translate

    ddl = (
        "CREATE TABLE IF NOT EXISTS t (\n id INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER, b BLOB)"
    )
    assert pg_ddl(ddl) == (
        "CREATE TABLE IF NOT EXISTS t (\n id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
        "n BIGINT, b BYTEA)"
    )
    assert id_tables([ddl, "CREATE TABLE u (\n  name TEXT PRIMARY KEY)"]) == {"t"}
    assert translate("INSERT OR IGNORE INTO t (n) VALUES (?)", frozenset({"t"})) == (
        "INSERT INTO t (n) VALUES (%s) ON CONFLICT DO NOTHING RETURNING id",
        True,
    )
    assert translate("UPDATE u SET name = ? WHERE name LIKE 'a%'", frozenset()) == (
        "UPDATE u SET name = %s WHERE name LIKE 'a%%'",
        False,
    )
