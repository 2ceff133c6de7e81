"""The real Bolt app in HTTP mode, driven as Slack drives it (signed form POSTs), against a local
stand-in for Slack's Web API and response_url."""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import SimpleNamespace

import aiohttp
import pytest

from bot.app import HttpServer, build_app, run_socket_mode, start_http
from bot.commands import chat_commands, mailhealth
from bot.commands.base import CommandContext
from bot.config import Config
from bot.render.reply import ChatReply, ReplyFile, buttons, header, sections
from bot.slack.services import BotServices
from bot.store import Store
from tests.fixtures.slack_api import (
    Fault,
    SlackStandIn,
    action_body,
    event_body,
    sign,
    slash_body,
)

SECRET = "test-signing-secret"
ADMIN = "UADMIN01"
USER = "UUSER001"


async def _boom(ctx: CommandContext, text: str) -> ChatReply:
    raise RuntimeError("engine exploded with a secret path /etc/relaywatch")


async def _check(ctx: CommandContext, text: str) -> ChatReply:
    """Like an engine command: non-admins only for watch-list targets; progress; details."""
    ctx.require_watched(text)
    await ctx.progress("1/3 lists")
    await asyncio.sleep(0.12)
    await ctx.progress("2/3 lists")
    await asyncio.sleep(0.12)
    check_id = ctx.store.record_check("blacklist", text, "ok", {"target": text, "listed": []})
    return ChatReply(
        text=f"{text}: not listed",
        blocks=[
            header(f"Blacklist check: {text}"),
            *sections(f"`{text}` is on none of 3 lists."),
            buttons(
                ("rerun", "Re-run", f"check {text}"), ("show_details", "Details", str(check_id))
            ),
        ],
        thread=[ChatReply(text="per-list answers", blocks=sections("zen: no answer"))],
        file=ReplyFile("report.txt", "Full report", "line\n" * 50),
    )


def _module(name: str, run) -> SimpleNamespace:
    return SimpleNamespace(NAME=name, USAGE=f"/{name} <target>", SUMMARY=name, run=run)


@dataclass
class Bot:
    server: HttpServer
    services: BotServices
    store: Store
    slack: SlackStandIn
    session: aiohttp.ClientSession

    async def post(self, body: str, headers: dict[str, str]) -> tuple[int, str, float]:
        started = time.perf_counter()
        async with self.session.post(self.server.url, data=body, headers=headers) as resp:
            text = await resp.text()
            return resp.status, text, time.perf_counter() - started

    async def slash(self, command: str, text: str, user: str = USER) -> tuple[int, str, float]:
        body = slash_body(command, text, user_id=user, response_url=self.slack.response_url())
        return await self.post(body, sign(SECRET, body))

    async def settle(self) -> None:
        assert await self.services.work.drain(within=10)
        await self.services.dispatcher.audit.drain()


@pytest.fixture
async def bot(slack: SlackStandIn, tmp_path) -> AsyncIterator[Bot]:
    config = Config()
    config.secrets.slack_bot_token = "xoxb-test"
    config.secrets.slack_signing_secret = SECRET
    config.slack.api_url = slack.api_url
    config.slack.admins = [ADMIN]
    store = Store(tmp_path / "relaywatch.db")
    commands = {
        **chat_commands(),  # the real /blacklist, /relaycheck, /mailsummary, /mailhealth
        "boom": _module("boom", _boom),
        "check": _module("check", _check),
    }
    app, services = build_app(config, store, commands=commands)
    services.progress_first_after = 0.05
    services.progress_interval = 0.05
    server = await start_http(app, "127.0.0.1", 0)
    async with aiohttp.ClientSession() as session:
        yield Bot(server, services, store, slack, session)
        await services.work.drain(within=10)
    await server.stop()
    store.close()


def _texts(calls) -> str:
    return json.dumps([c.params for c in calls])


