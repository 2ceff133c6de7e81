"""`relaywatch queue`: the mail queue by sender, account and client; hold, release, delete."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

from bot.cli.context import CliContext
from bot.exitcodes import ExitCode

EPILOG = """\
Reads Postfix's queue (postqueue -j) or Exim's (exim -bp); no root needed. The client and SASL
account of each queued message come from the mail log ([logs] paths), so suspects and contained
accounts are marked.

Actions run postsuper (or exim -Mf/-Mt/-Mrm) as root through [queue] privilege (sudo -n; see
deploy/sudoers.relaywatch). `hold` takes mail from the active and deferred queues; `release` and
`delete` only from the hold queue: hold first, review, then delete. Every action prints what it
would touch and asks before acting (--yes skips the question; --dry-run only shows).

exit codes: 0 nothing of a suspect or contained subject is queued, 1 some is, 2 usage error,
            3 the queue could not be read or an action failed

examples:
  relaywatch queue
  relaywatch queue --json
  relaywatch queue hold account carol@example.com --dry-run
  relaywatch queue hold sender spam@example.com --yes
  relaywatch queue delete client 192.168.1.50
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "queue",
        help="show the mail queue; hold, release or delete queued mail",
        description="The mail queue: what waits, from whom, and why; and cleaning it up.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "action", nargs="?", choices=("hold", "release", "delete"), help="what to do"
    )
    parser.add_argument("kind", nargs="?", choices=("sender", "account", "client"), help="whose")
    parser.add_argument("value", nargs="?", help="the address, SASL account, or IP/CIDR")
    parser.add_argument("--dry-run", action="store_true", help="show what would be touched")
    parser.add_argument("--yes", action="store_true", help="act without asking")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    if args.action is None:
        return show(args, ctx)
    if args.kind is None or args.value is None:
        ctx.error(f"say whose mail to {args.action}: sender, account or client, and who")
        return ExitCode.USAGE
    return act(args, ctx)


def show(args: argparse.Namespace, ctx: CliContext) -> int:
    from bot.checks.queue import run_queue
    from bot.render import queue as render
    from bot.store import utc_now

    started = utc_now()
    outcome = asyncio.run(run_queue(ctx.config, ctx.store))
    return ctx.finish_check(outcome, render.text, args.json, started)


def act(args: argparse.Namespace, ctx: CliContext) -> int:
    from bot.checks.queue import queue_options
    from bot.render.queue import plan_text
    from handlers.queue import (
        QueueIdError,
        QueueReadError,
        SelectionError,
        parse_selection,
        queue_action,
    )

    try:
        selection = parse_selection(args.kind, args.value)
    except SelectionError as exc:
        ctx.error(str(exc))
        return ExitCode.USAGE
    options = queue_options(ctx.config)
    user = f"cli:{getpass.getuser()}"
    line = f"{args.action} {args.kind} {args.value}"
    try:
        plan = asyncio.run(queue_action(args.action, selection, options, dry_run=True))
        ctx.print(plan_text(plan))
        if args.dry_run or not plan.plan.queue_ids:
            return ExitCode.OK
        if not args.yes and not _confirmed(args.action, len(plan.plan.queue_ids)):
            ctx.error("nothing done (answer y to act, or pass --yes)")
            return ExitCode.USAGE
        done = asyncio.run(queue_action(args.action, selection, options, dry_run=False))
    except (QueueReadError, QueueIdError) as exc:
        ctx.error(f"could not {args.action}: {exc}")
        ctx.store.audit(user, "queue", line, allowed=True, reason=f"failed: {exc}")
        return ExitCode.INCOMPLETE
    ctx.print(plan_text(done))
    ctx.store.audit(
        user,
        "queue",
        line,
        allowed=True,
        reason=f"{len(done.plan.queue_ids)} messages" if done.ok else f"failed: {done.error}",
    )
    return ExitCode.OK if done.ok else ExitCode.INCOMPLETE


def _confirmed(action: str, count: int) -> bool:
    if not sys.stdin.isatty():
        return False
    answer = input(f"{action} {count} messages? [y/N] ")
    return answer.strip().lower() in ("y", "yes")
