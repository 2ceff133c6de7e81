"""A policy alarm written to the store reaches Slack (the stand-in) as an alert with the four
containment buttons; a non-admin's press is refused, an admin's confirmed press contains."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from bot.monitor.alarms import AlarmPoster
from bot.store import Store
from handlers.policy.model import PolicyAlarm
from tests.fixtures.slack_api import SlackStandIn
from tests.fixtures.slack_bot import SlackBot, bot_config, running_bot

ADMIN = "UADMIN01"
USER = "UUSER001"
ALERTS = "C0ALERTS"


def alarm(subject: str = "carol@example.com", kind: str = "account", **kw) -> PolicyAlarm:
    values = {
        "rule": "account_messages_per_minute",
        "subject_kind": kind,
        "subject": subject,
        "count": 42,
        "threshold": 10,
        "window_seconds": 60,
        "at": datetime(2026, 12, 1, 5, 0, tzinfo=UTC),
        "client_addresses": ("203.0.113.7", "198.51.100.<9>"),
        "sample_recipients": ("victim@example.net", "<!channel>@x.example"),
        "policy_context": "mx1",
    }
    values.update(kw)
    return PolicyAlarm(**values)


@pytest.fixture
async def bot(slack: SlackStandIn, tmp_path) -> AsyncIterator[SlackBot]:
    store = Store(tmp_path / "relaywatch.db")
    config = bot_config(slack, [ADMIN])
    config.slack.digest_channel = ALERTS
    async with running_bot(config, store, slack) as running:
        poster = AlarmPoster(config, store, running.services.poster, ALERTS, interval=0.2)
        task = asyncio.create_task(poster.run())
        try:
            yield running
        finally:
            task.cancel()
    store.close()


def buttons_of(params: dict) -> dict[str, dict]:
    return {
        e["action_id"]: e for b in params["blocks"] if b["type"] == "actions" for e in b["elements"]
    }


async def posted_alert(bot: SlackBot) -> dict:
    (post,) = await bot.slack.wait_for("chat.postMessage", within=5)
    return post.params


async def threaded_alert(bot: SlackBot):
    """The open alert once its thread is recorded (just after the post returns)."""
    for _ in range(100):
        alerts = bot.store.alerts("open")
        if alerts and alerts[0].thread_ts:
            return alerts[0]
        await asyncio.sleep(0.02)
    raise AssertionError("the alert's thread was never recorded")


async def test_alarm_reaches_slack_with_four_confirmed_buttons(bot: SlackBot) -> None:
    started = asyncio.get_running_loop().time()
    bot.store.record_policy_alarm(alarm())
    params = await posted_alert(bot)
    assert asyncio.get_running_loop().time() - started < 5
    assert params["channel"] == ALERTS
    text = params["text"]
    assert "carol@example.com" in text and "*42* messages in a minute" in text
    assert "threshold 10" in text and "203.0.113.7" in text and "victim@example.net" in text
    # outside text is inert: no raw <...> reaches Slack markup
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert "198.51.100.&lt;9&gt;" in text
    found = buttons_of(params)
    assert list(found) == ["contain_block", "contain_hold", "contain_throttle", "contain_dismiss"]
    assert found["contain_block"]["text"]["text"] == "Block account"
    assert found["contain_block"]["value"].startswith("block account carol@example.com from alarm")
    assert found["contain_throttle"]["value"].startswith("throttle account carol@example.com 20/h")
    assert all("confirm" in b for b in found.values())
    alert = await threaded_alert(bot)
    assert alert.subject_key == "policy:account_messages_per_minute:account:carol@example.com"
    assert alert.channel == ALERTS and alert.kind == "policy"
    assert bot.store.unposted_policy_alarms() == []

    # the same rule and subject in the next minute: a follow-up in the alert's thread, not a
    # second alert (the same minute again is one alarm already: the store drops the repeat)
    assert bot.store.record_policy_alarm(alarm(count=50)) == 0
    bot.store.record_policy_alarm(alarm(count=77, at=datetime(2026, 12, 1, 5, 1, tzinfo=UTC)))
    posts = await bot.slack.wait_for("chat.postMessage", count=2, within=5)
    assert posts[1].params["thread_ts"] == alert.thread_ts
    assert "*77*" in posts[1].params["text"]
    assert len(bot.store.alerts()) == 1


async def test_host_alarm_gets_block_host(bot: SlackBot) -> None:
    bot.store.record_policy_alarm(
        alarm("192.168.1.50", "host", rule="host_outbound_per_hour", window_seconds=3600)
    )
    found = buttons_of(await posted_alert(bot))
    assert found["contain_block"]["text"]["text"] == "Block host"
    assert found["contain_hold"]["value"].startswith("hold host 192.168.1.50 ")


async def test_loopback_host_gets_only_dismiss(bot: SlackBot) -> None:
    bot.store.record_policy_alarm(alarm("127.0.0.1", "host", rule="host_outbound_per_hour"))
    params = await posted_alert(bot)
    assert list(buttons_of(params)) == ["contain_dismiss"]
    assert "cannot be contained" in str(params["blocks"])


async def test_non_admin_press_is_refused_and_admin_press_contains(bot: SlackBot) -> None:
    bot.store.record_policy_alarm(alarm())
    params = await posted_alert(bot)
    alert = await threaded_alert(bot)
    value = buttons_of(params)["contain_block"]["value"]

    assert await bot.press("contain_block", value, USER, alert.thread_ts, ALERTS) == 200
    await bot.settle()
    assert bot.store.containments() == []
    (private,) = bot.slack.of("chat.postEphemeral")
    assert private.params["user"] == USER and "only relaywatch admins" in private.params["text"]
    denied = bot.store.audit_log()[0]
    assert (denied.user_id, denied.command, denied.allowed) == (USER, "contain", False)

    await bot.press("contain_block", value, ADMIN, alert.thread_ts, ALERTS)
    await bot.settle()
    (entry,) = bot.store.active_containments()
    assert (entry.subject_kind, entry.subject, entry.action) == (
        "account",
        "carol@example.com",
        "block",
    )
    assert (entry.channel, entry.thread_ts) == (ALERTS, alert.thread_ts)
    assert entry.reason.startswith("from alarm account_messages_per_minute: 42 messages")
    reply = bot.slack.of("chat.postMessage")[-1].params
    assert reply["thread_ts"] == alert.thread_ts
    assert "Blocked account `carol@example.com` until" in reply["text"]
    allowed = bot.store.audit_log()[0]
    assert (allowed.user_id, allowed.command, allowed.allowed) == (ADMIN, "contain", True)


async def test_dismiss_closes_the_alert_and_contains_nothing(bot: SlackBot) -> None:
    bot.store.record_policy_alarm(alarm())
    params = await posted_alert(bot)
    alert = await threaded_alert(bot)
    value = buttons_of(params)["contain_dismiss"]["value"]
    await bot.press("contain_dismiss", value, USER, alert.thread_ts, ALERTS)
    await bot.settle()
    assert bot.store.alerts("open")  # a non-admin cannot hide it
    await bot.press("contain_dismiss", value, ADMIN, alert.thread_ts, ALERTS)
    await bot.settle()
    assert bot.store.alerts("open") == [] and bot.store.containments() == []
    assert "Dismissed by <@UADMIN01>" in bot.slack.of("chat.postMessage")[-1].params["text"]


async def test_auto_action_holds_and_says_so_in_the_thread(bot: SlackBot) -> None:
    bot.services.config.policy.auto_action = {"account_messages_per_minute": "hold"}
    bot.store.record_policy_alarm(alarm())
    opening, note = await bot.slack.wait_for("chat.postMessage", count=2, within=5)
    (entry,) = bot.store.active_containments()
    assert (entry.action, entry.set_by) == ("hold", "relaywatch")
    assert note.params["thread_ts"] == entry.thread_ts and opening.params["channel"] == ALERTS
    assert "automatic action" in note.params["text"] and "hold queue" in note.params["text"]
    assert bot.store.audit_log()[0].user_id == "relaywatch"


async def test_two_posters_on_one_store_post_each_alarm_once(bot: SlackBot, tmp_path) -> None:
    second_store = Store(bot.store.path)
    try:
        other = AlarmPoster(
            bot.services.config, second_store, bot.services.poster, ALERTS, interval=0.2
        )
        task = asyncio.create_task(other.run())
        for n in range(5):
            bot.store.record_policy_alarm(alarm(f"user{n}@example.com"))
        await bot.slack.wait_for("chat.postMessage", count=5, within=5)
        await asyncio.sleep(0.5)  # a duplicate would arrive within the next poll rounds
        task.cancel()
        assert len(bot.slack.of("chat.postMessage")) == 5
    finally:
        second_store.close()


async def test_auto_action_never_replaces_an_admins_entry(bot: SlackBot) -> None:
    from datetime import timedelta

    bot.services.config.policy.auto_action = {"account_messages_per_minute": "hold"}
    bot.store.add_containment(
        "account",
        "carol@example.com",
        "block",
        expires_at=datetime.now(UTC) + timedelta(hours=2),
        set_by=ADMIN,
    )
    bot.store.record_policy_alarm(alarm())
    await posted_alert(bot)
    with pytest.raises(AssertionError):  # an automatic action would post in the thread
        await bot.slack.wait_for("chat.postMessage", count=2, within=1)
    (entry,) = bot.store.active_containments()
    assert (entry.action, entry.set_by) == ("block", ADMIN)
