"""Authorization, rate limits, audit and error handling of the transport-neutral dispatcher."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bot.commands import mailhealth
from bot.commands.base import CommandContext
from bot.config import Config
from bot.dispatch import (
    AdminDirectory,
    Dispatcher,
    Invocation,
    RateLimiter,
    parse_command_line,
)
from bot.render.reply import ChatReply, inert, plain_reply
from bot.store import Store


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _noop(text: str) -> None:
    return None


async def _echo(ctx: CommandContext, text: str) -> ChatReply:
    ctx.require_watched(text)
    return plain_reply(f"checked {text} admin={ctx.requester.is_admin}")


@pytest.fixture
def store(tmp_path) -> Store:
    with Store(tmp_path / "rw.db") as opened:
        yield opened


def _dispatcher(store: Store, config: Config | None = None, **kwargs) -> Dispatcher:
    commands = {
        "echo": SimpleNamespace(NAME="echo", USAGE="/echo <t>", SUMMARY="", run=_echo),
        "mailhealth": mailhealth,
    }
    return Dispatcher(config or Config(), store, commands=commands, **kwargs)


def test_parse_command_line() -> None:
    assert parse_command_line("/Blacklist  192.0.2.1 ") == ("blacklist", "192.0.2.1")
    assert parse_command_line("mailhealth watch add x") == ("mailhealth", "watch add x")
    assert parse_command_line("/mailhealth") == ("mailhealth", "")


def test_rate_limiter_uses_a_sliding_minute() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2, clock=clock)
    assert limiter.check("U1") == 0 and limiter.check("U1") == 0
    wait = limiter.check("U1")
    assert 59 < wait <= 60
    assert limiter.check("U2") == 0  # per user
    clock.now += 30
    assert limiter.check("U1") > 0
    clock.now += 30.5
    assert limiter.check("U1") == 0
    assert RateLimiter(0, clock=clock).check("U1") == 0  # 0: unlimited


async def test_usergroup_members_are_cached_and_lookup_failure_denies() -> None:
    calls: list[str] = []
    clock = FakeClock()

    async def lookup(group: str) -> list[str]:
        calls.append(group)
        if len(calls) == 3:
            raise RuntimeError("slack down")
        return ["UGROUP"]

    admins = AdminDirectory(["UCONF"], "S1", lookup, ttl_seconds=60, clock=clock)
    assert await admins.is_admin("UCONF") and calls == []
    assert await admins.is_admin("UGROUP") and not await admins.is_admin("UOTHER")
    assert calls == ["S1"]
    clock.now += 61
    assert await admins.is_admin("UGROUP") and calls == ["S1", "S1"]
    clock.now += 61
    assert not await admins.is_admin("UGROUP")  # fails closed
    assert await admins.is_admin("UGROUP") and len(calls) == 4  # failure not cached


async def test_rate_limit_denies_and_audits(store: Store) -> None:
    config = Config()
    config.slack.commands_per_minute = 1
    dispatcher = _dispatcher(store, config, rate_limiter=RateLimiter(1, clock=FakeClock()))
    first = await dispatcher.handle(Invocation("mailhealth", "watch list", "U1", "C1"), _noop)
    second = await dispatcher.handle(Invocation("mailhealth", "watch list", "U1", "C1"), _noop)
    assert first.allowed and not second.allowed
    assert second.reply.ephemeral and "at most 1 commands a minute" in second.reply.text
    assert [e.allowed for e in store.audit_log()] == [False, True]


async def test_allowed_channels_by_id_or_name(store: Store) -> None:
    config = Config()
    config.slack.allowed_channels = ["C0OPS", "#mail-ops"]
    dispatcher = _dispatcher(store, config)
    by_id = await dispatcher.handle(Invocation("mailhealth", "watch list", "U1", "C0OPS"), _noop)
    by_name = await dispatcher.handle(
        Invocation("mailhealth", "watch list", "U1", "C9", channel_name="mail-ops"), _noop
    )
    elsewhere = await dispatcher.handle(Invocation("mailhealth", "watch list", "U1", "C9"), _noop)
    assert by_id.allowed and by_name.allowed and not elsewhere.allowed
    assert "<#C0OPS>, #mail-ops" in inert(elsewhere.reply.text)  # as sent to Slack


async def test_non_admin_only_watch_list_targets(store: Store) -> None:
    config = Config()
    config.slack.admins = ["UADMIN"]
    dispatcher = _dispatcher(store, config)
    store.add_watch("cidr", "192.0.2.0/24")
    inside = await dispatcher.handle(Invocation("echo", "192.0.2.9", "U1", "C1"), _noop)
    outside = await dispatcher.handle(Invocation("echo", "198.51.100.1", "U1", "C1"), _noop)
    admin = await dispatcher.handle(Invocation("echo", "198.51.100.1", "UADMIN", "C1"), _noop)
    assert inside.allowed and "admin=False" in inside.reply.text
    assert not outside.allowed and outside.reply.ephemeral
    assert admin.allowed and "admin=True" in admin.reply.text
    rows = [(e.user_id, e.args, e.allowed) for e in reversed(store.audit_log())]
    assert rows == [
        ("U1", "192.0.2.9", True),
        ("U1", "198.51.100.1", False),
        ("UADMIN", "198.51.100.1", True),
    ]


async def test_unknown_command_is_a_usage_answer(store: Store) -> None:
    result = await _dispatcher(store).handle(Invocation("nope", "", "U1", "C1"), _noop)
    assert result.reply.ephemeral and "/echo" in result.reply.text
    assert store.audit_log()[0].allowed is False


async def test_show_details_falls_back_to_the_stored_json(store: Store) -> None:
    check_id = store.record_check("nosuchengine", "x", "ok", {"answer": 42})
    result = await _dispatcher(store).show_details(
        Invocation("show_details", str(check_id), "U1", "C1")
    )
    assert '"answer": 42' in result.reply.text
    missing = await _dispatcher(store).show_details(Invocation("show_details", "999", "U1", "C1"))
    assert missing.reply.ephemeral


async def test_acknowledge_unknown_alert(store: Store) -> None:
    result = await _dispatcher(store).acknowledge(Invocation("acknowledge", "12", "U1", "C1"))
    assert result.reply.ephemeral and "does not exist" in result.reply.text
