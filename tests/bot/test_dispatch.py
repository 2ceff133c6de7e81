"""Authorization, rate limits, audit and error handling of the transport-neutral dispatcher."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

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


async def test_allowed_channels_by_id_only(store: Store) -> None:
    config = Config()
    config.slack.allowed_channels = ["C0OPS"]
    dispatcher = _dispatcher(store, config)
    by_id = await dispatcher.handle(Invocation("mailhealth", "watch list", "U1", "C0OPS"), _noop)
    # a channel whose *name* looks like the allowed ID (names are chosen by users) is refused
    by_name = await dispatcher.handle(
        Invocation("mailhealth", "watch list", "U2", "C0EVIL2", channel_name="c0ops"), _noop
    )
    lower = await dispatcher.handle(Invocation("mailhealth", "watch list", "U3", "c0ops"), _noop)
    assert by_id.allowed and not by_name.allowed and not lower.allowed
    assert "<#C0OPS>" in inert(by_name.reply.text)  # as sent to Slack


_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
channel_ids = st.text(_ID_CHARS, min_size=8, max_size=11).map(lambda s: "C" + s)


def _variants(channel_id: str) -> list[str]:
    """Spellings a hostile workspace member can give a channel's name or id."""
    return [
        channel_id.lower(),
        channel_id.swapcase(),
        "#" + channel_id,
        "#" + channel_id.lower(),
        " " + channel_id,
        channel_id + " ",
        channel_id + "\u200b",
        channel_id[:-1],
        channel_id + "X",
        channel_id.replace("O", "0") if "O" in channel_id else channel_id + "0",
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(allowed=channel_ids, other=channel_ids, pick=st.integers(0, 9), name_like=st.booleans())
def test_only_the_exact_channel_id_is_allowed(
    allowed: str, other: str, pick: int, name_like: bool
) -> None:
    config = Config()
    config.slack.allowed_channels = [allowed]
    dispatcher = Dispatcher(config, store=None, commands={"x": None})  # type: ignore[arg-type]
    variant = _variants(allowed)[pick]
    assume(variant != allowed)
    # the variant as the channel's id, or as its name on a different channel id
    inv = (
        Invocation("x", "", "U1", other, channel_name=variant)
        if name_like
        else Invocation("x", "", "U1", variant, channel_name=allowed)
    )
    assume(inv.channel_id != allowed)
    assert dispatcher.channel_denial(inv)
    assert not dispatcher.channel_denial(Invocation("x", "", "U1", allowed, channel_name="any"))


@settings(max_examples=60, deadline=None)
@given(
    admin=st.text(_ID_CHARS, min_size=8, max_size=11).map(lambda s: "U" + s), pick=st.integers(0, 9)
)
async def test_only_the_exact_admin_id_is_an_admin(admin: str, pick: int) -> None:
    admins = AdminDirectory([admin])
    variant = _variants(admin)[pick]
    assume(variant != admin)
    assert await admins.is_admin(admin)
    assert not await admins.is_admin(variant)


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
