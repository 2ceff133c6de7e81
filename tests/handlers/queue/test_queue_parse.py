"""Queue listings as Postfix and Exim print them, queue-ID validation, and the summary."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers.queue import Marks, Origin, QueueIdError, checked_ids, is_queue_id, summarize_queue
from handlers.queue.exim import exim_queue_command, parse_exim_queue
from handlers.queue.postfix import parse_postqueue_line

POSTQUEUE_LINE = json.dumps(
    {
        "queue_name": "deferred",
        "queue_id": "4E86920C11A",
        "arrival_time": 1764365452,
        "message_size": 2048,
        "forced_expire": False,
        "sender": "carol@lab.test",
        "recipients": [
            {"address": "a@example.net", "delay_reason": "connect to mx: Connection refused"},
            {"address": "b@example.org"},
        ],
        "something_new": {"ignored": True},
    }
)


def test_postqueue_json_line() -> None:
    message = parse_postqueue_line(POSTQUEUE_LINE)
    assert message is not None
    assert (message.queue_name, message.queue_id, message.size) == ("deferred", "4E86920C11A", 2048)
    assert message.sender == "carol@lab.test"
    assert [r.address for r in message.recipients] == ["a@example.net", "b@example.org"]
    assert message.recipients[0].delay_reason.endswith("Connection refused")
    assert message.recipients[1].delay_reason == ""


@pytest.mark.parametrize(
    "line",
    ["", "not json", "[]", "{}", '{"queue_id": 5}', '{"queue_id": ""}', "null", '"text"'],
)
def test_postqueue_garbage_is_not_a_message(line: str) -> None:
    assert parse_postqueue_line(line) is None


@given(st.dictionaries(st.text(max_size=10), st.one_of(st.none(), st.integers(), st.text())))
def test_postqueue_any_object_never_raises(data: dict) -> None:
    parse_postqueue_line(json.dumps(data))


EXIM_BP = """\
25m  2.9K 1qT9Xv-0000Bq-4Y <carol@example.com>
          bob@example.net
        D done@example.net
          eve@example.org

 4h   512 1qT9Xw-0000Bq-5Z <> *** frozen ***
          postmaster@example.org

 2d  1.5M 1rA0aa-000Abc12345-wxyz <big@example.com>
          x@example.net
garbage here
"""


def test_exim_bp_listing() -> None:
    now = 1_000_000.0
    parsed = list(parse_exim_queue(EXIM_BP.splitlines(), now))
    messages = [m for m in parsed if m is not None]
    assert parsed.count(None) == 1
    first, frozen, big = messages
    assert first.queue_id == "1qT9Xv-0000Bq-4Y" and first.queue_name == "deferred"
    assert first.arrival_time == now - 25 * 60 and first.size == int(2.9 * 1024)
    # the D line was delivered already: only waiting recipients count
    assert [r.address for r in first.recipients] == ["bob@example.net", "eve@example.org"]
    assert frozen.queue_name == "hold" and frozen.sender == ""
    assert big.queue_id == "1rA0aa-000Abc12345-wxyz" and big.size == int(1.5 * 1024**2)


# verbatim from Debian's Exim 4.96 (tests/integration/exim/test_queue_exim.py): a one-digit age
# right-aligned with a leading space, a size in bytes and in K, a bounce, the frozen marker
EXIM_496_BP = """\
 0m   194 1xYHFq-0003AD-16 <mallory@lab.test> *** frozen ***
          a@example.net
          b@example.org

 0m  1.5K 1xYHFq-0003AI-1A <>
          alice@lab.test

