"""/blacklist from chat: progress, reply blocks, thread detail, buttons, permissions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.commands import blacklist
from bot.commands.base import CommandContext, CommandDenied, CommandUsageError, Requester
from bot.config import Config, load_config
from bot.render.blacklist import details_text, text
from bot.store import Store
from tests.fixtures.dns_server import DnsTestServer
from tests.fixtures.dnsbl_zones import (
    BLOCKED_IP,
    CLEAN_IP,
    LISTED_IP,
    POLICY_IP,
    UNHEALTHY_ZONES,
    populate,
    write_catalog,
)


@pytest.fixture(scope="module")
def dns_server() -> Iterator[DnsTestServer]:
    with DnsTestServer() as server:
        populate(server)
        yield server


@pytest.fixture
def config(tmp_path, dns_server) -> Config:
    return load_config(
        env={
            "RELAYWATCH_STORE_PATH": str(tmp_path / "rw.db"),
            "RELAYWATCH_BLACKLIST_CATALOG_FILE": str(write_catalog(tmp_path)),
            "RELAYWATCH_BLACKLIST_NAMESERVERS": dns_server.nameserver,
            "RELAYWATCH_BLACKLIST_TIMEOUT": "0.15",
            "RELAYWATCH_BLACKLIST_RETRIES": "1",
            "RELAYWATCH_BLACKLIST_DISABLED_ZONES": ",".join(UNHEALTHY_ZONES),
        }
    )


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    with Store(tmp_path / "rw.db") as opened:
        yield opened


def context(config, store, said, admin=True) -> CommandContext:
    async def progress(message: str) -> None:
        said.append(message)

    return CommandContext(config, store, Requester("U1", "C1", admin), progress)


def block_dicts(reply):
    return [b.to_dict() for b in reply.blocks]


async def test_listed_reply_majors_first_with_links_thread_and_buttons(config, store):
    said: list[str] = []
    reply = await blacklist.run(context(config, store, said), f"{POLICY_IP} {LISTED_IP}")
    assert said[0] == "checking 2 targets on the DNS blocklists…"
    assert reply.text.startswith(":red_circle: 2 addresses/names are LISTED")
    # the major (SBL) listing comes before the policy-only one
    assert reply.text.index(LISTED_IP) < reply.text.index(POLICY_IP)
    assert "<https://delist.example/zen|delist>" in reply.text
    assert "SBL: spam source" in reply.text
    actions = next(b for b in block_dicts(reply) if b["type"] == "actions")["elements"]
    (record,) = store.checks("blacklist")
    assert [(e["action_id"], e["value"]) for e in actions] == [
        ("rerun", f"blacklist {POLICY_IP} {LISTED_IP}"),
        ("show_details", str(record.id)),
    ]
    (thread,) = reply.thread
    assert "Per-list detail" in thread.text
    assert "zen.dnsbl.test" in thread.text and "not listed" in thread.text


async def test_failures_are_shown_separately_never_as_clean(config, store):
    reply = await blacklist.run(context(config, store, []), BLOCKED_IP)
    assert reply.text.startswith(":large_yellow_circle: Incomplete")
    assert "Could not check" in reply.text and "blocked" in reply.text


async def test_range_shows_only_listed_addresses(config, store):
    reply = await blacklist.run(context(config, store, []), "192.0.2.96/29")
    assert LISTED_IP in reply.text
    assert "192.0.2.97" not in reply.text
    assert any("8 addresses checked, 1 listed" in str(b) for b in block_dicts(reply))


async def test_no_argument_checks_the_watch_list(config, store):
    with pytest.raises(CommandUsageError, match="watch list has no"):
        await blacklist.run(context(config, store, []), "")
    store.add_watch("ip", CLEAN_IP)
    reply = await blacklist.run(context(config, store, [], admin=False), "")
    assert reply.text.startswith(":large_green_circle: Not listed")
    assert store.checks("blacklist")[0].subject == CLEAN_IP


async def test_non_admins_only_check_watched_targets(config, store):
    with pytest.raises(CommandDenied, match="not on the watch list"):
        await blacklist.run(context(config, store, [], admin=False), LISTED_IP)
    assert store.checks("blacklist") == []


@pytest.mark.parametrize("words", ["not-a-target!", "10.0.0.0/8", "--mx", "--frob 1.2.3.4"])
async def test_bad_input_is_a_usage_error_and_runs_nothing(config, store, words):
    with pytest.raises(CommandUsageError):
        await blacklist.run(context(config, store, []), words)
    assert store.checks("blacklist") == []


async def test_stored_document_renders_details(config, store):
    await blacklist.run(context(config, store, []), LISTED_IP)
    (record,) = store.checks("blacklist")
    assert "Per-list detail" in details_text(record.result)
    assert "delist: https://delist.example/zen" in text(record.result)


async def test_an_address_typed_twice_and_inside_a_range_counts_once(config, store):
    said: list[str] = []
    reply = await blacklist.run(
        context(config, store, said), f"{LISTED_IP} {LISTED_IP} 192.0.2.96/30"
    )
    assert said[0] == "checking 2 targets on the DNS blocklists…"
    assert reply.text.startswith(f":red_circle: {LISTED_IP} is LISTED on")  # one address
    (record,) = store.checks("blacklist")
    assert [t["target"] for t in record.result["targets"]] == [LISTED_IP]
    assert record.result["summary"]["listed"] == 1
