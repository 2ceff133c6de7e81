"""/relaycheck from chat: watch-list default, safety policy, progress, verdict reply, transcript."""

from __future__ import annotations

import pytest

from bot.commands import chat_commands, relaycheck
from bot.commands.base import CommandContext, CommandDenied, CommandUsageError, Requester
from bot.config import Config
from bot.render.relay import details_text
from bot.store import Store
from tests.fixtures.relay_smtp import RelayPolicy, closed_rcpt, smtp_server


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "rw.db") as opened:
        yield opened


def make_config(**relay) -> Config:
    config = Config()
    # DNS to a loopback port where nothing answers; fast timeouts for the local servers
    config.relay.nameservers = ["127.0.0.1:9"]
    config.relay.dns_timeout = 0.2
    config.relay.banner_timeout = 1.0
    config.relay.command_timeout = 1.0
    config.relay.extra_ports = []
    for key, value in relay.items():
        setattr(config.relay, key, value)
    return config


class Progress:
    def __init__(self) -> None:
        self.messages: list[str] = []

    async def __call__(self, text: str) -> None:
        self.messages.append(text)


def context(store: Store, config: Config, admin: bool = False) -> tuple[CommandContext, Progress]:
    progress = Progress()
    return CommandContext(config, store, Requester("U1", "C1", admin), progress), progress


def block_dicts(reply) -> list[dict]:
    return [block.to_dict() for block in reply.blocks]


def test_registered_as_a_chat_command():
    assert chat_commands()["relaycheck"] is relaycheck
    assert relaycheck.USAGE.startswith("/relaycheck")


async def test_no_argument_checks_every_watched_server(store):
    open_policy, closed_policy = RelayPolicy(), RelayPolicy(rcpt=closed_rcpt)
    async with smtp_server(open_policy) as open_server, smtp_server(closed_policy) as closed:
        # ephemeral test ports are not SMTP ports: allow them as configured extras
        config = make_config(extra_ports=[open_server.port, closed.port])
        store.add_watch("server", open_server.target)
        store.add_watch("server", closed.target)
        ctx, progress = context(store, config)
        reply = await relaycheck.run(ctx, "")
    assert progress.messages[0].startswith("checking 2 mail servers")
    assert any("tests on 2 targets" in m for m in progress.messages[1:])
    blocks = block_dicts(reply)
    assert blocks[0]["type"] == "header"
    assert blocks[0]["text"]["text"].startswith(":red_circle: Relay check: 1 open, 1 closed")
    body = "\n".join(b["text"]["text"] for b in blocks if b["type"] == "section")
    assert "*Accepted:*" in body and "external-to-external" in body
    # one summary line per target first, the open relay first; then only the open relay's tests
    closed_line = f"{closed.target} (127.0.0.1) — closed (not a relay): 23 of 23 relay attempts"
    assert body.index(open_server.target) < body.index(closed_line) < body.index("*Accepted:*")
    assert body.count(closed.target) == 1  # the closed server's tests are in the thread only
    assert "Diagnostics:" in body
    warnings = "\n".join(e["text"] for b in blocks if b["type"] == "context" for e in b["elements"])
    assert "loopback" in warnings and "mynetworks" in warnings
    actions = next(b for b in blocks if b["type"] == "actions")["elements"]
    assert actions[0]["action_id"] == "rerun" and actions[0]["value"] == "relaycheck"
    assert len(reply.thread) == 1  # the transcript
    transcript = details_text(store.checks("relay")[0].result)
    assert "> RCPT TO:<relaywatch-test@example.net>" in transcript
    assert "< 554 5.7.1 <relaywatch-test@example.net>: Relay access denied" in transcript
    (record,) = store.checks("relay")
    assert record.status == "problem"
    assert {t["verdict"] for t in record.result["targets"]} == {"open", "closed"}
    assert open_policy.messages_completed == 0


async def test_single_target_headline_and_rerun(store):
    async with smtp_server(RelayPolicy(rcpt=closed_rcpt)) as server:
        store.add_watch("server", server.target)
        ctx, _ = context(store, make_config(extra_ports=[server.port]))
        reply = await relaycheck.run(ctx, server.target)
    blocks = block_dicts(reply)
    assert blocks[0]["text"]["text"] == (
        f":large_green_circle: {server.target}: closed (not a relay)"
    )
    actions = next(b for b in blocks if b["type"] == "actions")["elements"]
    assert actions[0]["value"] == f"relaycheck {server.target}"
    assert reply.text.startswith(":large_green_circle:")