async def test_slash_command_acks_fast_then_posts_progress_and_result(bot: Bot) -> None:
    bot.store.add_watch("ip", "192.0.2.1")
    status, body, elapsed = await bot.slash("/check", "192.0.2.1")
    assert status == 200
    assert "on it" in body
    assert elapsed < 0.5
    # the ack came back before the work did anything visible
    assert not bot.slack.of("chat.postMessage")
    await bot.settle()
    posts = bot.slack.of("chat.postMessage")
    progress = posts[0]
    assert "checking" in progress.params["text"]
    updates = bot.slack.of("chat.update")
    assert updates, "progress edits and the result replace the checking message"
    final = updates[-1].params
    assert final["ts"] == "1764363600.000001"
    assert final["text"] == "192.0.2.1: not listed"
    assert final["blocks"][0]["type"] == "header"
    action_ids = [
        e["action_id"] for b in final["blocks"] if b["type"] == "actions" for e in b["elements"]
    ]
    assert action_ids == ["rerun", "show_details"]
    # the thread reply and the file sit under the result message
    thread_posts = [p for p in posts[1:]]
    assert [p.params["thread_ts"] for p in thread_posts] == [final["ts"]]
    complete = bot.slack.of("files.completeUploadExternal")[0].params
    assert complete["thread_ts"] == final["ts"]
    assert bot.slack.of("upload")[0].params["body"] == b"line\n" * 50
    entry = bot.store.audit_log()[0]
    assert (entry.user_id, entry.command, entry.args, entry.allowed) == (
        USER,
        "check",
        "192.0.2.1",
        True,
    )


async def test_every_message_has_a_text_fallback(bot: Bot) -> None:
    bot.store.add_watch("ip", "192.0.2.1")
    await bot.slash("/check", "192.0.2.1")
    await bot.settle()
    for call in bot.slack.of("chat.postMessage") + bot.slack.of("chat.update"):
        assert call.params.get("text"), call


async def test_forged_signature_is_rejected_and_nothing_runs(bot: Bot) -> None:
    body = slash_body("/boom", "x", response_url=bot.slack.response_url())
    headers = sign("not-the-secret", body)
    status, _, _ = await bot.post(body, headers)
    assert status == 401
    await asyncio.sleep(0.1)
    await bot.settle()
    assert bot.store.audit_log() == []
    assert [c.method for c in bot.slack.calls if c.method != "auth.test"] == []


async def test_stale_timestamp_is_rejected(bot: Bot) -> None:
    body = slash_body("/mailhealth", "watch list", response_url=bot.slack.response_url())
    status, _, _ = await bot.post(body, sign(SECRET, body, timestamp=int(time.time()) - 600))
    assert status == 401
    await bot.settle()
    assert bot.store.audit_log() == []
    assert not bot.slack.of("respond") and not bot.slack.of("chat.postMessage")


async def test_non_admin_denied_for_target_off_the_watch_list(bot: Bot) -> None:
    status, _, _ = await bot.slash("/check", "203.0.113.9")
    assert status == 200
    await bot.settle()
    (answer,) = bot.slack.of("respond")
    assert answer.params["response_type"] == "ephemeral"
    assert "not on the watch list" in answer.params["text"]
    assert not bot.slack.of("chat.postMessage")
    entry = bot.store.audit_log()[0]
    assert (entry.user_id, entry.allowed) == (USER, False)
    assert "not on the watch list" in entry.reason


async def test_admin_may_check_any_target(bot: Bot) -> None:
    await bot.slash("/check", "203.0.113.9", user=ADMIN)
    await bot.settle()
    assert not bot.slack.of("respond")
    assert bot.slack.of("chat.update")[-1].params["text"] == "203.0.113.9: not listed"


async def test_admin_via_usergroup_is_looked_up_once(bot: Bot) -> None:
    bot.services.config.slack.admin_usergroup = "S0ADMINS"
    bot.services.dispatcher.admins.usergroup = "S0ADMINS"
    bot.slack.usergroups["S0ADMINS"] = ["UGROUP01"]
    await bot.slash("/mailhealth", "watch add 192.0.2.77", user="UGROUP01")
    await bot.slash("/mailhealth", "watch add 192.0.2.78", user="UGROUP01")
    await bot.settle()
    assert [i.value for i in bot.store.watch_list()] == ["192.0.2.77", "192.0.2.78"]
    assert len(bot.slack.of("usergroups.users.list")) == 1


