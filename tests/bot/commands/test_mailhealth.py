"""/mailhealth: watch-list edits (admins), listing, help, and the digest hook."""

from __future__ import annotations

import sys
import types

import pytest

from bot.commands import mailhealth
from bot.commands.base import CommandContext, CommandDenied, CommandUsageError, Requester
from bot.config import Config
from bot.render.reply import ChatReply
from bot.store import Store


async def _noop(text: str) -> None:
    return None


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "rw.db") as opened:
        yield opened


def _ctx(store: Store, admin: bool = True) -> CommandContext:
    return CommandContext(Config(), store, Requester("U1", "C1", admin), _noop)


async def test_add_infers_the_kind_or_takes_it(store: Store) -> None:
    await mailhealth.run(_ctx(store), "watch add 192.0.2.0/24")
    await mailhealth.run(_ctx(store), "watch add server mx.example.com")
    reply = await mailhealth.run(_ctx(store), "watch add 192.0.2.0/24")
    assert "already" in reply.text
    assert [(i.kind, i.value, i.added_by) for i in store.watch_list()] == [
        ("cidr", "192.0.2.0/24", "slack:U1"),
        ("server", "mx.example.com", "slack:U1"),
    ]


async def test_remove_and_list(store: Store) -> None:
    await mailhealth.run(_ctx(store), "watch add example.com")
    listing = await mailhealth.run(_ctx(store, admin=False), "watch list")
    assert "domain example.com" in listing.text
    await mailhealth.run(_ctx(store), "watch remove example.com")
    assert store.watch_list() == []
    with pytest.raises(CommandUsageError, match="not on the watch list"):
        await mailhealth.run(_ctx(store), "watch remove example.com")


async def test_edits_are_admin_only(store: Store) -> None:
    with pytest.raises(CommandDenied, match="only admins"):
        await mailhealth.run(_ctx(store, admin=False), "watch add 192.0.2.1")
    assert store.watch_list() == []


@pytest.mark.parametrize(
    "text", ["watch", "watch add", "watch add a b c", "watch frob x", "frob", "watch add 300.1.1.1"]
)
async def test_bad_input_is_a_usage_error(store: Store, text: str) -> None:
    with pytest.raises(CommandUsageError):
        await mailhealth.run(_ctx(store), text)
    assert store.watch_list() == []


async def test_help_is_private_and_lists_commands(store: Store) -> None:
    reply = await mailhealth.run(_ctx(store, admin=False), "help")
    assert reply.ephemeral
    assert "/mailhealth" in reply.text


async def test_no_arguments_posts_the_digest_from_bot_digest(store: Store, monkeypatch) -> None:
    seen: list[CommandContext] = []

    async def build_digest_reply(ctx: CommandContext) -> ChatReply:
        seen.append(ctx)
        return ChatReply(text="digest!")

    fake = types.ModuleType("bot.digest")
    fake.build_digest_reply = build_digest_reply  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bot.digest", fake)
    ctx = _ctx(store)
    assert (await mailhealth.run(ctx, "")).text == "digest!"
    assert seen == [ctx]


async def test_no_digest_in_this_build(store: Store, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "bot.digest", types.ModuleType("bot.digest"))
    reply = await mailhealth.run(_ctx(store), "")
    assert "not available" in reply.text
