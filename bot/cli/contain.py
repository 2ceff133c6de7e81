"""`relaywatch contain block|hold|throttle|release|list`: the /contain command from the terminal.

Whoever runs this owns the machine (the store and the config are theirs), so there is no admin
check; every change is still audited, under the local login name.
"""

from __future__ import annotations

import argparse
import getpass
import shlex
import sqlite3

import psycopg

from bot.cli.context import CliContext
from bot.containment import Applied, Released, apply_request, limits_of
from bot.exitcodes import ExitCode
from bot.render.containment import outcome_json, plain_text
from bot.store import utc_now
from handlers.policy.containment import ContainmentError, parse_request

AUDIT_CHANNEL = "cli"

EPILOG = """\
subjects: account <sasl login> | host <ip or cidr> | sender <address> | sender_domain <domain>
          (without the kind word, an IP or CIDR is a host and anything else an account)

examples:
  relaywatch contain block account carol@example.com 24h compromised password
  relaywatch contain hold host 192.168.1.50
  relaywatch contain throttle account bob@example.com 20/h
  relaywatch contain release account carol@example.com
  relaywatch contain list --json

exit codes: 0 done, 2 usage error (nothing changed; also: nothing to release),
            3 the store could not be written

Containment acts at smtpd (through the policy service): reset a compromised account's password
where the accounts live, and know that mail injected locally (sendmail/pickup) bypasses it.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "contain",
        help="block, hold or throttle a compromised account or host (with an expiry)",
        description=(
            "Containment entries for the policy service: block (REJECT 5.7.1 at RCPT), hold "
            "(Postfix hold queue) or throttle (DEFER past N/hour), each until it expires."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="contain_action", metavar="ACTION", required=True)
    for name, helptext, shape in (
        ("block", "refuse the subject's mail", "[kind] subject [duration] [--cut] [reason]"),
        ("hold", "hold the subject's mail for review", "[kind] subject [duration] [reason]"),
        ("throttle", "defer the subject's mail past a rate", "[kind] subject N/h [duration]"),
        ("release", "end the subject's containment now", "[kind] subject"),
    ):
        sub = actions.add_parser(name, help=helptext, description=f"{helptext.capitalize()}.")
        sub.add_argument("words", nargs=argparse.REMAINDER, metavar=shape)
        sub.add_argument("--json", action="store_true", help="machine-readable output")
        sub.set_defaults(run=run)
    listing = actions.add_parser("list", help="show active entries", description="Show entries.")
    listing.add_argument("--all", action="store_true", help="also released and lapsed entries")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(run=run, words=[])


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    words = [args.contain_action, *args.words]
    as_json = args.json
    if "--json" in words:  # REMAINDER keeps an option typed after the subject
        words.remove("--json")
        as_json = True
    if args.contain_action == "list" and args.all:
        words.append("--all")
    user = getpass.getuser()
    line = shlex.join(words)
    try:
        request = parse_request(words, limits_of(ctx.config))
    except ContainmentError as exc:
        ctx.store.audit(user, "contain", line, True, f"usage: {exc}", AUDIT_CHANNEL)
        ctx.error(f"{exc} (see relaywatch contain --help)")
        return ExitCode.USAGE
    try:
        outcome = apply_request(ctx.store, request, set_by=user, channel="", clock=utc_now)
    except (sqlite3.Error, psycopg.Error) as exc:
        ctx.error(f"could not write the store {ctx.config.store_display}: {exc}")
        return ExitCode.INCOMPLETE
    ctx.store.audit(user, "contain", line, True, "", AUDIT_CHANNEL)
    if as_json:
        ctx.print_json(outcome_json(outcome))
    else:
        ctx.print(plain_text(outcome, utc_now()))
    if isinstance(outcome, Released) and not outcome.entries:
        return ExitCode.USAGE
    if isinstance(outcome, Applied) and not ctx.config.policy.listen and not as_json:
        ctx.error(
            "note: [policy] listen is not set in this config; the entry applies where a "
            "policy service (relaywatch serve / relaywatch policy serve) reads this store"
        )
    return ExitCode.OK
