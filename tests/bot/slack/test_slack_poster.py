"""SlackPoster against the local Slack stand-in: limits, thread replies, files, retries."""

from __future__ import annotations

import pytest

from bot.config import Config
from bot.render.reply import ChatReply, ReplyFile, context, detail_reply, sections
from bot.slack import SlackPoster, api_base_url, web_client
from tests.fixtures.slack_api import Fault, SlackStandIn


@pytest.fixture
def poster(slack: SlackStandIn) -> SlackPoster:
    config = Config()
    config.secrets.slack_bot_token = "xoxb-test"
    return SlackPoster(web_client(config, env={"SLACK_API_URL": slack.api_url}))


def test_api_url_from_environment_or_config() -> None:
    config = Config()
    config.slack.api_url = "https://slack-gov.com/api"
    assert api_base_url(config, env={}) == "https://slack-gov.com/api/"
    assert api_base_url(config, env={"SLACK_API_URL": "http://127.0.0.1:9/api/"}) == (
        "http://127.0.0.1:9/api/"
    )


async def test_more_than_50_blocks_overflow_into_the_thread(
    poster: SlackPoster, slack: SlackStandIn
) -> None:
    reply = ChatReply(text="big", blocks=[context(f"row {i}") for i in range(120)])
    ts = await poster.post("C1", reply)
    posts = slack.of("chat.postMessage")
    assert all(len(p.params["blocks"]) <= 50 for p in posts)
    assert posts[0].params.get("thread_ts") is None
    assert [p.params["thread_ts"] for p in posts[1:]] == [ts, ts]
    shown = [b["elements"][0]["text"] for p in posts for b in p.params["blocks"]]
    assert [s for s in shown if s.startswith("row")] == [f"row {i}" for i in range(120)]


async def test_long_detail_is_uploaded_as_a_file_in_the_thread(
    poster: SlackPoster, slack: SlackStandIn
) -> None:
    body = "x" * 20_000
    reply = ChatReply(
        text="parent", blocks=sections("parent"), thread=[detail_reply("Report", body, "r.txt")]
    )
    ts = await poster.post("C1", reply)
    (complete,) = slack.of("files.completeUploadExternal")
    assert complete.params["channel_id"] == "C1" and complete.params["thread_ts"] == ts
    assert slack.of("upload")[0].params["body"] == body.encode()


async def test_update_is_retried_after_429(poster: SlackPoster, slack: SlackStandIn) -> None:
    slack.fail("chat.update", Fault(status=429, retry_after=0, times=2))
    await poster.update("C1", "1.2", ChatReply(text="result"))
    statuses = [c.status for c in slack.of("chat.update")]
    assert statuses == [429, 429, 200]
    assert slack.of("chat.update")[-1].params["blocks"][0]["text"]["text"] == "result"


async def test_file_on_the_message_itself_goes_under_it(
    poster: SlackPoster, slack: SlackStandIn
) -> None:
    reply = ChatReply(text="r", file=ReplyFile("a.txt", "A", "content"))
    ts = await poster.post("C1", reply, thread_ts="99.1")
    assert ts != "99.1"
    # already a thread reply: the file joins the same thread
    assert slack.of("files.completeUploadExternal")[0].params["thread_ts"] == "99.1"
