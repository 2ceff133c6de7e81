"""Containment expiry: a reminder in the entry's thread before it lapses and a note when it has,
each once even with two processes, driven by an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.scheduler import start_for
from bot.scheduler.expiry import ContainmentExpiry
from bot.store import Store
from tests.fixtures.digest_history import Clock, RecordingPoster, ScriptedRunner, config

START = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def store(tmp_path: Path, clock: Clock):
    with Store(tmp_path / "rw.db", clock=clock) as opened:
        yield opened


def block(store: Store, clock: Clock, hours: float, **kw):
    return store.add_containment(
        "account",
        "carol@example.com",
        "block",
        expires_at=clock() + timedelta(hours=hours),
        reason="compromised",
        set_by="UADMIN01",
        **kw,
    )


async def test_reminder_before_lapse_then_lapse_note_in_the_thread(
    store: Store, clock: Clock
) -> None:
    entry = block(store, clock, 24, channel="C0ALERTS", thread_ts="1764300000.000042")
    poster = RecordingPoster()
    expiry = ContainmentExpiry(config(), store, poster, "C0DIGEST", clock)  # remind_before 1h

    assert await expiry.run_once() == []
    clock.advance(hours=22, minutes=59)
    assert await expiry.run_once() == []  # 61 minutes left
    clock.advance(minutes=2)
    assert await expiry.run_once() == [("reminded", entry.id)]
    assert await expiry.run_once() == []  # once
    (reminder,) = poster.posts
    assert (reminder.channel, reminder.thread_ts) == ("C0ALERTS", "1764300000.000042")
    assert "lapses at 2026-12-02 06:00:00 UTC (in 59m)" in reminder.reply.text
    assert "/contain release account carol@example.com" in reminder.reply.text

    clock.advance(hours=1)
    assert store.active_containments() == []
    assert await expiry.run_once() == [("lapsed", entry.id)]
    assert await expiry.run_once() == []
    note = poster.posts[-1]
    assert note.thread_ts == "1764300000.000042" and "lapsed at" in note.reply.text


async def test_released_entries_get_no_notes_and_short_ones_no_reminder(
    store: Store, clock: Clock
) -> None:
    released = block(store, clock, 24)
    store.release_containment("account", "carol@example.com", "UADMIN01")
    short = store.add_containment(
        "host", "192.0.2.7", "hold", expires_at=clock() + timedelta(minutes=30), set_by="root"
    )
    poster = RecordingPoster()
    expiry = ContainmentExpiry(config(), store, poster, "C0DIGEST", clock)
    assert await expiry.run_once() == []  # 30 minutes left, but it was only ever 30 minutes
    clock.advance(hours=1)
    assert await expiry.run_once() == [("lapsed", short.id)]
    assert released.id not in [entry_id for _, entry_id in await expiry.run_once()]
    # no channel of its own (set from the CLI): the digest channel, top level
    (note,) = poster.posts
    assert (note.channel, note.thread_ts) == ("C0DIGEST", None)


async def test_two_processes_post_each_note_once(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "rw.db"
    with Store(path, clock=clock) as first, Store(path, clock=clock) as second:
        block(first, clock, 2, channel="C0ALERTS", thread_ts="1.2")
        poster = RecordingPoster()
        one = ContainmentExpiry(config(), first, poster, "C0DIGEST", clock)
        two = ContainmentExpiry(config(), second, poster, "C0DIGEST", clock)
        clock.advance(minutes=61)
        assert len(await one.run_once() + await two.run_once()) == 1
        clock.advance(hours=1)
        assert len(await two.run_once() + await one.run_once()) == 1
        assert len(poster.posts) == 2


async def test_missed_lapses_older_than_a_day_are_not_posted(store: Store, clock: Clock) -> None:
    block(store, clock, 1)
    clock.advance(days=3)
    poster = RecordingPoster()
    assert await ContainmentExpiry(config(), store, poster, "C0DIGEST", clock).run_once() == []


async def test_start_for_schedules_expiry_and_the_alarm_poster(store: Store, clock: Clock) -> None:
    handle = start_for(RecordingPoster(), config(), store, clock, runner=ScriptedRunner())
    try:
        assert "containment-expiry" in {job.id for job in handle.scheduler.get_jobs()}
        (task,) = handle.tasks
        assert not task.done()
    finally:
        handle.shutdown()