"""


def test_exim_496_bp_listing() -> None:
    parsed = list(parse_exim_queue(EXIM_496_BP.splitlines(), 5000.0))
    assert None not in parsed
    frozen, bounce = parsed
    assert (frozen.queue_id, frozen.queue_name, frozen.size, frozen.arrival_time) == (
        "1xYHFq-0003AD-16",
        "hold",
        194,
        5000.0,
    )
    assert [r.address for r in frozen.recipients] == ["a@example.net", "b@example.org"]
    assert (bounce.queue_name, bounce.sender, bounce.size) == ("deferred", "", 1536)
    assert [r.address for r in bounce.recipients] == ["alice@lab.test"]


def test_exim_listing_command_takes_a_config() -> None:
    assert exim_queue_command("/usr/sbin/exim4") == ["/usr/sbin/exim4", "-bp"]
    assert exim_queue_command("exim", "/tmp/x.conf") == ["exim", "-C", "/tmp/x.conf", "-bp"]


@pytest.mark.parametrize(
    ("text", "mta", "ok"),
    [
        ("4E86920C11A", "postfix", True),
        ("4XyZ3n1bcdz2wpQ", "postfix", True),  # long queue ID
        ("ALL", "postfix", False),
        ("-d", "postfix", False),
        ("4E86920C11A hold", "postfix", False),
        ("../../etc/passwd", "postfix", False),
        ("1qT9Xv-0000Bq-4Y", "exim", True),
        ("1rA0aa-000Abc12345-wxyz", "exim", True),
        ("1qT9Xv-0000Bq-4Y", "postfix", False),
        ("-Mrm", "exim", False),
    ],
)
def test_queue_ids(text: str, mta: str, ok: bool) -> None:
    assert is_queue_id(text, mta) is ok


def test_checked_ids_refuses_all_and_caps() -> None:
    with pytest.raises(QueueIdError, match="not a postfix queue ID"):
        checked_ids(["4E86920C11A", "ALL"], "postfix", 10)
    with pytest.raises(QueueIdError, match="at most 2 per call"):
        checked_ids(["4E86920C11A", "4E86920C11B", "4E86920C11C"], "postfix", 2)
    assert checked_ids(["4E86920C11A", "4E86920C11A"], "postfix", 10) == ["4E86920C11A"]


@given(st.text(min_size=1, max_size=30))
def test_no_option_or_space_is_ever_a_queue_id(text: str) -> None:
    if text.startswith("-") or any(c.isspace() for c in text) or text.upper() == "ALL":
        assert not is_queue_id(text, "postfix") and not is_queue_id(text, "exim")


def test_summary_marks_suspects_and_contained_through_the_log_join() -> None:
    lines = [
        json.dumps(
            {
                "queue_name": queue,
                "queue_id": f"ABCDEF{n:04X}",
                "arrival_time": 100_000 - age,
                "message_size": 100,
                "sender": sender,
                "recipients": [{"address": "x@example.net"}],
            }
        )
        for n, (queue, sender, age) in enumerate(
            [("deferred", "spam@lab.test", 10)] * 3 + [("hold", "ok@lab.test", 90000)]
        )
    ]
    messages = [parse_postqueue_line(line) for line in lines]
    origins = {
        "ABCDEF0000": Origin("192.0.2.7", "mallory"),
        "ABCDEF0001": Origin("192.0.2.7", "mallory"),
    }
    summary = summarize_queue(
        [m for m in messages if m],
        "postfix",
        now=100_000,
        find_origins=lambda ids: [(k, v) for k, v in origins.items() if k in ids],
        marks=Marks(suspects=frozenset({"mallory"}), contained=frozenset({"spam@lab.test"})),
    )
    assert summary.by_queue == {
        "deferred": {"messages": 3, "bytes": 300},
        "hold": {"messages": 1, "bytes": 100},
    }
    assert summary.age_buckets == {"<1h": 3, ">1d": 1}
    assert summary.oldest_age_seconds == 90000
    assert summary.top_senders[0].key == "spam@lab.test"
    assert summary.top_senders[0].marks == ("contained",)
    assert summary.top_accounts[0].key == "mallory" and summary.top_accounts[0].messages == 2
    assert summary.top_accounts[0].marks == ("suspect",)
    assert summary.origins_known == 2
