"""Hold, release and delete queued mail through the MTA's own tools, with a fixed grammar.

Postfix: the queue IDs go on stdin to exactly `postsuper -h -`, `postsuper -H -` or
`postsuper -d - hold`, so a sudoers rule can name those argument lists and nothing else; `-d`
only ever touches the hold queue (hold first, review, then delete). Exim: `exim -Mf` / `-Mt` /
`-Mrm` with the IDs as arguments, and `-Mrm` only for frozen messages. Every ID is validated before
any command runs, and the IDs are sent in capped batches.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from handlers.queue.exim import exim_config_args
from handlers.queue.ids import checked_ids
from handlers.queue.model import Origin, QueuedMessage
from handlers.queue.selection import Selection

QUEUE_ACTIONS = ("hold", "release", "delete")
# which queue each action takes messages from
_SOURCE_QUEUES = {
    "hold": ("incoming", "active", "deferred", "maildrop"),
    "release": ("hold",),
    "delete": ("hold",),
}
_POSTSUPER = {"hold": ["-h", "-"], "release": ["-H", "-"], "delete": ["-d", "-", "hold"]}
_EXIM = {"hold": "-Mf", "release": "-Mt", "delete": "-Mrm"}


@dataclass(frozen=True)
class QueueCommand:
    argv: tuple[str, ...]
    stdin: str  # the IDs, one a line (Postfix); empty for Exim


@dataclass
class QueueActionPlan:
    action: str
    selection: Selection
    mta: str
    queue_ids: list[str] = field(default_factory=list)
    bytes: int = 0
    elsewhere: int = 0  # matching messages in a queue this action does not take from
    commands: list[QueueCommand] = field(default_factory=list)
    # logs that could not be read to tie mail to its account or client: the plan may miss mail
    warnings: list[str] = field(default_factory=list)


@dataclass
class QueueActionResult:
    plan: QueueActionPlan
    dry_run: bool
    ok: bool
    output: list[str] = field(default_factory=list)  # what the MTA's tool said
    error: str = ""


def plan_action(
    action: str,
    selection: Selection,
    messages: Iterable[QueuedMessage],
    origins: dict[str, Origin],
    mta: str,
    privilege: list[str],
    postfix_config_dir: str = "",
    exim_path: str = "exim",
    exim_config: str = "",
    batch: int = 1000,
    limit: int = 100_000,
) -> QueueActionPlan:
    if action not in QUEUE_ACTIONS:
        raise ValueError(f"queue action must be one of {', '.join(QUEUE_ACTIONS)}")
    plan = QueueActionPlan(action, selection, mta)
    sources = _SOURCE_QUEUES[action]
    for message in messages:
        if not selection.matches(message, origins.get(message.queue_id)):
            continue
        if message.queue_name not in sources:
            plan.elsewhere += 1
            continue
        plan.queue_ids.append(message.queue_id)
        plan.bytes += message.size
    ids = checked_ids(plan.queue_ids, mta, limit)
    for start in range(0, len(ids), batch):
        chunk = ids[start : start + batch]
        if mta == "exim":
            config = exim_config_args(exim_config)
            argv = (*privilege, exim_path, *config, _EXIM[action], *chunk)
            plan.commands.append(QueueCommand(argv, ""))
        else:
            config = ["-c", postfix_config_dir] if postfix_config_dir else []
            argv = (*privilege, "postsuper", *config, *_POSTSUPER[action])
            plan.commands.append(QueueCommand(argv, "\n".join(chunk) + "\n"))
    return plan


Runner = Callable[..., subprocess.CompletedProcess[str]]


def run_plan(
    plan: QueueActionPlan, dry_run: bool, timeout: float, runner: Runner = subprocess.run
) -> QueueActionResult:
    result = QueueActionResult(plan, dry_run, ok=True)
    if dry_run:
        return result
    for command in plan.commands:
        try:
            done = runner(
                list(command.argv),
                input=command.stdin,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            result.ok = False
            result.error = f"{command.argv[0]} could not run: {exc}"
            return result
        said = (done.stdout + done.stderr).strip()
        result.output.extend(line for line in said.splitlines() if line.strip())
        if done.returncode != 0:
            result.ok = False
            result.error = f"{' '.join(command.argv[:4])} exited {done.returncode}"
            return result
    return result
