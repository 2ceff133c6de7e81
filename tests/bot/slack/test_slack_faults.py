"""Slack API faults against the stand-in: retries with an injected sleep, plain-text fallbacks,
and — through the real app — the user always gets the final answer."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.config import Config
from bot.render.reply import ChatReply, context, header, sections
from bot.slack import SlackPoster, web_client
from bot.slack.limits import MAX_MESSAGE_TEXT, fit, violations
from bot.slack.poster import DeliveryError, DeliveryFailure, RetryPolicy, block_dicts
from tests.bot import test_app
from tests.bot.test_app import Bot
from tests.fixtures.slack_api import Fault, SlackStandIn

bot = test_app.bot


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def failures() -> list[DeliveryFailure]:
    return []


@pytest.fixture
def poster(slack: SlackStandIn, sleeps: Sleeps, failures: list[DeliveryFailure]) -> SlackPoster:
    config = Config()
    config.secrets.slack_bot_token = "xoxb-test"
    client = web_client(config, env={"SLACK_API_URL": slack.api_url})
    return SlackPoster(client, retry=RetryPolicy(sleep=sleeps), on_failure=failures.append)


def _result() -> ChatReply:
    return ChatReply(
        text="192.0.2.1: listed on 2 lists",
        blocks=[
            header("Blacklist check: 192.0.2.1"),
            *sections("*listed* on zen and sbl"),
            *sections("per-list evidence\n" + "zen: 127.0.0.2\n" * 400),
        ],
    )


async def test_four_429s_are_waited_out(poster, slack, sleeps) -> None:
    slack.fail("chat.postMessage", Fault(status=429, retry_after=7, times=4))
    await poster.post("C1", _result())
    statuses = [c.status for c in slack.of("chat.postMessage")]
    assert statuses == [429, 429, 429, 429, 200]
    assert sleeps.waits == [7, 7, 7, 7]


async def test_a_retry_after_beyond_the_bound_is_not_waited_for(poster, slack, sleeps) -> None:
    slack.fail("chat.update", Fault(status=429, retry_after=3600))
    slack.fail("chat.update", Fault(status=429, retry_after=3600))
    with pytest.raises(DeliveryError):
        await poster.update("C1", "1.1", _result())
    assert sleeps.waits == []


@pytest.mark.parametrize(
    "fault",
    [
        Fault(status=500),
        Fault(status=502, html=True),
        Fault(status=503, retry_after=None, times=3),
        Fault(status=200, error="internal_error", times=2),
        Fault(status=500, drop=True),
    ],
    ids=["500", "502-html", "503x3", "internal_error", "dropped"],
)
async def test_temporary_failures_are_retried(poster, slack, sleeps, failures, fault) -> None:
    failing = fault.times
    slack.fail("chat.postMessage", fault)
    await poster.post("C1", _result())
    posts = slack.of("chat.postMessage")
    assert len(posts) == failing + 1
    # the message that got through is the real one, blocks and all
    assert posts[-1].params["blocks"][0]["type"] == "header"
    assert sleeps.waits == [1.0, 2.0, 4.0][:failing]
    assert failures == []


@pytest.mark.parametrize("error", ["invalid_blocks", "msg_too_long", "invalid_arguments"])
async def test_a_refused_payload_falls_back_to_plain_text_and_a_file(
    poster, slack, failures, error
) -> None:
    slack.fail("chat.postMessage", Fault(status=200, error=error))
    ts = await poster.post("C1", _result())
    refused, plain = slack.of("chat.postMessage")
    assert "blocks" in refused.params and "blocks" not in plain.params
    assert "listed on 2 lists" in plain.params["text"]
    assert "attached" in plain.params["text"]
    (upload,) = slack.of("files.completeUploadExternal")
    assert upload.params["thread_ts"] == ts
    assert b"*listed* on zen and sbl" in slack.of("upload")[0].params["body"]
    assert [(f.method, f.error) for f in failures] == [("chat.postMessage", error)]
    assert failures[0].recovered


async def test_internal_error_that_persists_ends_in_plain_text(poster, slack, failures) -> None:
    slack.fail("chat.postMessage", Fault(status=200, error="internal_error", times=6))
    await poster.post("C1", _result())
    posts = slack.of("chat.postMessage")
    assert len(posts) == 7 and "blocks" not in posts[-1].params
    assert failures[0].error == "internal_error"


async def test_a_short_refused_reply_needs_no_file(poster, slack, failures) -> None:
    slack.fail("chat.postMessage", Fault(status=200, error="invalid_blocks"))
    await poster.post("C1", ChatReply(text="done", blocks=sections("*all* fine")))
    _, plain = slack.of("chat.postMessage")
    assert plain.params["text"] == "done\n*all* fine"
    assert not slack.of("files.completeUploadExternal")
    assert failures[0].recovered == "sent as plain text"


async def test_a_refused_edit_is_made_in_plain_text(poster, slack, failures) -> None:
    slack.fail("chat.update", Fault(status=200, error="invalid_blocks"))
    await poster.update("C1", "1764363600.000001", _result())
    _, plain = slack.of("chat.update")
    assert plain.params["blocks"] == [] and "listed on 2 lists" in plain.params["text"]
    assert slack.of("files.completeUploadExternal")


async def test_not_in_channel_is_not_papered_over(poster, slack) -> None:
    from slack_sdk.errors import SlackApiError

    slack.fail("chat.postMessage", Fault(status=200, error="not_in_channel"))
    with pytest.raises(SlackApiError):
        await poster.post("C1", _result())
    assert len(slack.of("chat.postMessage")) == 1


# -- limits ---------------------------------------------------------------------------------


def test_fit_keeps_every_limit() -> None:
    huge = ChatReply(
        text="x" * 45_000,
        blocks=[
            header("h" * 400),
            *[context(f"row {i}") for i in range(70)],
            {"type": "section", "text": {"type": "mrkdwn", "text": "y\n" * 4000}},
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": str(i)} for i in range(23)],
            },
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": f"a{i}",
                        "text": {"type": "plain_text", "text": "L" * 100},
                        "value": "v" * 3000,
                    }
                    for i in range(30)
                ],
            },
        ],
    )
    fitted = fit(huge)

    def walk(reply: ChatReply) -> list[ChatReply]:
        return [reply, *(r for sub in reply.thread for r in walk(sub))]

    for message in walk(fitted):
        assert violations(message.text, block_dicts(message)) == []
    assert len(fitted.text) <= MAX_MESSAGE_TEXT
    assert fitted.file is not None and fitted.file.content == "x" * 45_000


async def test_an_alert_for_a_watched_22_stays_within_the_limits(poster, slack) -> None:
    # one line per listed address of a /22: far past 40,000 characters in all
    lines = [
        f"`192.0.{i // 256}.{i % 256}` listed on zen.spamhaus.org, b.barracudacentral.org"
        for i in range(1024)
    ]
    alert = ChatReply(text="\n".join(lines), blocks=sections("\n".join(lines)))
    await poster.post("C1", alert)
    assert slack.violations == []
    top = [c for c in slack.of("chat.postMessage") if not c.params.get("thread_ts")]
    assert len(top) == 1 and len(top[0].params["text"]) <= MAX_MESSAGE_TEXT
    everything = "".join(
        str(b.get("text", {}).get("text", ""))
        for c in slack.of("chat.postMessage")
        for b in c.params.get("blocks") or []
    )
    assert all(line in everything for line in lines)  # nothing dropped, only moved


def test_the_stand_in_fails_a_payload_beyond_the_limits() -> None:
    assert violations("t", [{"type": "section", "text": {"type": "mrkdwn", "text": "z" * 3001}}])
    assert violations("t" * 40_001, [])
    assert violations(
        "t", [{"type": "context", "elements": [{"type": "mrkdwn", "text": "a"}] * 11}]
    )


# -- through the real app: the user always gets the final answer -----------------------------


FAULTS = {
    "4x429": ("chat.update", Fault(status=429, retry_after=2, times=4)),
    "http500": ("chat.update", Fault(status=500)),
    "invalid_blocks": ("chat.update", Fault(status=200, error="invalid_blocks")),
    "msg_too_long": ("chat.update", Fault(status=200, error="msg_too_long")),
    "internal_error": ("chat.update", Fault(status=200, error="internal_error", times=10)),
    "update_refused": ("chat.update", Fault(status=200, error="cant_update_message", times=10)),
    "post_refused": ("chat.postMessage", Fault(status=200, error="invalid_blocks", times=1)),
}


@pytest.mark.parametrize("name", sorted(FAULTS))
async def test_the_user_always_gets_the_final_answer(bot: Bot, name: str) -> None:
    sleeps = Sleeps()
    bot.services.poster.retry = RetryPolicy(sleep=sleeps)
    bot.store.add_watch("ip", "192.0.2.1")
    method, fault = FAULTS[name]
    # the first progress edit is what fails: a slow command shows "checking…" first
    bot.services.progress_first_after = 0.0
    bot.slack.fail(method, fault)
    status, _, elapsed = await bot.slash("/check", "192.0.2.1")
    assert status == 200 and elapsed < 1.0
    await bot.settle()
    delivered = [
        str(c.params.get("text"))
        for c in bot.slack.calls
        if c.ok and c.method in ("chat.postMessage", "chat.update", "respond")
    ]
    assert any("192.0.2.1: not listed" in t for t in delivered), (name, delivered)
    # no "checking…" message is left standing
    from tests.bot.test_app_store_locked import _progress_left_unreplaced

    assert _progress_left_unreplaced(bot) == []
    assert all(w <= 60 for w in sleeps.waits)


_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=80).map(lambda s: s * 60)
_block = st.one_of(
    _text.map(lambda t: {"type": "section", "text": {"type": "mrkdwn", "text": t or " "}}),
    _text.map(lambda t: {"type": "section", "text": {"type": "mrkdwn", "text": f"```{t}```"}}),
    _text.map(lambda t: {"type": "header", "text": {"type": "plain_text", "text": t or " "}}),
    st.lists(_text, min_size=1, max_size=30).map(
        lambda ts: {"type": "context", "elements": [{"type": "mrkdwn", "text": t} for t in ts]}
    ),
    st.lists(st.tuples(_text, _text), min_size=1, max_size=60).map(
        lambda pairs: {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": f"a{i}",
                    "text": {"type": "plain_text", "text": label or " "},
                    "value": value,
                }
                for i, (label, value) in enumerate(pairs)
            ],
        }
    ),
    st.just({"type": "divider"}),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_text, blocks=st.lists(_block, max_size=120), thread=st.lists(_text, max_size=3))
def test_fit_always_produces_payloads_within_the_limits(text, blocks, thread) -> None:
    reply = ChatReply(
        text=text * 20, blocks=blocks, thread=[ChatReply(text=t, blocks=[]) for t in thread]
    )
    fitted = fit(reply)
    pending = [fitted]
    while pending:
        message = pending.pop()
        assert violations(message.text, block_dicts(message)) == []
        pending.extend(message.thread)
    # nothing said in a section is lost: it is in the message or one of its thread replies
    said = json.dumps([block_dicts(m) for m in _walk(fitted)])
    for block in blocks:
        if block["type"] == "section" and len(block["text"]["text"]) < 50:
            assert json.dumps(block["text"]["text"])[1:-1] in said


def _walk(reply: ChatReply) -> list[ChatReply]:
    return [reply, *(r for sub in reply.thread for r in _walk(sub))]
