"""/contain through signed Slack requests into the Bolt app, against the Slack stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.store import Store
from tests.fixtures.slack_api import SlackStandIn
from tests.fixtures.slack_bot import SlackBot, bot_config, running_bot

ADMIN = "UADMIN01"
USER = "UUSER001"


@pytest.fixture
async def bot(slack: SlackStandIn, tmp_path) -> AsyncIterator[SlackBot]:
    store = Store(tmp_path / "relaywatch.db")
    async with running_bot(bot_config(slack, [ADMIN]), store, slack) as running:
        yield running
    store.close()


def last_text(bot: SlackBot) -> str:
    posted = bot.slack.of("chat.postMessage") + bot.slack.of("chat.update")
    return max(posted, key=lambda c: c.at).params["text"]


async def test_admin_blocks_lists_and_releases(bot: SlackBot) -> None:
    assert (
        await bot.slash(
            "/contain", "block account Carol@Example.com 24h compromised password", ADMIN
        )
        == 200
    )
    await bot.settle()
    (entry,) = bot.store.active_containments()
    assert (entry.subject_kind, entry.subject, entry.action) == (
        "account",
        "carol@example.com",
        "block",
    )
    assert entry.set_by == ADMIN and entry.reason == "compromised password"
    assert entry.channel == "C0CHAN"
    assert timedelta(hours=23, minutes=59) < entry.expires_at - entry.set_at <= timedelta(hours=24)
    said = last_text(bot)
    assert "Blocked account `carol@example.com` until" in said
    assert "REJECT 5.7.1" in said
    assert "password" in said and "sendmail/pickup" in said  # what containment does not do

    await bot.slash("/contain", "list", ADMIN)
    await bot.settle()
    assert "carol@example.com" in last_text(bot) and "block" in last_text(bot)

    await bot.slash("/contain", "release account carol@example.com", ADMIN)
    await bot.settle()
    assert bot.store.active_containments() == []
    assert "Released account `carol@example.com`" in last_text(bot)
    (released,) = bot.store.containments()
    assert released.released_by == ADMIN

    audit = [(e.user_id, e.command, e.args, e.allowed) for e in reversed(bot.store.audit_log())]
    assert audit == [
        (ADMIN, "contain", "block account Carol@Example.com 24h compromised password", True),
        (ADMIN, "contain", "list", True),
        (ADMIN, "contain", "release account carol@example.com", True),
    ]


async def test_hold_host_and_throttle_account(bot: SlackBot) -> None:
    await bot.slash("/contain", "hold host 192.168.1.50", ADMIN)
    await bot.slash(
        "/contain", "throttle account <mailto:bob@example.com|bob@example.com> 20/h", ADMIN
    )
    await bot.settle()
    entries = {(e.subject_kind, e.subject): e for e in bot.store.active_containments()}
    assert entries[("host", "192.168.1.50")].action == "hold"
    throttle = entries[("account", "bob@example.com")]
    assert (throttle.action, throttle.limit_per_hour) == ("throttle", 20)


async def test_non_admin_is_refused_privately_and_audited(bot: SlackBot) -> None:
    await bot.slash("/contain", "block account carol@example.com", USER)
    await bot.settle()
    assert bot.store.containments() == []
    (answer,) = bot.slack.of("respond")
    assert answer.params["response_type"] == "ephemeral"
    assert "only relaywatch admins" in answer.params["text"]
    assert not bot.slack.of("chat.postMessage")
    entry = bot.store.audit_log()[0]
    assert (entry.user_id, entry.command, entry.allowed) == (USER, "contain", False)


@pytest.mark.parametrize(
    "text",
    [
        "block host 10.0.0.0/8",
        "block host 127.0.0.1",
        "throttle account bob@example.com",
        "block account a@example.com 30d",
        "nuke account a@example.com",
    ],
)
async def test_bad_input_changes_nothing_and_shows_the_usage(bot: SlackBot, text: str) -> None:
    await bot.slash("/contain", text, ADMIN)
    await bot.settle()
    assert bot.store.containments() == []
    (answer,) = bot.slack.of("respond")
    assert answer.params["response_type"] == "ephemeral"
    assert answer.params["text"].count("Usage:") == 1
