"""`relaywatch store migrate`: every table copied with its ids (to PostgreSQL and to SQLite), the
id sequences moved past them, a target with data refused unless --force, usage errors."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

from bot.cli import build_parser
from bot.cli.context import CliContext
from bot.config import load_config
from bot.store import Store
from bot.store_copy import tables
from handlers.policy.model import PolicyAlarm
from tests.fixtures.digest_history import Clock

ROOT = Path(__file__).parents[3]


def run(*args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    parsed = build_parser(list(args)).parse_args(list(args))
    ctx = CliContext(config=load_config(env={}), stdout=out, stderr=err)
    try:
        code = parsed.run(parsed, ctx)
    finally:
        ctx.close()
    return int(code), out.getvalue(), err.getvalue()


def _history(path: Path) -> None:
    clock = Clock()
    with Store(path, clock=clock) as store:
        store.add_watch("ip", "192.0.2.10", "U1")
        for n in range(3):
            store.record_check("blacklist", "192.0.2.10", "ok", {"n": n})
            clock.advance(hours=1)
        store.remove_watch("ip", "192.0.2.10")  # a gap in the ids is kept as it is
        store.add_watch("domain", "lab.test")
        first = store.create_alert("blacklist:192.0.2.10", "blacklist", "listed")
        store.set_alert_thread(first.id, "C1", "1764300000.000001")
        store.update_alert(store.alert(first.id), "clear", close=True)
        store.create_alert("relay:mx:25", "relay", "open relay")
        run_ = store.claim_digest("2026-11-28T08:00:00+00:00", "host:1")
        store.finish_digest(run_.id, "sent", "C1", "1.2")
        store.audit("U1", "contain", "block carol", True, "", "C1")
        store.add_containment(
            "account", "carol@lab.test", "block", clock() + timedelta(hours=2), "spam", "U1"
        )
        store.flush_policy_counters(clock(), 60, [("account", "carol@lab.test", "mx1", 5, 9, 10)])
        store.record_policy_alarm(
            PolicyAlarm("rate", "account", "carol@lab.test", 50, 40, 3600, datetime.now(UTC))
        )
        store.open_delist_case("192.0.2.10", "zen.spamhaus.org", ("127.0.0.2",), "see", first.id)


def _dump(store: Store) -> dict[str, list[tuple]]:
    return {
        table: sorted(
            (tuple(row) for row in store.db.execute(f"SELECT * FROM {table}").fetchall()),
            key=repr,
        )
        for table in tables()
    }


def test_copies_every_table_keeping_ids(tmp_path: Path, store_location: str) -> None:
    source = tmp_path / "old.db"
    _history(source)
    code, out, err = run("store", "migrate", "--from", f"sqlite:{source}", "--to", store_location)
    assert code == 0, err
    assert "copied" in out and "checks" in out
    with Store(source) as old, Store(store_location) as new:
        before, after = _dump(old), _dump(new)
        assert after == before
        assert all(before[t] for t in ("watch", "checks", "alerts", "containment", "delist_cases"))
        # new rows continue after the copied ids
        highest = max(row[0] for row in before["alerts"])
        assert new.create_alert("suspect:x", "suspect", "x").id == highest + 1
        assert (
            new.record_check("relay", "mx:25", "ok", {}) == max(r[0] for r in before["checks"]) + 1
        )


def test_refuses_a_target_with_data_unless_forced(tmp_path: Path, store_location: str) -> None:
    source = tmp_path / "old.db"
    _history(source)
    with Store(store_location) as target:
        target.add_watch("ip", "198.51.100.1")
    code, _, err = run("store", "migrate", "--from", str(source), "--to", store_location)
    assert code == 2 and "not empty (watch 1)" in err and "nothing changed" in err
    with Store(store_location) as target:
        assert [w.value for w in target.watch_list()] == ["198.51.100.1"]
    code, _, err = run("store", "migrate", "--from", str(source), "--to", store_location, "--force")
    assert code == 0, err
    with Store(store_location) as target:
        assert [w.value for w in target.watch_list()] == ["lab.test"]


def test_usage_errors(tmp_path: Path) -> None:
    code, _, err = run("store", "migrate", "--from", f"sqlite:{tmp_path}/nope.db", "--to", "x.db")
    assert code == 2 and "no store file" in err
    assert not (tmp_path / "nope.db").exists()
    code, _, err = run("store", "migrate", "--from", "sqlite:", "--to", "x.db")
    assert code == 2
    help_text = subprocess.run(
        [sys.executable, "-m", "bot.cli", "store", "migrate", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--from" in help_text and "examples:" in help_text and "--force" in help_text
