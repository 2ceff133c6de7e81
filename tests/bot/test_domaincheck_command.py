"""/domaincheck: through signed Slack requests into the real Bolt app (local Slack stand-in), and
the command itself: watch-list default, non-admin limits, usage errors, escaping."""

from __future__ import annotations

import json
from collections.abc import Iterator

import aiohttp
import pytest

from bot.app import build_app, start_http
from bot.commands import chat_commands, domaincheck
from bot.commands.base import CommandContext, CommandDenied, CommandUsageError, Requester
from bot.config import Config
from bot.store import Store
from tests.fixtures.dns_server import DnsTestServer
from tests.fixtures.domain_zones import GOOD_IP, add_domain_zones
from tests.fixtures.slack_api import SlackStandIn, action_body, sign, slash_body

SECRET = "test-signing-secret"
ADMIN = "UADMIN01"
USER = "UUSER001"


@pytest.fixture(scope="module")
def dns_server() -> Iterator[DnsTestServer]:
    with DnsTestServer() as server:
        add_domain_zones(server)
        server.add_record("inject.test", "TXT", "v=spf1 <!channel> <https://evil.example|x> +all")
        yield server


def make_config(dns_server: DnsTestServer) -> Config:
    config = Config()
    config.domain.nameservers = [dns_server.nameserver]
    config.domain.timeout = 0.4
    return config


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    with Store(tmp_path / "rw.db") as opened:
        yield opened


class Progress:
    def __init__(self) -> None:
        self.messages: list[str] = []

    async def __call__(self, text: str) -> None:
        self.messages.append(text)


def context(store: Store, config: Config, admin: bool = False) -> CommandContext:
    return CommandContext(config, store, Requester("U1", "C1", admin), Progress())


def test_registered_as_a_chat_command() -> None:
    assert chat_commands()["domaincheck"] is domaincheck
    assert domaincheck.USAGE.startswith("/domaincheck")


async def test_no_argument_checks_the_watched_domains(store, dns_server) -> None:
    store.add_watch("domain", "plusall.test")
    reply = await domaincheck.run(context(store, make_config(dns_server)), "")
    assert "plusall.test: fail" in reply.text
    (record,) = store.checks("domain")
    assert (record.subject, record.status) == ("plusall.test", "problem")


async def test_non_admin_may_only_check_watched_domains_and_ips(store, dns_server) -> None:
    config = make_config(dns_server)
    with pytest.raises(CommandDenied):
        await domaincheck.run(context(store, config), "clean.test")
    store.add_watch("domain", "clean.test")
    with pytest.raises(CommandDenied):
        await domaincheck.run(context(store, config), f"clean.test --ip {GOOD_IP}")
    reply = await domaincheck.run(context(store, config), "clean.test --selector s2048")
    assert "clean.test: warn" in reply.text


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("bad_domain", "is not a domain name"),
        ("clean.test --ip", "--ip needs a value"),
        ("clean.test --bogus", "unknown option"),
        ("clean.test --selector 'a", "is not a DKIM selector"),
    ],
)
async def test_usage_errors_run_nothing(store, dns_server, text, words) -> None:
    with pytest.raises(CommandUsageError, match=words):
        await domaincheck.run(context(store, make_config(dns_server), admin=True), text)
    assert store.checks("domain") == []


async def test_txt_record_text_is_escaped_in_chat(store, dns_server) -> None:
    reply = await domaincheck.run(
        context(store, make_config(dns_server), admin=True), "inject.test"
    )
    shown = json.dumps(
        [b.to_dict() for b in reply.blocks] + [b.to_dict() for t in reply.thread for b in t.blocks]
    )
    assert "<!channel>" not in shown and "&lt;!channel&gt;" in shown
    assert "<https://evil.example" not in shown


async def test_slash_domaincheck_acks_then_result_with_details_in_the_thread(
    slack: SlackStandIn, dns_server: DnsTestServer, tmp_path
) -> None:
    config = make_config(dns_server)
    config.secrets.slack_bot_token = "xoxb-test"
    config.secrets.slack_signing_secret = SECRET
    config.slack.api_url = slack.api_url
    config.slack.admins = [ADMIN]
    store = Store(tmp_path / "relaywatch.db")
    app, services = build_app(config, store, commands=chat_commands())
    services.progress_first_after = 0.05
    services.progress_interval = 0.05
    server = await start_http(app, "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as session:
            body = slash_body(
                "/domaincheck", "twospf.test", user_id=ADMIN, response_url=slack.response_url()
            )
            async with session.post(server.url, data=body, headers=sign(SECRET, body)) as resp:
                assert resp.status == 200
            assert await services.work.drain(within=15)
            updates = slack.of("chat.update")
            top = [c for c in slack.of("chat.postMessage") if not c.params.get("thread_ts")]
            assert len(top) == 1  # the progress message, replaced by the result
            final = updates[-1].params if updates else top[0].params
            result_ts = final.get("ts") or "1764363600.000001"
            assert "twospf.test: fail" in final["text"]
            assert "more than one SPF record" in json.dumps(final["blocks"])
            buttons = {
                e["action_id"]: e["value"]
                for b in final["blocks"]
                if b["type"] == "actions"
                for e in b["elements"]
            }
            assert buttons["rerun"] == "domaincheck twospf.test"
            thread = [c for c in slack.of("chat.postMessage") if c.params.get("thread_ts")]
            assert thread and thread[0].params["thread_ts"] == result_ts
            assert "fix:" in thread[0].params["text"]
            (record,) = store.checks("domain")
            assert record.status == "problem"

            # Show details renders the stored check with bot.render.domaincheck.details_text
            slack.calls.clear()
            body = action_body("show_details", str(record.id), user_id=ADMIN, message_ts=result_ts)
            async with session.post(server.url, data=body, headers=sign(SECRET, body)) as resp:
                assert resp.status == 200
            assert await services.work.drain(within=15)
            details = slack.of("chat.postMessage")
            assert details and details[0].params["thread_ts"] == result_ts
            assert "=== twospf.test: fail" in details[0].params["text"]
            assert "why:" in details[0].params["text"]
    finally:
        await services.work.drain(within=10)
        await server.stop()
        store.close()


async def test_domaincheck_through_the_shell_adapter(tmp_path, dns_server) -> None:
    import io

    from bot.dispatch import Dispatcher
    from bot.exitcodes import ExitCode
    from bot.shell import ShellAdapter, ShellPoster

    with Store(tmp_path / "shell.db") as shell_store:
        out = io.StringIO()
        adapter = ShellAdapter(
            Dispatcher(make_config(dns_server), shell_store, commands=chat_commands()),
            ShellPoster(out),
            stdin=io.StringIO("/domaincheck plusall.test\n"),
            stderr=io.StringIO(),
            user="alice",
        )
        assert await adapter.run() == ExitCode.OK
        assert shell_store.latest_check("domain", "plusall.test").status == "problem"
    shown = out.getvalue()
    assert "plusall.test: fail" in shown
    assert "fix: plusall.test. IN TXT" in shown  # the thread's details, printed below