async def test_watch_add_by_admin_and_denied_for_others(bot: Bot) -> None:
    await bot.slash("/mailhealth", "watch add 192.0.2.0/24", user=ADMIN)
    await bot.settle()
    assert [(i.kind, i.value) for i in bot.store.watch_list()] == [("cidr", "192.0.2.0/24")]
    posted = bot.slack.of("chat.postMessage")[-1].params
    assert "192.0.2.0/24" in posted["text"] and posted["channel"] == "C0CHAN"

    await bot.slash("/mailhealth", "watch remove 192.0.2.0/24", user=USER)
    await bot.settle()
    assert len(bot.store.watch_list()) == 1
    (denied,) = bot.slack.of("respond")
    assert denied.params["response_type"] == "ephemeral"
    assert "only admins" in denied.params["text"]
    allowed = [(e.user_id, e.allowed) for e in reversed(bot.store.audit_log())]
    assert allowed == [(ADMIN, True), (USER, False)]


async def test_usage_error_is_ephemeral(bot: Bot) -> None:
    await bot.slash("/mailhealth", "watch add not_a_target!!", user=ADMIN)
    await bot.settle()
    (answer,) = bot.slack.of("respond")
    assert answer.params["response_type"] == "ephemeral"
    assert answer.params["text"].count("Usage:") == 1
    assert bot.store.watch_list() == []


@pytest.mark.parametrize(
    ("command", "text"),
    [("/blacklist", "nonsense!!"), ("/mailsummary", "yesterday"), ("/relaycheck", "bad host!")],
)
async def test_check_usage_errors_show_the_usage_once(bot: Bot, command: str, text: str) -> None:
    await bot.slash(command, text, user=ADMIN)
    await bot.settle()
    (answer,) = bot.slack.of("respond")
    assert answer.params["response_type"] == "ephemeral"
    assert answer.params["text"].count("Usage:") == 1
    assert bot.store.checks("blacklist") == bot.store.checks("relay") == []


async def test_exception_becomes_error_id_and_bot_keeps_serving(bot: Bot, caplog) -> None:
    await bot.slash("/boom", "x", user=ADMIN)
    await bot.settle()
    message = bot.slack.of("chat.postMessage")[-1].params["text"]
    assert "error id" in message
    assert "/etc/relaywatch" not in message  # the trace stays in the log
    error_id = message.split("error id `")[1].split("`")[0]
    logged = [r for r in caplog.records if getattr(r, "error_id", None) == error_id]
    assert logged and logged[0].exc_info is not None
    assert bot.store.audit_log()[0].reason == f"error {error_id}"

    await bot.slash("/mailhealth", "watch list")
    await bot.settle()
    assert "watch list is empty" in bot.slack.of("chat.postMessage")[-1].params["text"]


async def test_rate_limited_post_is_retried_after_retry_after(bot: Bot) -> None:
    bot.slack.fail("chat.postMessage", Fault(status=429, retry_after=1))
    await bot.slash("/mailhealth", "watch list")
    await bot.settle()
    first, second = bot.slack.of("chat.postMessage")
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 1.0


async def test_mention_answers_in_a_thread(bot: Bot) -> None:
    body = event_body("<@UBOT0001> mailhealth watch list")
    status, _, _ = await bot.post(body, sign(SECRET, body, content_type="application/json"))
    assert status == 200
    await bot.settle()
    (post,) = bot.slack.of("chat.postMessage")
    assert post.params["thread_ts"] == "1764363700.000100"
    assert "watch list is empty" in post.params["text"]


