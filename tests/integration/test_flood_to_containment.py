"""Issue 10 end to end, through the real pieces: a SASL account floods the policy service, the
alarm reaches the Slack stand-in as an alert within 5 seconds, an admin contains the account,
and the policy service rejects its next recipient within the refresh interval — while another
account is never refused."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bot.config import Config
from bot.dispatch import Dispatcher, Invocation
from bot.monitor.alarms import AlarmPoster
from bot.policy.server import PolicyService, ServiceSettings
from bot.slack.client import web_client
from bot.slack.poster import SlackPoster
from bot.store import Store
from tests.fixtures.slack_api import SlackStandIn
from tests.handlers.policy.policy_requests import request_bytes

ADMIN = "UADMIN01"
CHANNEL = "C0ALERTS"


def _config(tmp_path: Path, slack: SlackStandIn) -> Config:
    config = Config()
    config.store.path = str(tmp_path / "relaywatch.db")
    config.policy.listen = "127.0.0.1:0"
    config.policy.refresh_seconds = 0.2
    config.policy.flush_seconds = 0.5
    config.policy.account_messages_per_minute = 5
    config.slack.api_url = slack.api_url
    config.slack.admins = [ADMIN]
    config.slack.digest_channel = CHANNEL
    config.secrets.slack_bot_token = "xoxb-test"
    return config


async def _ask(address: str, **attributes: object) -> bytes:
    host, _, port = address.rpartition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request_bytes(**attributes))
        await writer.drain()
        return await asyncio.wait_for(reader.readuntil(b"\n\n"), 5)
    finally:
        writer.close()


def _message(n: int, account: str) -> dict[str, object]:
    return {
        "protocol_state": "DATA",
        "sasl_method": "PLAIN",
        "sasl_username": account,
        "client_address": f"203.0.113.{10 + n % 5}",
        "recipient_count": "3",
        "instance": f"flood.{account}.{n}",
    }


async def test_a_flood_alerts_within_5_s_and_containment_is_enforced(tmp_path: Path) -> None:
    slack = await SlackStandIn().start()
    config = _config(tmp_path, slack)
    service = PolicyService(ServiceSettings.from_config(config))
    store = Store(config.store_path)
    poster = AlarmPoster(
        config, store, SlackPoster(web_client(config, env={})), CHANNEL, interval=0.2
    )
    dispatcher = Dispatcher(config, store)
    posting = asyncio.create_task(poster.run())
    await service.start()
    try:
        (address,) = service.addresses
        started = time.monotonic()
        for n in range(12):  # twelve messages in seconds: past 5 a minute
            assert await _ask(address, **_message(n, "mallory@example.com")) == b"action=DUNNO\n\n"
        (alert,) = await slack.wait_for("chat.postMessage", within=5)
        assert time.monotonic() - started < 5
        assert "mallory@example.com" in alert.params["text"]
        actions = [
            element["action_id"]
            for block in alert.params["blocks"]
            if block["type"] == "actions"
            for element in block["elements"]
        ]
        assert {"contain_block", "contain_hold", "contain_throttle"} <= set(actions)

        # the admin decides (the buttons run this same command, re-authorized and audited)
        async def no_progress(text: str) -> None:
            return None

        done = await dispatcher.handle(
            Invocation("contain", "block account mallory@example.com 2h stolen", ADMIN, CHANNEL),
            no_progress,
        )
        assert done.allowed and "Blocked" in done.reply.text
        rcpt = {"sasl_method": "PLAIN", "sasl_username": "mallory@example.com"}
        deadline = time.monotonic() + 3
        while (answer := await _ask(address, **rcpt)) == b"action=DUNNO\n\n":
            assert time.monotonic() < deadline, "the block never reached the policy service"
            await asyncio.sleep(0.05)
        assert answer.startswith(b"action=REJECT 5.7.1 ")
        # never OK, and nobody else is refused
        other = await _ask(address, sasl_method="PLAIN", sasl_username="alice@example.com")
        assert other == b"action=DUNNO\n\n"
        audit = [(a.user_id, a.command, a.allowed) for a in store.audit_log()]
        assert (ADMIN, "contain", True) in audit
    finally:
        posting.cancel()
        await service.stop()
        await dispatcher.close()
        store.close()
        await slack.stop()
