"""The fixed grammar of queue actions: exactly the postsuper argument lists the sudoers rule
names, IDs on stdin, delete only from hold, capped batches."""

from __future__ import annotations

import subprocess

import pytest

from handlers.queue import QueuedMessage, QueueIdError, parse_selection
from handlers.queue.actions import plan_action, run_plan
from handlers.queue.selection import SelectionError


def _message(queue: str, queue_id: str, sender: str = "spam@lab.test") -> QueuedMessage:
    return QueuedMessage(queue, queue_id, 1.0, 10, sender)


QUEUE = [
    _message("deferred", "AAAAAA0001"),
    _message("active", "AAAAAA0002"),
    _message("hold", "AAAAAA0003"),
    _message("deferred", "AAAAAA0004", sender="ok@lab.test"),
]


@pytest.mark.parametrize(
    ("action", "argv", "ids"),
    [
        ("hold", ("sudo", "-n", "postsuper", "-h", "-"), ["AAAAAA0001", "AAAAAA0002"]),
        ("release", ("sudo", "-n", "postsuper", "-H", "-"), ["AAAAAA0003"]),
        ("delete", ("sudo", "-n", "postsuper", "-d", "-", "hold"), ["AAAAAA0003"]),
    ],
)
def test_postfix_argument_lists_are_exactly_the_sudoers_ones(action, argv, ids) -> None:
    selection = parse_selection("sender", "SPAM@lab.test")
    plan = plan_action(action, selection, QUEUE, {}, "postfix", ["sudo", "-n"])
    assert plan.queue_ids == ids
    (command,) = plan.commands
    assert command.argv == argv
    assert command.stdin == "".join(f"{i}\n" for i in ids)


def test_delete_never_takes_from_the_active_or_deferred_queue() -> None:
    plan = plan_action(
        "delete", parse_selection("sender", "spam@lab.test"), QUEUE, {}, "postfix", []
    )
    assert plan.queue_ids == ["AAAAAA0003"] and plan.elsewhere == 2


def test_exim_uses_freeze_thaw_remove_with_ids_as_arguments() -> None:
    queue = [
        QueuedMessage("deferred", "1qT9Xv-0000Bq-4Y", 1.0, 10, "s@x"),
        QueuedMessage("hold", "1qT9Xv-0000Bq-4Z", 1.0, 10, "s@x"),
    ]
    selection = parse_selection("sender", "s@x")
    hold = plan_action("hold", selection, queue, {}, "exim", [], exim_path="/usr/sbin/exim")
    assert hold.commands[0].argv == ("/usr/sbin/exim", "-Mf", "1qT9Xv-0000Bq-4Y")
    delete = plan_action("delete", selection, queue, {}, "exim", [])
    assert delete.commands[0].argv == ("exim", "-Mrm", "1qT9Xv-0000Bq-4Z")


def test_exim_config_goes_before_the_action_option() -> None:
    queue = [QueuedMessage("deferred", "1qT9Xv-0000Bq-4Y", 1.0, 10, "s@x")]
    selection = parse_selection("sender", "s@x")
    plan = plan_action(
        "hold", selection, queue, {}, "exim", ["sudo", "-n"], exim_config="/etc/exim4/second.conf"
    )
    assert plan.commands[0].argv == (
        "sudo",
        "-n",
        "exim",
        "-C",
        "/etc/exim4/second.conf",
        "-Mf",
        "1qT9Xv-0000Bq-4Y",
    )


def test_batches_and_the_per_action_cap() -> None:
    queue = [_message("deferred", f"ABCDEF{n:04X}") for n in range(25)]
    selection = parse_selection("sender", "spam@lab.test")
    plan = plan_action("hold", selection, queue, {}, "postfix", [], batch=10)
    assert [len(c.stdin.split()) for c in plan.commands] == [10, 10, 5]
    with pytest.raises(QueueIdError, match="at most 20"):
        plan_action("hold", selection, queue, {}, "postfix", [], limit=20)


def test_a_forged_queue_id_stops_the_whole_plan() -> None:
    queue = [_message("deferred", "AAAAAA0001"), _message("deferred", "ALL")]
    with pytest.raises(QueueIdError):
        plan_action("hold", parse_selection("sender", "spam@lab.test"), queue, {}, "postfix", [])


def test_dry_run_runs_nothing_and_a_failing_tool_is_a_failure() -> None:
    plan = plan_action("hold", parse_selection("sender", "spam@lab.test"), QUEUE, {}, "postfix", [])
    calls: list[list[str]] = []

    def runner(argv, **kwargs):
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 1, "", "postsuper: fatal: not owner\n")

    assert run_plan(plan, dry_run=True, timeout=5, runner=runner).ok and calls == []
    failed = run_plan(plan, dry_run=False, timeout=5, runner=runner)
    assert not failed.ok and "exited 1" in failed.error
    assert failed.output == ["postsuper: fatal: not owner"]


@pytest.mark.parametrize(
    ("kind", "value"),
    [("client", "not-an-ip"), ("owner", "x"), ("sender", "two words"), ("account", "")],
)
def test_bad_selections_are_one_line_errors(kind: str, value: str) -> None:
    with pytest.raises(SelectionError):
        parse_selection(kind, value)