async def test_non_admin_may_not_probe_unlisted_targets(store):
    policy = RelayPolicy()
    async with smtp_server(policy) as server:
        ctx, _ = context(store, make_config(extra_ports=[server.port]))
        with pytest.raises(CommandDenied, match="not on the watch list"):
            await relaycheck.run(ctx, server.target)
    assert policy.sessions == 0  # refused before connecting
    assert store.checks("relay") == []


async def test_allowlisted_network_and_admins(store):
    async with smtp_server(RelayPolicy(rcpt=closed_rcpt)) as server:
        config = make_config(extra_ports=[server.port], allow_networks=["127.0.0.0/8"])
        ctx, _ = context(store, config)
        await relaycheck.run(ctx, server.target)
        admin_ctx, _ = context(store, make_config(extra_ports=[server.port]), admin=True)
        await relaycheck.run(admin_ctx, server.target)
    assert len(store.checks("relay")) == 2


async def test_ports_are_limited_even_for_admins(store):
    ctx, _ = context(store, make_config(), admin=True)
    with pytest.raises(CommandDenied, match="port 8080"):
        await relaycheck.run(ctx, "127.0.0.1:8080")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("--tls sometimes", "--tls takes auto"),
        ("--mx", "--mx needs a value"),
        ("--frobnicate", "unknown option"),
        ("bad!host", "not a host name"),
    ],
)
async def test_usage_errors(store, text, message):
    ctx, _ = context(store, make_config(), admin=True)
    with pytest.raises(CommandUsageError, match=message):
        await relaycheck.run(ctx, text)


async def test_empty_watch_list_says_what_to_do(store):
    ctx, _ = context(store, make_config())
    with pytest.raises(CommandUsageError, match="no mail servers on the watch list"):
        await relaycheck.run(ctx, "")


def test_slack_links_are_unwrapped():
    targets, mx, confirm, tls = relaycheck.parse_args(
        "<http://mx.example.com|mx.example.com> --mx example.org --confirm --tls off"
    )
    assert targets == ["mx.example.com"] and mx == ["example.org"]
    assert confirm is True and tls == "off"


def test_details_text_renders_a_stored_document():
    data = {
        "targets": [
            {
                "target": "mx.example.com:25",
                "address": "192.0.2.7",
                "verdict": "closed",
                "source_ip": "198.51.100.2",
                "explanation": "Closed.",
                "session_log": [
                    {"command": "(greeting)", "code": 220, "reply": "mx ESMTP", "elapsed_ms": 3},
                    {"command": "EHLO x", "code": 250, "reply": "mx\nSIZE 1", "elapsed_ms": 1},
                ],
                "tests": [
                    {
                        "name": "null-sender",
                        "kind": "plain",
                        "outcome": "refused",
                        "commands": [
                            {"command": "MAIL FROM:<>", "code": 250, "reply": "Ok"},
                            {"command": "RCPT TO:<a@example.net>", "code": 554, "reply": "no"},
                        ],
                    }
                ],
            }
        ]
    }
    text = details_text(data)
    assert "=== mx.example.com:25 (192.0.2.7) — closed" in text
    assert "< 250-mx\n< 250 SIZE 1" in text
    assert "-- null-sender [plain] REFUSED\n> MAIL FROM:<>\n< 250 Ok" in text


@pytest.mark.parametrize("behaviour", ["endless_line", "stall"])
async def test_hostile_server_is_a_verdict_not_an_error(store, behaviour):
    from bot.dispatch import Dispatcher, Invocation
    from tests.fixtures.hostile_smtp import Hostile, hostile_server

    async with hostile_server(Hostile(after_banner=behaviour)) as target:
        port = int(target.rsplit(":", 1)[1])
        dispatcher = Dispatcher(make_config(extra_ports=[port]), store)
        result = await dispatcher.handle(
            Invocation("relaycheck", target, "U1", "C1", source="shell"), Progress()
        )
    assert not result.error_id and result.allowed
    assert "inconclusive" in result.reply.text
    said = "Response too long" if behaviour == "endless_line" else "no reply to EHLO"
    assert said in result.reply.text
