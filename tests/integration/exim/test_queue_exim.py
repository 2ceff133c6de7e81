"""The queue engine against a real Debian Exim 4.96: mail the test queues itself (every remote
domain goes to a closed port on loopback, so it stays deferred), read with `exim -bp`, then freeze,
thaw and remove the mail of one sender through `exim -Mf` / `-Mt` / `-Mrm`, each with `-C` for
the private instance, while the other sender's mail is never touched."""

from __future__ import annotations

import json
import smtplib
import socket
from collections.abc import Iterator

import pytest

from bot.cli import main
from handlers.queue import (
    QueueOptions,
    parse_selection,
    queue_action,
    read_queue_sync,
)
from handlers.queue.model import QueueSummary
from tests.integration.exim.exim_instance import EXIM, EximInstance, remove, require_exim

SPAMMER = "mallory@lab.test"
NORMAL = "alice@lab.test"
BULK = "bulk@lab.test"


@pytest.fixture(scope="module")
def exim() -> Iterator[EximInstance]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    instance = require_exim(relay_port=closed)
    try:
        yield instance
    finally:
        remove(instance)


def _send(instance: EximInstance, sender: str, recipients: list[str], count: int) -> None:
    with smtplib.SMTP("127.0.0.1", instance.port, timeout=10) as smtp:
        for number in range(count):
            smtp.sendmail(sender, recipients, f"Subject: test {number}\r\n\r\nbody\r\n")


def _options(instance: EximInstance) -> QueueOptions:
    return QueueOptions(
        mta="exim", exim_path=str(EXIM), exim_config=str(instance.config), timeout=30
    )


def _queue_of(summary: QueueSummary, name: str) -> int:
    return summary.by_queue.get(name, {}).get("messages", 0)


def _sender(summary: QueueSummary, sender: str) -> int:
    return next((row.messages for row in summary.top_senders if row.key == sender), 0)


async def test_read_freeze_thaw_remove(exim: EximInstance) -> None:
    before = exim.deferrals()
    _send(exim, SPAMMER, ["a@example.net", "b@example.org"], 5)
    _send(exim, NORMAL, ["c@example.net"], 2)
    exim.idle(before + 5 * 2 + 2)  # every recipient tried once and deferred

    options = _options(exim)
    summary = read_queue_sync(options)
    assert summary.unparsed == 0
    assert summary.messages == 7 and summary.recipients == 12
    assert summary.by_queue == {"deferred": {"messages": 7, "bytes": summary.bytes}}
    assert summary.top_senders[0].key == SPAMMER and summary.top_senders[0].messages == 5
    assert _sender(summary, NORMAL) == 2
    domains = {r.key: r.messages for r in summary.top_recipient_domains}
    assert domains == {"example.net": 7, "example.org": 5}
    assert summary.age_buckets.get("<1h") == 7

    selection = parse_selection("sender", SPAMMER)
    dry = await queue_action("hold", selection, options, dry_run=True)
    assert len(dry.plan.queue_ids) == 5 and dry.output == []
    assert all(c.argv[1:3] == ("-C", str(exim.config)) for c in dry.plan.commands)
    assert _queue_of(read_queue_sync(options), "hold") == 0  # a dry run froze nothing

    held = await queue_action("hold", selection, options, dry_run=False)
    assert held.ok, held.error
    assert sum("is now frozen" in line for line in held.output) == 5
    after = read_queue_sync(options)
    assert _queue_of(after, "hold") == 5 and _queue_of(after, "deferred") == 2
    assert after.messages == 7

    # -Mrm only for frozen mail: the normal sender's deferred mail is never a candidate
    normal = await queue_action("delete", parse_selection("sender", NORMAL), options, False)
    assert normal.ok and normal.plan.queue_ids == [] and normal.plan.elsewhere == 2
    assert read_queue_sync(options).messages == 7

    released = await queue_action("release", selection, options, dry_run=False)
    assert released.ok, released.error
    assert sum("no longer frozen" in line for line in released.output) == 5
    thawed = read_queue_sync(options)
    assert _queue_of(thawed, "hold") == 0 and _queue_of(thawed, "deferred") == 7

    refrozen = await queue_action("hold", selection, options, dry_run=False)
    assert refrozen.ok, refrozen.error
    deleted = await queue_action("delete", selection, options, dry_run=False)
    assert deleted.ok, deleted.error
    assert sorted(deleted.plan.queue_ids) == sorted(held.plan.queue_ids)
    assert sum("has been removed" in line for line in deleted.output) == 5
    final = read_queue_sync(options)
    assert final.messages == 2 and _queue_of(final, "hold") == 0
    assert _sender(final, NORMAL) == 2 and _sender(final, SPAMMER) == 0
    assert {r.key for r in final.top_recipient_domains} == {"example.net"}


def test_queue_cli_reads_and_holds_through_exim_config(
    exim: EximInstance, tmp_path, capsys
) -> None:
    before = exim.deferrals()
    _send(exim, BULK, ["d@example.com"], 3)
    exim.idle(before + 3)
    config_file = tmp_path / "config.toml"
    config_file.write_text(
        f'[queue]\nmta = "exim"\nexim_path = "{EXIM}"\nexim_config = "{exim.config}"\n'
        f'[store]\npath = "{tmp_path / "cli.db"}"\n'
    )
    assert main(["--config", str(config_file), "queue", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    senders = {row["key"]: row["messages"] for row in data["top_senders"]}
    assert data["mta"] == "exim" and senders[BULK] == 3

    args = ["--config", str(config_file), "queue", "hold", "sender", BULK, "--yes"]
    assert main(args) == 0
    assert "held 3 messages" in capsys.readouterr().out
    summary = read_queue_sync(_options(exim))
    assert _sender(summary, BULK) == 3 and _queue_of(summary, "hold") == 3