async def test_show_details_button_replies_in_the_thread(bot: Bot) -> None:
    check_id = bot.store.record_check("blacklist", "192.0.2.1", "ok", {"target": "192.0.2.1"})
    body = action_body("show_details", str(check_id), message_ts="1764363600.000042")
    status, _, _ = await bot.post(body, sign(SECRET, body))
    assert status == 200
    await bot.settle()
    (post,) = bot.slack.of("chat.postMessage")
    assert post.params["thread_ts"] == "1764363600.000042"
    assert "192.0.2.1" in post.params["text"]
    assert bot.store.audit_log()[0].command == "show_details"


async def test_rerun_button_runs_the_command_again(bot: Bot) -> None:
    body = action_body("rerun", "mailhealth watch list", user_id=ADMIN)
    status, _, _ = await bot.post(body, sign(SECRET, body))
    assert status == 200
    await bot.settle()
    assert "watch list is empty" in bot.slack.of("chat.postMessage")[0].params["text"]
    assert (bot.store.audit_log()[0].command, bot.store.audit_log()[0].args) == (
        "mailhealth",
        "watch list",
    )


async def test_acknowledge_button_records_who_and_when(bot: Bot) -> None:
    alert = bot.store.create_alert("blacklist:192.0.2.1", "blacklist", "listed on zen")
    assert alert is not None
    body = action_body("acknowledge", str(alert.id), user_id=USER, message_ts="1764363600.000007")
    await bot.post(body, sign(SECRET, body))
    await bot.settle()
    (stored,) = bot.store.alerts()
    assert stored.acknowledged_by == USER and stored.acknowledged_at
    (post,) = bot.slack.of("chat.postMessage")
    assert post.params["thread_ts"] == "1764363600.000007"
    assert f"<@{USER}>" in post.params["text"]


async def test_channel_not_allowed_is_denied(bot: Bot) -> None:
    bot.services.config.slack.allowed_channels = ["C0OPS"]
    status, body, _ = await bot.slash("/mailhealth", "watch list", user=ADMIN)
    await bot.settle()
    # answered in the ack itself: no Web API call for a refusal
    assert status == 200 and "not enabled in this channel" in body
    assert [c.method for c in bot.slack.calls if c.method != "auth.test"] == []
    assert bot.store.audit_log()[0].allowed is False


async def test_bot_not_in_channel_answers_privately_with_a_hint(bot: Bot) -> None:
    bot.slack.fail("chat.postMessage", Fault(status=200, error="not_in_channel"))
    await bot.slash("/mailhealth", "watch list")
    await bot.settle()
    (answer,) = bot.slack.of("respond")
    assert "/invite @relaywatch" in answer.params["text"]
    assert "watch list is empty" in answer.params["text"]


async def test_mention_denial_is_ephemeral_in_the_thread(bot: Bot) -> None:
    body = event_body("<@UBOT0001> check 203.0.113.5", user_id=USER)
    await bot.post(body, sign(SECRET, body, content_type="application/json"))
    await bot.settle()
    (private,) = bot.slack.of("chat.postEphemeral")
    assert private.params["user"] == USER
    assert private.params["thread_ts"] == "1764363700.000100"
    assert "not on the watch list" in private.params["text"]
    assert not bot.slack.of("chat.postMessage")


async def test_socket_mode_acks_over_the_websocket_and_posts(slack: SlackStandIn, tmp_path) -> None:
    config = Config()
    config.secrets.slack_bot_token = "xoxb-test"
    config.secrets.slack_app_token = "xapp-test"
    config.slack.api_url = slack.api_url
    config.slack.admins = [ADMIN]
    with Store(tmp_path / "relaywatch.db") as store:
        app, services = build_app(config, store, commands={"mailhealth": mailhealth})
        stop = asyncio.Event()
        running = asyncio.create_task(run_socket_mode(app, "xapp-test", stop))
        try:
            await slack.wait_for("socket.connect", within=10)
            payload = dict(
                urllib.parse.parse_qsl(
                    slash_body("/mailhealth", "watch add 192.0.2.5", user_id=ADMIN)
                )
            )
            await slack.send_envelope("slash_commands", payload, "env-1")
            (ack,) = await slack.wait_for("socket.ack", within=10)
            assert ack.params["envelope_id"] == "env-1"
            assert "on it" in ack.params["payload"]["text"]
            (post,) = await slack.wait_for("chat.postMessage", within=10)
            assert "192.0.2.5" in post.params["text"]
            assert ack.at <= post.at
            assert await services.work.drain(within=10)
        finally:
            stop.set()
            await asyncio.wait_for(running, 10)
        assert [i.value for i in store.watch_list()] == ["192.0.2.5"]


