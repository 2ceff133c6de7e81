"""`relaywatch serve`: mode selection from the tokens, and the real HTTP mode as a process."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import sys

import aiohttp
import pytest

from bot.cli.serve import ModeError, pick_mode
from bot.config import Config
from tests.fixtures.slack_api import SlackStandIn, sign, slash_body


def _args(**kw) -> argparse.Namespace:
    return argparse.Namespace(**{"http": False, "shell": False, "port": 3000, **kw})


def _config(bot: str = "", app: str = "", secret: str = "") -> Config:
    config = Config()
    config.secrets.slack_bot_token = bot
    config.secrets.slack_app_token = app
    config.secrets.slack_signing_secret = secret
    return config


def test_mode_follows_the_tokens() -> None:
    assert pick_mode(_args(), _config()).kind == "shell"
    assert pick_mode(_args(), _config("xoxb-1", "xapp-1")).kind == "socket"
    assert pick_mode(_args(http=True), _config("xoxb-1", secret="s")).kind == "http"
    assert pick_mode(_args(shell=True), _config("xoxb-1", "xapp-1")).kind == "shell"


@pytest.mark.parametrize(
    ("args", "config", "says"),
    [
        (_args(http=True), _config("xoxb-1"), "SLACK_SIGNING_SECRET"),
        (_args(http=True), _config(secret="s"), "SLACK_BOT_TOKEN"),
        (_args(), _config("xoxb-1"), "SLACK_APP_TOKEN"),
        (_args(), _config(app="xapp-1"), "SLACK_BOT_TOKEN"),
    ],
)
def test_incomplete_tokens_are_a_one_line_error(args, config, says) -> None:
    with pytest.raises(ModeError, match=says):
        pick_mode(args, config)


def _env(tmp_path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "RELAYWATCH_"))}
    env.update(
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        RELAYWATCH_SCHEDULE_ENABLED="false",
        **extra,
    )
    return env


async def test_http_mode_process_serves_signed_commands_and_stops_on_sigterm(tmp_path) -> None:
    slack = await SlackStandIn().start()
    env = _env(
        tmp_path,
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_SIGNING_SECRET="proc-secret",
        SLACK_API_URL=slack.api_url,
        RELAYWATCH_SLACK_ADMINS="UADMIN",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "serve",
        "--http",  # no --host: the default is loopback (it sits behind a TLS proxy)
        "--port",
        "0",
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
        match = re.search(r"(http://127\.0\.0\.1:\d+/slack/events)", line)
        assert match, line
        body = slash_body(
            "/mailhealth",
            "watch add 192.0.2.0/28",
            user_id="UADMIN",
            response_url=slack.response_url(),
        )
        async with aiohttp.ClientSession() as session:
            async with session.post(
                match.group(1), data=body, headers=sign("proc-secret", body)
            ) as resp:
                assert resp.status == 200
        (post,) = await slack.wait_for("chat.postMessage", within=10)
        assert "192.0.2.0/28" in post.params["text"]
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await slack.stop()


async def test_rejected_token_is_a_one_line_error(tmp_path) -> None:
    slack = await SlackStandIn().start()
    from tests.fixtures.slack_api import Fault

    slack.fail("auth.test", Fault(status=200, error="invalid_auth"))
    env = _env(
        tmp_path,
        SLACK_BOT_TOKEN="xoxb-bad",
        SLACK_APP_TOKEN="xapp-x",
        SLACK_API_URL=slack.api_url,
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "serve", env=env, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    await slack.stop()
    assert proc.returncode == 2
    assert err.decode().strip().splitlines() == [
        "relaywatch: Slack rejected SLACK_BOT_TOKEN (invalid_auth); check the token"
    ]


def test_http_binds_loopback_unless_told_otherwise() -> None:
    from bot.cli import build_parser

    parser = build_parser(["serve"])
    assert parser.parse_args(["serve", "--http"]).host == "127.0.0.1"
    assert parser.parse_args(["serve", "--http", "--host", "0.0.0.0"]).host == "0.0.0.0"
