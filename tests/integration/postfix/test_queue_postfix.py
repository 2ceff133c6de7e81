"""The queue engine against a real Debian Postfix: mail the test queues itself (a destination that
defers), read with `postqueue -j`, then hold / release / delete-from-hold through postsuper with
the queue IDs on stdin, exactly as the sudoers rule in deploy/ allows."""

from __future__ import annotations

import dataclasses
import json
import smtplib
import socket
import subprocess
import time

import pytest

from bot.cli import main
from bot.config import Config
from bot.dispatch import Dispatcher, Invocation, parse_command_line
from bot.render.queue import plan_text
from bot.store import Store
from handlers.queue import (
    QueueOptions,
    parse_selection,
    queue_action,
    read_queue_sync,
)
from tests.integration.postfix.postfix_instance import (
    PostfixInstance,
    remove,
    require_postfix,
)

pytestmark = pytest.mark.postfix

SPAMMER = "mallory@lab.test"
NORMAL = "alice@lab.test"


@pytest.fixture(scope="module")
def postfix() -> PostfixInstance:
    instance = require_postfix()
    # every destination is a closed port on loopback, so what is accepted stays queued (deferred:
    # connection refused) and nothing can leave the machine
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with (instance.config_dir / "master.cf").open("a") as master:
        master.write("smtp      unix  -       -       n       -       -       smtp\n")
    destination = f"smtp:[127.0.0.1]:{closed}"
    settings = [f"default_transport = {destination}", f"relay_transport = {destination}"]
    subprocess.run(["postconf", "-c", str(instance.config_dir), "-e", *settings], check=True)
    instance.postfix("reload")
    yield instance
    remove(instance)


def _send(instance: PostfixInstance, sender: str, recipients: list[str], count: int) -> None:
    host, _, port = instance.target("open").rpartition(":")
    with smtplib.SMTP(host, int(port), timeout=10) as smtp:
        for number in range(count):
            smtp.sendmail(sender, recipients, f"Subject: test {number}\r\n\r\nbody\r\n")


def _options(instance: PostfixInstance) -> QueueOptions:
    return QueueOptions(
        mta="postfix",
        postfix_config_dir=str(instance.config_dir),
        log_paths=(str(instance.root / "maillog"),),
        timeout=30,
    )


def _settled(instance: PostfixInstance, expected: int, queue: str = "deferred"):
    deadline = time.monotonic() + 30
    while True:
        summary = read_queue_sync(_options(instance))
        if summary.by_queue.get(queue, {}).get("messages", 0) >= expected:
            return summary
        assert time.monotonic() < deadline, f"queue never reached {expected} in {queue}: {summary}"
        time.sleep(0.2)


async def test_read_hold_release_delete(postfix: PostfixInstance) -> None:
    _send(postfix, SPAMMER, ["a@example.net", "b@example.org"], 5)
    _send(postfix, NORMAL, ["c@example.net"], 2)
    summary = _settled(postfix, 7)
    assert summary.messages == 7 and summary.recipients == 12
    assert summary.top_senders[0].key == SPAMMER and summary.top_senders[0].messages == 5
    domains = {r.key: r.messages for r in summary.top_recipient_domains}
    assert domains == {"example.net": 7, "example.org": 5}
    assert "Connection refused" in summary.top_delay_reasons[0][0]
    # tied to the submitting client through the log's smtpd "client=" lines
    assert summary.origins_known == 7
    assert summary.top_clients[0].key == "127.0.0.1"

    options = _options(postfix)
    selection = parse_selection("sender", SPAMMER)
    dry = await queue_action("hold", selection, options, dry_run=True)
    assert len(dry.plan.queue_ids) == 5 and dry.output == []
    assert read_queue_sync(options).by_queue.get("hold") is None  # a dry run touched nothing

    held = await queue_action("hold", selection, options, dry_run=False)
    assert held.ok, held.error
    after = read_queue_sync(options)
    assert after.by_queue["hold"]["messages"] == 5
    assert after.by_queue["deferred"]["messages"] == 2

    # delete takes only from hold: the normal sender's deferred mail is never a candidate
    plan = await queue_action("delete", parse_selection("sender", NORMAL), options, dry_run=True)
    assert plan.plan.queue_ids == [] and plan.plan.elsewhere == 2

    released = await queue_action("release", selection, options, dry_run=False)
    assert released.ok, released.error
    assert read_queue_sync(options).by_queue.get("hold") is None

    await queue_action("hold", selection, options, dry_run=False)
    deleted = await queue_action("delete", selection, options, dry_run=False)
    assert deleted.ok, deleted.error
    final = read_queue_sync(options)
    assert final.messages == 2 and final.by_queue.get("hold") is None