async def test_real_relaycheck_then_show_details_in_the_thread(bot: Bot) -> None:
    from bot.commands import relaycheck
    from tests.fixtures.relay_smtp import RelayPolicy, closed_rcpt, smtp_server

    bot.services.dispatcher.commands["relaycheck"] = relaycheck
    config = bot.services.config
    config.relay.connect_timeout = config.relay.banner_timeout = 2.0
    config.relay.command_timeout = 2.0
    async with smtp_server(RelayPolicy(rcpt=closed_rcpt)) as server:
        bot.store.add_watch("server", server.target)
        config.relay.extra_ports = [server.port]  # chat only probes SMTP ports otherwise
        status, _, elapsed = await bot.slash("/relaycheck", server.target)
        assert status == 200 and elapsed < 0.5
        await bot.settle()
    # the result is the top-level message (or the edit that replaced the progress message)
    updates = bot.slack.of("chat.update")
    top = [c for c in bot.slack.of("chat.postMessage") if not c.params.get("thread_ts")]
    assert len(top) == 1
    final = updates[-1].params if updates else top[0].params
    result_ts = updates[-1].params["ts"] if updates else "1764363600.000001"
    buttons_ = {
        e["action_id"]: e["value"]
        for b in final["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    }
    assert buttons_["rerun"] == f"relaycheck {server.target}"
    (record,) = bot.store.checks("relay")
    assert record.status == "ok"

    # Show details on that result renders the stored check with bot.render.relay.details_text
    bot.slack.calls.clear()
    body = action_body("show_details", str(record.id), message_ts=result_ts)
    await bot.post(body, sign(SECRET, body))
    await bot.settle()
    details = bot.slack.of("chat.postMessage")
    assert details and all(d.params["thread_ts"] == result_ts for d in details)
    shown = details[0].params["text"]
    assert f"=== {server.target}" in shown  # the relay renderer's transcript, not raw JSON
    assert bot.store.audit_log()[0].command == "show_details"


async def test_user_typed_control_sequences_are_echoed_inert(bot: Bot) -> None:
    """What a user typed reaches Slack as <!channel>, <@U…|…>, <http://…|…>: the ack, usage
    errors, refusals and unknown-command answers echo it escaped, never live."""
    typed = "<!channel> <!here|here> <@U0VICTIM|boss> <http://evil.example|click>"
    bodies = []
    for command, text in (
        ("/relaycheck", f"--bogus {typed}"),
        ("/mailhealth", f"watch frob {typed}"),
        ("/check", typed),  # a non-admin's refusal names the target
        ("/nosuch", typed),
    ):
        status, body, _ = await bot.slash(command, text)
        assert status == 200
        bodies.append(body)
    event = event_body(f"<@UBOT0001> blacklist {typed}")
    await bot.post(event, sign(SECRET, event, content_type="application/json"))
    await bot.settle()
    sent = [*bodies, *(json.dumps(c.params) for c in bot.slack.calls)]
    # the unknown command is refused in the ack itself (no API call); the others answer later
    assert len(bot.slack.of("respond")) >= 3
    for text in sent:
        for markup in re.findall(r"<[^<>]*>", text.replace("\\u003c", "<")):
            assert re.fullmatch(r"<@(?:UUSER001|UADMIN01)>", markup), (markup, text)
    joined = "\n".join(sent)
    assert "&lt;!channel&gt;" in joined and "&lt;@U0VICTIM|boss&gt;" in joined
