"""Abuse of the real Bolt app over HTTP: floods of refused requests, Slack's event redeliveries."""

from __future__ import annotations

import asyncio
import json

from bot.dispatch import Invocation
from tests.bot import test_app
from tests.bot.test_app import SECRET, USER, Bot
from tests.fixtures.slack_api import action_body, event_body, sign, slash_body

# the real app on loopback with the Slack stand-in (fixtures shared with test_app)
bot = test_app.bot


def _mention(text: str, event_id: str, user: str = USER, channel: str = "C0CHAN") -> str:
    body = json.loads(event_body(text, user_id=user, channel_id=channel))
    body["event_id"] = event_id
    return json.dumps(body)


async def _send_all(bot: Bot, requests: list[tuple[str, dict[str, str]]]) -> list[int]:
    limit = asyncio.Semaphore(20)

    async def one(body: str, headers: dict[str, str]) -> int:
        async with limit:
            status, _, _ = await bot.post(body, headers)
            return status

    return list(await asyncio.gather(*(one(b, h) for b, h in requests)))


def _api_calls(bot: Bot) -> list[str]:
    return [c.method for c in bot.slack.calls if c.method != "auth.test"]


async def test_400_refused_requests_make_bounded_audit_rows_and_api_calls(bot: Bot) -> None:
    bot.services.config.slack.allowed_channels = ["C0OPS"]
    url = bot.slack.response_url()
    requests: list[tuple[str, dict[str, str]]] = []
    for i in range(400):
        user = USER if (i // 4) % 2 else "UOTHER01"
        kind = i % 4
        if kind == 0:  # an unknown command
            body = slash_body(f"/nosuch{i}", "x", user_id=user, response_url=url)
            requests.append((body, sign(SECRET, body)))
        elif kind == 1:  # a known command from a channel that is not allowed
            body = slash_body("/mailhealth", "watch list", user_id=user, response_url=url)
            requests.append((body, sign(SECRET, body)))
        elif kind == 2:  # a button press
            body = action_body("show_details", "1", user_id=user, response_url=url)
            requests.append((body, sign(SECRET, body)))
        else:  # a mention, each a distinct event
            body = _mention("<@UBOT0001> mailhealth watch list", f"Ev{i:05d}", user=user)
            requests.append((body, sign(SECRET, body, content_type="application/json")))
    statuses = await _send_all(bot, requests)
    assert set(statuses) == {200}
    await bot.settle()
    await bot.services.dispatcher.close()
    rows = bot.store.audit_log(limit=1000)
    # per user: the first refusal, then one row counting the rest of the minute
    assert {r.user_id for r in rows} == {USER, "UOTHER01"}
    assert len(rows) == 4 and not any(r.allowed for r in rows)
    counted = sorted(r.reason for r in rows if "more refused" in r.reason)
    assert (
        counted
        == ["199 more refused within 60 s (channel not allowed, rate limit, unknown command)"] * 2
    )
    # at most one (private) answer per user that needed a Web API call; slash refusals are acks
    calls = _api_calls(bot)
    assert len(calls) <= 2, calls
    assert not bot.store.checks("blacklist")


async def test_refusal_is_answered_in_the_ack_and_rate_limit_applies_to_unknown(bot: Bot) -> None:
    answers = []
    for i in range(12):
        status, body, _ = await bot.slash(f"/nosuch{i}", "x")
        assert status == 200
        answers.append(body)
    assert "unknown command /nosuch0" in answers[0]
    assert "slow down" in answers[-1]  # 10 a minute, whatever the command
    # a real command by the same user is refused too: the limit came before parsing
    status, body, _ = await bot.slash("/mailhealth", "watch list")
    assert "slow down" in body
    await bot.settle()
    assert _api_calls(bot) == []


async def test_unknown_command_name_is_not_echoed_live(bot: Bot) -> None:
    refusal = bot.services.dispatcher.admit(Invocation("<!channel>", "", USER, "C0CHAN"))
    # the reason is plain text (the audit keeps what was typed); the reply shows it escaped
    assert refusal is not None and "<!channel>" not in refusal.shown
    assert "&lt;!channel&gt;" in refusal.shown


async def test_a_redelivered_event_runs_once(bot: Bot) -> None:
    body = _mention("<@UBOT0001> mailhealth watch list", "Ev0RETRY1")
    headers = sign(SECRET, body, content_type="application/json")
    status, _, _ = await bot.post(body, headers)
    assert status == 200
    for retry in (1, 2, 3):
        again = {**headers, "X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "timeout"}
        status, _, _ = await bot.post(body, again)
        assert status == 200
    await bot.settle()
    assert len(bot.slack.of("chat.postMessage")) == 1
    assert len(bot.store.audit_log()) == 1
    # a different event with the same text is a new request
    other = _mention("<@UBOT0001> mailhealth watch list", "Ev0RETRY2")
    await bot.post(other, sign(SECRET, other, content_type="application/json"))
    await bot.settle()
    assert len(bot.slack.of("chat.postMessage")) == 2


async def test_a_failing_listener_answers_with_an_error_id(bot: Bot, caplog) -> None:
    def broken(inv):
        raise RuntimeError("admission exploded")

    bot.services.dispatcher.admit = broken
    status, body, _ = await bot.slash("/mailhealth", "watch list")
    assert status == 200 and "could not complete" in body and "error id" in body
    error_id = body.split("error id `")[1].split("`")[0]
    logged = [r for r in caplog.records if getattr(r, "error_id", None) == error_id]
    assert len(logged) == 1 and logged[0].exc_info is not None
    assert "admission exploded" not in body


async def test_a_rerun_button_naming_a_button_action_is_refused_cleanly(bot: Bot) -> None:
    body = action_body("rerun", "show_details 1", response_url=bot.slack.response_url())
    status, _, _ = await bot.post(body, sign(SECRET, body))
    assert status == 200
    await bot.settle()
    (answer,) = bot.slack.of("respond")
    assert "unknown command /show_details" in answer.params["text"]
    assert "error id" not in answer.params["text"]
