"""Memory stays bounded in log size: after N and after 4N rounds of the same kinds of traffic (with
fresh queue IDs), the summary's containers hold exactly as many entries. Per queue-ID state must
end with the message, also for messages that never get a `removed` line (rejected after DATA,
rejected or discarded by cleanup's header checks)."""

from __future__ import annotations

import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from handlers.logsummary.scan import Scanner
from handlers.logsummary.summary import Summary
from handlers.logsummary.timefmt import TimeWindow

from .conftest import PostfixLog

# bench/ is not a package: import its log generator by path
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench" / "logsummary"))
from generate import generate

REFERENCE = datetime(2026, 11, 28, 23)
CLIENTS = ("198.51.100.7", "198.51.100.8", "192.168.1.20", "203.0.113.9")


def _entries(value: Any) -> int:
    """Entries in a container and in every container nested in it."""
    if isinstance(value, dict):
        return len(value) + sum(_entries(item) for item in value.values())
    if isinstance(value, (list, set, tuple)):
        return len(value) + sum(_entries(item) for item in value)
    return 0


def _state(summary: Summary, nested: bool = True) -> dict[str, int]:
    return {
        name: _entries(value) if nested else len(value)
        for name, value in vars(summary).items()
        if isinstance(value, (dict, list, set))
    }


def _ended_without_removed(log: PostfixLog, client: str, how: str) -> None:
    """One message that Postfix deletes without the queue manager ever logging `removed`."""
    qid = f"{next(log._ids):X}B"
    log.add("postfix/smtpd", f"connect from unknown[{client}]", 200)
    log.add("postfix/smtpd", f"{qid}: client=unknown[{client}]", 200)
    tail = "from=<a@ext.example> to=<u@our.example> proto=ESMTP helo=<h>"
    if how == "data":
        log.add(
            "postfix/smtpd",
            f"{qid}: reject: DATA from unknown[{client}]: 554 5.7.1 <DATA>: Data command "
            f"rejected: Access denied; {tail}",
            200,
        )
    else:
        log.add("postfix/cleanup", f"{qid}: message-id=<{qid}@ext.example>", 300)
        log.add(
            "postfix/cleanup",
            f"{qid}: {how}: header Subject: offer from unknown[{client}]; {tail}: 5.7.1 "
            "Message content rejected",
            300,
        )
    log.add("postfix/smtpd", f"disconnect from unknown[{client}] ehlo=1 mail=1 quit=1", 200)


def _deferred_then_sent(log: PostfixLog, client: str) -> None:
    qid = f"{next(log._ids):X}C"
    log.add("postfix/smtpd", f"connect from unknown[{client}]", 200)
    log.add("postfix/smtpd", f"{qid}: client=unknown[{client}]", 200)
    log.add(
        "postfix/smtpd",
        f"{qid}: reject: RCPT from unknown[{client}]: 550 5.1.1 <nobody@our.example>: "
        "Recipient address rejected: User unknown in virtual mailbox table; "
        "from=<b@ext.example> to=<nobody@our.example> proto=ESMTP helo=<h>",
        200,
    )
    log.add("postfix/cleanup", f"{qid}: message-id=<{qid}@ext.example>", 300)
    log.add("postfix/qmgr", f"{qid}: from=<b@ext.example>, size=900, nrcpt=1 (queue active)", 400)
    log.add("postfix/smtpd", f"disconnect from unknown[{client}] ehlo=1 mail=1 quit=1", 200)
    for status, dsn in (("deferred", "4.4.1"), ("sent", "2.0.0")):
        log.add(
            "postfix/smtp",
            f"{qid}: to=<c@far.example>, relay=mx.far.example[192.0.2.25]:25, delay=1, "
            f"delays=0/0/0/1, dsn={dsn}, status={status} (reply)",
            500,
        )
    log.add("postfix/qmgr", f"{qid}: removed", 400)


def _held_then_deleted(log: PostfixLog, client: str) -> None:
    qid = f"{next(log._ids):X}D"
    log.add("postfix/smtpd", f"{qid}: client=unknown[{client}]", 200)
    log.add("postfix/cleanup", f"{qid}: message-id=<{qid}@ext.example>", 300)
    log.add(
        "postfix/cleanup",
        f"{qid}: hold: header Subject: review from unknown[{client}]; from=<d@ext.example> "
        "to=<u@our.example> proto=ESMTP helo=<h>: held",
        300,
    )
    log.add("postfix/postsuper", f"{qid}: removed", 600)


def _traffic(rounds: int) -> list[str]:
    log = PostfixLog()
    for number in range(rounds):
        client = CLIENTS[number % len(CLIENTS)]
        log.message(client, "s@ext.example", ["r1@our.example", "r2@far.example"])
        log.message(client, "t@our.example", ["x@far.example"], sasl_user="t@our.example")
        for how in ("data", "reject", "discard"):
            _ended_without_removed(log, client, how)
        _deferred_then_sent(log, client)
        _held_then_deleted(log, client)
        log.relay_denied(client)
        log.auth_failure(client, "t@our.example")
    return log.lines


@pytest.mark.parametrize("partial", [False, True])
def test_state_does_not_grow_with_the_log(partial: bool) -> None:
    sizes = []
    for rounds in (50, 200):
        summary = Summary(partial=partial)
        Scanner(summary, TimeWindow(), REFERENCE).scan(_traffic(rounds))
        assert summary.received == rounds * 7  # every message was read
        sizes.append(_state(summary))
    small, large = sizes
    grown = {name: (small[name], large[name]) for name in small if large[name] != small[name]}
    assert grown == {}
    assert small["_queue"] == 0


def test_only_held_messages_keep_state_in_a_real_log(shared_log: Path, tmp_path: Path) -> None:
    # The real Postfix log replayed 1× and 4× with fresh queue IDs: a message on hold is still
    # in the queue at the end of the log, so its state rightly stays; nothing else may.
    original = shared_log.read_text(encoding="utf-8").count("\n")
    held_pattern = re.compile(r"\]: ([0-9A-F]+): hold: ")
    sizes = []
    for replays in (1, 4):
        path = tmp_path / f"mail-{replays}.log"
        generate(shared_log, original * replays, path)
        text = path.read_text(encoding="utf-8")
        held = set(held_pattern.findall(text))
        summary = Summary()
        Scanner(summary, TimeWindow(), REFERENCE).scan(text.split("\n")[:-1])
        assert held and set(summary._queue) == held
        # entities (accounts, clients, domains …) only: their capped evidence samples are still
        # filling up after one replay
        state = _state(summary, nested=False)
        state.pop("_queue")
        sizes.append(state)
    assert sizes[0] == sizes[1]
