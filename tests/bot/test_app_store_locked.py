"""Another process holds the store's write lock: acks stay fast, and once the lock clears every
command gets its final answer and its audit row."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tests.bot import test_app
from tests.bot.test_app import ADMIN, Bot

bot = test_app.bot

HOLD_LOCK = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
db.execute("INSERT INTO audit (at, user_id, command, allowed) VALUES ('x', 'ULOCK', 'lock', 1)")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("ROLLBACK")
"""


@asynccontextmanager
async def write_lock_held(path: Path, seconds: float) -> AsyncIterator[asyncio.subprocess.Process]:
    """Another process holds the SQLite write lock on `path` for `seconds`."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLD_LOCK, str(path), str(seconds), stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    assert (await asyncio.wait_for(proc.stdout.readline(), 10)).strip() == b"locked"
    try:
        yield proc
    finally:
        await asyncio.wait_for(proc.wait(), seconds + 10)


def _progress_left_unreplaced(bot: Bot) -> list[str]:
    """ts of "checking…" messages that were neither edited into something else nor deleted."""
    # the stand-in answers postMessage with increasing ts values; rebuild them in order
    posted = [c for c in bot.slack.calls if c.method == "chat.postMessage" and c.ok]
    ts_of = {id(c): f"1764363600.{i + 1:06d}" for i, c in enumerate(posted)}
    progress = [ts_of[id(c)] for c in posted if "checking" in str(c.params.get("text"))]
    replaced = {
        str(c.params.get("ts"))
        for c in bot.slack.calls
        if c.method in ("chat.update", "chat.delete")
        and c.ok
        and "checking" not in str(c.params.get("text"))
    }
    return [ts for ts in progress if ts not in replaced]


async def test_acks_stay_fast_and_nothing_is_lost_while_the_store_is_locked(bot: Bot) -> None:
    bot.store.add_watch("ip", "192.0.2.1")
    users = [f"ULOCKED{i}" for i in range(4)]
    async with write_lock_held(bot.store.path, 2.0):
        sent = await asyncio.gather(
            *(bot.slash("/check", "192.0.2.1", user=u) for u in users),
            bot.slash("/mailhealth", "watch add 192.0.2.9", user=ADMIN),
        )
        for status, body, elapsed in sent:
            assert status == 200 and "on it" in body
            assert elapsed < 3.0, elapsed  # Slack's limit; in practice milliseconds
        acked_while_locked = max(elapsed for _, _, elapsed in sent)
    await bot.settle()
    assert acked_while_locked < 1.0
    answers = [c.params for c in bot.slack.calls if c.method in ("chat.postMessage", "chat.update")]
    finals = [a for a in answers if "not listed" in str(a.get("text"))]
    assert len(finals) == len(users)
    assert any("192.0.2.9" in str(a.get("text")) for a in answers)
    assert _progress_left_unreplaced(bot) == []
    rows = bot.store.audit_log()
    assert sorted(r.user_id for r in rows) == sorted([*users, ADMIN])
    assert [i.value for i in bot.store.watch_list()] == ["192.0.2.1", "192.0.2.9"]


async def test_audit_rows_are_retried_until_the_lock_clears(bot: Bot, tmp_path) -> None:
    from bot.auditlog import AuditRow, AuditWriter
    from bot.store import Store

    with Store(bot.store.path, busy_timeout=0.05) as impatient:
        writer = AuditWriter(impatient, delays=(0.1,) * 50)
        async with write_lock_held(bot.store.path, 1.0):
            started = asyncio.get_running_loop().time()
            wrote = await asyncio.gather(
                *(writer.write(AuditRow(f"U{i}", "check", "x", True)) for i in range(3))
            )
            waited = asyncio.get_running_loop().time() - started
        assert wrote == [True, True, True] and writer.lost == 0
        assert waited >= 0.5  # they really did wait for the lock
    assert sorted(r.user_id for r in bot.store.audit_log()) == ["U0", "U1", "U2"]


async def test_a_command_failing_on_a_locked_store_still_gets_an_answer(bot: Bot) -> None:
    # the command's own write gives up (short busy timeout): the user gets an error id, and the
    # audit row of that failure still lands once the lock clears
    from bot.store import Store

    impatient = Store(bot.store.path, busy_timeout=0.05)
    try:
        bot.services.dispatcher.store = impatient
        bot.services.dispatcher.audit.store = impatient
        bot.services.dispatcher.audit.delays = (0.1,) * 100
        impatient.add_watch("ip", "192.0.2.1")
        async with write_lock_held(bot.store.path, 1.0):
            status, _, elapsed = await bot.slash("/check", "192.0.2.1")
            assert status == 200 and elapsed < 1.0
        await bot.settle()
        texts = [str(c.params.get("text")) for c in bot.slack.calls]
        assert any("could not complete" in t and "error id" in t for t in texts), texts
        assert _progress_left_unreplaced(bot) == []
        (row,) = bot.store.audit_log()
        assert row.reason.startswith("error ")
    finally:
        impatient.close()
