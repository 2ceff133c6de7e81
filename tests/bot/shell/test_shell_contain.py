"""/contain in the shell adapter: same dispatcher, the operator is the admin, buttons as text."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from bot.commands import contain
from bot.config import Config
from bot.dispatch import Dispatcher
from bot.exitcodes import ExitCode
from bot.monitor.alarms import AlarmPoster
from bot.shell import ShellAdapter, ShellPoster
from bot.store import Store
from handlers.policy.model import PolicyAlarm


async def test_contain_block_list_release_in_the_shell(tmp_path) -> None:
    script = (
        "/contain block account carol@example.com 2h stolen password\n"
        "/contain list\n"
        "/contain release account carol@example.com\n"
        "/contain hold host 127.0.0.1\n"
    )
    out = io.StringIO()
    with Store(tmp_path / "rw.db") as store:
        adapter = ShellAdapter(
            Dispatcher(Config(), store, commands={"contain": contain}),
            ShellPoster(out),
            stdin=io.StringIO(script),
            stderr=io.StringIO(),
            user="alice",
        )
        assert await adapter.run() == ExitCode.USAGE  # the loopback hold was refused
        (entry,) = store.containments()
        assert (entry.set_by, entry.released_by, entry.channel) == ("alice", "alice", "shell")
        audit = [(e.user_id, e.command, e.allowed) for e in store.audit_log()]
        assert audit[-1] == ("alice", "contain", True) and len(audit) == 4
    text = out.getvalue()
    assert "Blocked account carol@example.com until" in text
    assert "REJECT 5.7.1" in text and "sendmail/pickup" in text
    assert "#1 block account carol@example.com" in text
    assert "Released account carol@example.com" in text
    assert "(only you see this) 127.0.0.1/32 is loopback" in text


async def test_alarm_buttons_show_the_command_they_run(tmp_path) -> None:
    out = io.StringIO()
    with Store(tmp_path / "rw.db") as store:
        store.record_policy_alarm(
            PolicyAlarm(
                rule="host_outbound_per_hour",
                subject_kind="host",
                subject="192.168.1.50",
                count=300,
                threshold=100,
                window_seconds=3600,
                at=datetime(2026, 12, 1, tzinfo=UTC),
            )
        )
        await AlarmPoster(Config(), store, ShellPoster(out), "shell").poll_once()
    text = out.getvalue()
    assert "[Block host: /contain block host 192.168.1.50 from alarm host_outbound" in text
    assert "[Throttle: /contain throttle host 192.168.1.50 20/h from alarm" in text
    assert "[Dismiss: /contain dismiss 1]" in text
