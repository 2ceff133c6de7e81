"""Malformed requests against the real aiohttp/Bolt server on loopback: 4xx, never a 500 or a
traceback, and a flood of junk writes a bounded number of log lines."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from bot.slack.http_guard import LogThrottle
from tests.bot import test_app
from tests.bot.test_app import SECRET, Bot
from tests.fixtures.slack_api import sign, slash_body

bot = test_app.bot


def _headers(**override: str) -> dict[str, str]:
    body = slash_body("/mailhealth", "watch list")
    headers = sign(SECRET, body)
    headers.update(override)
    return {k: v for k, v in headers.items() if v != "<drop>"}


@pytest.mark.parametrize(
    ("override", "status"),
    [
        ({"X-Slack-Request-Timestamp": "abc"}, 400),
        ({"X-Slack-Request-Timestamp": ""}, 401),
        ({"X-Slack-Request-Timestamp": "1e9"}, 400),
        ({"X-Slack-Request-Timestamp": "²⁵"}, 400),
        ({"X-Slack-Request-Timestamp": "9" * 40}, 400),
        ({"X-Slack-Request-Timestamp": "-1"}, 400),
        ({"X-Slack-Request-Timestamp": "<drop>"}, 401),
        ({"X-Slack-Signature": "<drop>"}, 401),
        ({"X-Slack-Signature": ""}, 401),
        ({"X-Slack-Signature": "v0=zz"}, 400),
        ({"X-Slack-Signature": "v1=" + "0" * 64}, 400),
        ({"X-Slack-Signature": "v0=" + "é" * 64}, 400),
        ({"X-Slack-Signature": "v0=" + "0" * 64}, 401),
    ],
)
async def test_malformed_headers_are_4xx(bot: Bot, override: dict[str, str], status: int) -> None:
    body = slash_body("/mailhealth", "watch list")
    got, _, _ = await bot.post(body, _headers(**override))
    assert got == status
    await bot.settle()
    assert bot.store.audit_log() == []


async def test_huge_and_non_utf8_bodies(bot: Bot) -> None:
    huge = "x" * (2 * 1024 * 1024)
    status, _, _ = await bot.post(huge, sign(SECRET, huge))
    assert status == 413
    binary = b"\xff\xfe" * 10
    headers = sign(SECRET, "")
    async with bot.session.post(bot.server.url, data=binary, headers=headers) as resp:
        assert resp.status in (400, 401)


async def _raw(port: int, data: bytes, close_after: bool = True) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    if close_after:
        writer.write_eof()
    try:
        # a stalled client never closes: its answer's status line is enough
        read = reader.read() if close_after else reader.readline()
        return await asyncio.wait_for(read, 5)
    finally:
        writer.close()


def _half_sent(body: bytes, declared: int) -> bytes:
    headers = sign(SECRET, body.decode())
    lines = [
        "POST /slack/events HTTP/1.1",
        "Host: 127.0.0.1",
        f"Content-Length: {declared}",
        *(f"{k}: {v}" for k, v in headers.items()),
        "",
        "",
    ]
    return "\r\n".join(lines).encode() + body


async def test_400_half_sent_requests_write_few_log_lines(bot: Bot, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    body = slash_body("/mailhealth", "watch list").encode()
    port = bot.server.port

    async def one(i: int) -> bytes:
        return await _raw(port, _half_sent(body[: 10 + i % 50], len(body)))

    answers = []
    for start in range(0, 400, 50):
        answers += await asyncio.gather(*(one(i) for i in range(start, start + 50)))
    # whatever the client could still read is a 4xx, never a 500
    assert not any(b" 500 " in a for a in answers)
    await bot.settle()
    assert bot.store.audit_log() == []
    assert len(caplog.records) <= 10, [r.getMessage() for r in caplog.records[:20]]
    assert not any(r.exc_info for r in caplog.records)

    # and the server still serves a real request
    status, _, _ = await bot.slash("/mailhealth", "watch list")
    assert status == 200


async def test_a_stalled_body_is_cut_off(slack, tmp_path) -> None:
    from bot.app import build_app, start_http
    from bot.config import Config
    from bot.store import Store

    config = Config()
    config.secrets.slack_bot_token = "xoxb-test"
    config.secrets.slack_signing_secret = SECRET
    config.slack.api_url = slack.api_url
    with Store(tmp_path / "rw.db") as store:
        app, _ = build_app(config, store)
        server = await start_http(app, "127.0.0.1", 0, read_timeout=0.2)
        try:
            body = slash_body("/mailhealth", "watch list").encode()
            started = time.monotonic()
            answer = await _raw(server.port, _half_sent(body[:20], len(body)), close_after=False)
            assert answer.startswith(b"HTTP/1.1 408")
            assert time.monotonic() - started < 3
        finally:
            await server.stop()
        assert time.monotonic() - started < 3  # the stalled client does not hold the shutdown


def test_log_throttle_counts_what_it_does_not_log(caplog) -> None:
    now = [0.0]
    throttle = LogThrottle(burst=3, interval=60, clock=lambda: now[0])
    caplog.set_level(logging.WARNING)
    for _ in range(1000):
        throttle.warning("forged", "refused a request: invalid signature")
    assert len(caplog.records) == 3
    now[0] = 61
    throttle.warning("forged", "refused a request: invalid signature")
    messages = [r.getMessage() for r in caplog.records]
    assert "997 more forged requests in the last 60 s" in messages[3]
    assert len(messages) == 5


MALFORMED_HTTP = [
    b"GARBAGE\r\n\r\n",
    b"POST /slack/events HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
    b"POST /slack/events HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n",
    b"POST /slack/events HTTP/1.1\r\nHost: x\r\nX-Slack-Request-Timestamp: 1\xff\r\n\r\n",
    b"POST /slack/events HTTP/1.1\r\nX-Long: " + b"a" * 100_000 + b"\r\n\r\n",
]


async def test_malformed_http_is_refused_with_few_log_lines(bot: Bot, caplog) -> None:
    caplog.set_level(logging.INFO)
    answers = []
    for payload in MALFORMED_HTTP:
        for _ in range(40):
            answers.append(await _raw(bot.server.port, payload))
    assert not any(b" 500 " in a for a in answers)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) <= 10, [r.getMessage()[:80] for r in warnings]
    assert not any(r.exc_info for r in warnings)
    status, _, _ = await bot.slash("/mailhealth", "watch list")
    assert status == 200