async def test_select_by_client_through_the_log(postfix: PostfixInstance) -> None:
    options = _options(postfix)
    plan = await queue_action(
        "hold", parse_selection("client", "127.0.0.0/8"), options, dry_run=True
    )
    assert plan.plan.queue_ids  # the mail queued by the test came from 127.0.0.1
    none = await queue_action(
        "hold", parse_selection("client", "192.0.2.0/24"), options, dry_run=True
    )
    assert none.plan.queue_ids == []


def _config(instance: PostfixInstance, tmp_path) -> Config:
    config = Config()
    config.queue.postfix_config_dir = str(instance.config_dir)
    config.logs.paths = [str(instance.root / "maillog")]
    config.store.path = str(tmp_path / "rw.db")
    config.slack.admins = ["UADMIN"]
    return config


async def _noop(text: str) -> None:
    return None


async def test_mailqueue_chat_dry_run_then_confirm(postfix: PostfixInstance, tmp_path) -> None:
    _send(postfix, "bulk@lab.test", ["z@example.net"], 3)
    _settled(postfix, 3)
    config = _config(postfix, tmp_path)
    with Store(config.store_path) as store:
        dispatcher = Dispatcher(config, store)
        shown = await dispatcher.handle(Invocation("mailqueue", "", "UUSER", "C1"), _noop)
        assert shown.allowed and "queued messages" in shown.reply.text

        refused = await dispatcher.handle(
            Invocation("mailqueue", "hold sender bulk@lab.test", "UUSER", "C1"), _noop
        )
        assert not refused.allowed and "only admins" in refused.reply.text

        dry = await dispatcher.handle(
            Invocation("mailqueue", "hold sender bulk@lab.test", "UADMIN", "C1"), _noop
        )
        assert "would hold 3 messages" in dry.reply.text
        (button,) = dry.reply.blocks[-1].elements
        assert button.action_id == "confirm_command" and button.confirm is not None
        assert read_queue_sync(_options(postfix)).by_queue.get("hold") is None

        # the confirm button runs its value as a command: re-authorized and audited
        name, args = parse_command_line(button.value)
        done = await dispatcher.handle(
            Invocation(name, args, "UADMIN", "C1", source="button"), _noop
        )
        assert "held 3 messages" in done.reply.text
        assert read_queue_sync(_options(postfix)).by_queue["hold"]["messages"] >= 3
        audited = [(a.user_id, a.args, a.allowed) for a in store.audit_log()]
        assert ("UADMIN", "hold sender bulk@lab.test --yes", True) in audited
        assert ("UUSER", "hold sender bulk@lab.test", False) in audited


def test_queue_cli_json_exit_codes_and_delete(postfix: PostfixInstance, tmp_path, capsys) -> None:
    config_file = tmp_path / "config.toml"
    config_file.write_text(
        f'[queue]\npostfix_config_dir = "{postfix.config_dir}"\n'
        f'[logs]\npaths = ["{postfix.root / "maillog"}"]\n'
        f'[store]\npath = "{tmp_path / "cli.db"}"\n'
    )
    assert main(["--config", str(config_file), "queue", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["messages"] >= 1 and "deferred" in data["by_queue"]

    assert main(["--config", str(config_file), "queue", "delete", "client", "nonsense"]) == 2
    code = main(["--config", str(config_file), "queue", "delete", "sender", "bulk@lab.test"])
    out = capsys.readouterr()
    assert code == 2 and "nothing done" in out.err  # no terminal to ask, no --yes
    assert (
        main(["--config", str(config_file), "queue", "delete", "sender", "bulk@lab.test", "--yes"])
        == 0
    )
    assert "deleted 3 messages" in capsys.readouterr().out
    assert all("bulk@lab.test" != row.key for row in read_queue_sync(_options(postfix)).top_senders)


async def test_an_unreadable_log_is_a_warning_not_a_silent_empty_plan(
    postfix: PostfixInstance, tmp_path
) -> None:
    options = _options(postfix)
    missing = dataclasses.replace(options, log_paths=(str(tmp_path / "no-such-mail.log"),))
    plan = await queue_action(
        "hold", parse_selection("account", "mallory@lab.test"), missing, dry_run=True
    )
    assert plan.plan.queue_ids == []
    assert plan.plan.warnings and "no-such-mail.log" in plan.plan.warnings[0]
    assert "warning: could not read" in plan_text(plan)
