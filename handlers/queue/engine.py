"""Reads the MTA's queue and answers the two questions an admin has after containment: what is
queued (and from whom), and which messages one action would touch."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field

from handlers.queue.actions import QueueActionPlan, QueueActionResult, plan_action, run_plan
from handlers.queue.exim import exim_queue_command, parse_exim_queue
from handlers.queue.model import Origin, QueuedMessage, QueueSummary
from handlers.queue.origins import iter_origins_in_logs, origins_from_logs
from handlers.queue.postfix import parse_postqueue_line, postqueue_command
from handlers.queue.selection import Selection
from handlers.queue.summary import Marks, summarize_queue


class QueueReadError(Exception):
    """The queue could not be read; the message says why and what to do."""


@dataclass(frozen=True)
class QueueOptions:
    mta: str = "postfix"  # "postfix" | "exim"
    postfix_config_dir: str = ""  # postqueue/postsuper -c, for a second Postfix instance
    exim_path: str = "exim"
    exim_config: str = ""  # exim -C, for a second Exim instance (only root may use -C)
    log_paths: tuple[str, ...] = ()  # to tie queued mail to its client and SASL account
    privilege: tuple[str, ...] = ()  # e.g. ("sudo", "-n") in front of postsuper/exim actions
    timeout: float = 120.0
    batch: int = 1000  # queue IDs per postsuper/exim call
    limit: int = 100_000  # queue IDs per action
    top: int = 10
    marks: Marks = field(default_factory=Marks)


def _command(options: QueueOptions) -> list[str]:
    if options.mta == "exim":
        return exim_queue_command(options.exim_path, options.exim_config)
    return postqueue_command(options.postfix_config_dir)


def _messages(options: QueueOptions, unparsed: list[int]) -> Iterator[QueuedMessage]:
    """Streams the queue listing; raises QueueReadError when the tool fails."""
    argv = _command(options)
    try:
        process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
    except OSError as exc:
        raise QueueReadError(f"cannot run {argv[0]}: {exc.strerror}") from None
    assert process.stdout is not None and process.stderr is not None
    deadline = time.monotonic() + options.timeout
    try:
        lines = (raw.decode("utf-8", "replace") for raw in process.stdout)
        if options.mta == "exim":
            parsed: Iterator[QueuedMessage | None] = parse_exim_queue(lines, time.time())
        else:
            parsed = (parse_postqueue_line(line) for line in lines if line.strip())
        for message in parsed:
            if time.monotonic() > deadline:
                raise QueueReadError(f"{argv[0]} took longer than {options.timeout:.0f} s")
            if message is None:
                unparsed[0] += 1
            else:
                yield message
        stderr = process.stderr.read().decode("utf-8", "replace").strip()
        code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if code != 0:
        raise QueueReadError(_explain_failure(argv, code, stderr))


def _explain_failure(argv: list[str], code: int, stderr: str) -> str:
    said = stderr.splitlines()[-1] if stderr else f"exit {code}"
    if "authorized_mailq_users" in stderr or "permission denied" in stderr.lower():
        return (
            f"{' '.join(argv)}: {said} — allow this user to list the queue "
            "(Postfix: authorized_mailq_users = static:anyone, the default; "
            "Exim: queue_list_requires_admin = false or run as an admin user)"
        )
    return f"{' '.join(argv)}: {said}"


def _origin_finder(options: QueueOptions, warnings: list[str]):
    def find(ids: Collection[str]) -> Iterator[tuple[str, Origin]]:
        return iter_origins_in_logs(options.log_paths, ids, warnings.append)

    return find if options.log_paths else None


def read_queue_sync(options: QueueOptions) -> QueueSummary:
    unparsed = [0]
    warnings: list[str] = []
    summary = summarize_queue(
        _messages(options, unparsed),
        options.mta,
        time.time(),
        find_origins=_origin_finder(options, warnings),
        marks=options.marks,
        top=options.top,
    )
    summary.unparsed = unparsed[0]
    summary.warnings.extend(warnings)
    if not options.log_paths:
        summary.warnings.append(
            "no mail log configured (logs.paths): accounts and clients of queued mail unknown"
        )
    return summary


async def read_queue(options: QueueOptions) -> QueueSummary:
    return await asyncio.to_thread(read_queue_sync, options)


def plan_queue_action_sync(
    action: str, selection: Selection, options: QueueOptions
) -> QueueActionPlan:
    unparsed = [0]
    messages = list(_messages(options, unparsed))
    origins: dict[str, Origin] = {}
    warnings: list[str] = []
    if selection.needs_origins:
        if not options.log_paths:
            raise QueueReadError(
                f"selecting by {selection.kind} needs the mail log (logs.paths) to tie queued "
                "mail to its client and account"
            )
        origins, warnings = origins_from_logs(options.log_paths, {m.queue_id for m in messages})
    plan = plan_action(
        action,
        selection,
        messages,
        origins,
        options.mta,
        list(options.privilege),
        postfix_config_dir=options.postfix_config_dir,
        exim_path=options.exim_path,
        exim_config=options.exim_config,
        batch=options.batch,
        limit=options.limit,
    )
    plan.warnings.extend(warnings)
    return plan


async def queue_action(
    action: str,
    selection: Selection,
    options: QueueOptions,
    dry_run: bool,
    runner: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
) -> QueueActionResult:
    def work() -> QueueActionResult:
        plan = plan_queue_action_sync(action, selection, options)
        return run_plan(plan, dry_run, options.timeout, runner)

    return await asyncio.to_thread(work)
