"""`relaywatch watch add|remove|list`: the IPs, ranges, domains and servers the bot monitors."""

from __future__ import annotations

import argparse
import getpass

from bot.cli.context import CliContext
from bot.exitcodes import ExitCode
from bot.store import WATCH_KINDS
from bot.watchlist import WatchValueError, classify


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "watch",
        help="edit or show the watch list",
        description="The watch list: what the digest and the monitors check.",
        epilog=(
            "examples:\n  relaywatch watch add 192.0.2.10\n  relaywatch watch add example.com\n"
            "  relaywatch watch add --kind server mx.example.com\n  relaywatch watch list --json"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="watch_action", metavar="ACTION", required=True)
    for name, helptext in (("add", "add an item"), ("remove", "remove an item")):
        sub = actions.add_parser(name, help=helptext, description=f"{helptext.capitalize()}.")
        sub.add_argument("value", help="IP, CIDR, domain or host[:port]")
        sub.add_argument("--kind", choices=WATCH_KINDS, help="override the inferred kind")
        sub.set_defaults(run=run_add if name == "add" else run_remove)
    listing = actions.add_parser("list", help="show the watch list", description="Show the list.")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(run=run_list)


def run_add(args: argparse.Namespace, ctx: CliContext) -> int:
    try:
        item = classify(args.value, args.kind)
    except WatchValueError as exc:
        ctx.error(str(exc))
        return ExitCode.USAGE
    added = ctx.store.add_watch(item.kind, item.value, added_by=f"cli:{getpass.getuser()}")
    ctx.print(f"{'added' if added else 'already watched'}: {item.kind} {item.value}")
    return ExitCode.OK


def run_remove(args: argparse.Namespace, ctx: CliContext) -> int:
    try:
        item = classify(args.value, args.kind)
    except WatchValueError as exc:
        ctx.error(str(exc))
        return ExitCode.USAGE
    if not ctx.store.remove_watch(item.kind, item.value):
        ctx.error(f"{item.kind} {item.value} is not on the watch list (see: relaywatch watch list)")
        return ExitCode.USAGE
    ctx.print(f"removed: {item.kind} {item.value}")
    return ExitCode.OK


def run_list(args: argparse.Namespace, ctx: CliContext) -> int:
    items = ctx.store.watch_list()
    if args.json:
        ctx.print_json(
            {
                "watch": [
                    {
                        "kind": i.kind,
                        "value": i.value,
                        "added_by": i.added_by,
                        "added_at": i.added_at,
                    }
                    for i in items
                ]
            }
        )
    elif not items:
        ctx.print("the watch list is empty; add with: relaywatch watch add 192.0.2.10")
    else:
        for i in items:
            ctx.print(f"{i.kind:<7} {i.value:<40} added {i.added_at} by {i.added_by or '?'}")
    return ExitCode.OK
