"""`relaywatch blacklist`: check IPs, ranges, host names and MX hosts on the DNS blocklists."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime

from bot.cli.context import CliContext
from bot.exitcodes import ExitCode
from bot.watchlist import blacklist_targets
from handlers.blacklist import BlacklistSetupError, TargetError

EPILOG = """\
Every answer is one of: listed, not listed, error (timeout, SERVFAIL, REFUSED, an answer
outside 127.0.0.0/8) or blocked (the list refused the query). Errors and blocks are never
counted as clean, and lists that fail their RFC 5782 self-test are set aside and reported.

exit codes: 1 listed somewhere · 3 nothing listed but some lists could not be checked
            0 clean on every healthy list, every list answered · 2 bad input

examples:
  relaywatch blacklist 192.0.2.10
  relaywatch blacklist 192.0.2.0/24 mail.example.com --json
  relaywatch blacklist --mx example.com
  relaywatch blacklist 2001:db8::25 --nameserver 127.0.0.1:5353
  relaywatch blacklist --list-zones
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "blacklist",
        help="check IPs, ranges and domains on DNS blocklists (DNSBLs)",
        description=(
            "Look targets up on every catalogued DNS blocklist (Spamhaus, Barracuda, SpamCop, "
            "UCEPROTECT, Mailspike, … about 60 lists) and report each listing with its meaning "
            "and delist link. No TARGET: every IP, range and domain on the watch list."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "targets",
        nargs="*",
        metavar="TARGET",
        help="IPv4/IPv6 address, CIDR range (up to blacklist.max_ipv4_prefix), or host name",
    )
    parser.add_argument(
        "--mx",
        action="append",
        default=[],
        metavar="DOMAIN",
        help="check DOMAIN on domain lists and every MX host's addresses (repeatable)",
    )
    parser.add_argument(
        "--nameserver",
        action="append",
        default=[],
        metavar="IP[:PORT]",
        help="resolver to query (repeatable; overrides blacklist.nameservers)",
    )
    parser.add_argument("--json", action="store_true", help="print the JSON document")
    parser.add_argument(
        "--list-zones", action="store_true", help="print the catalog of lists and exit"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    if args.list_zones:
        return list_zones(args, ctx)
    from bot.checks.blacklist import run_blacklist
    from bot.render.blacklist import text

    targets = list(args.targets)
    if not targets and not args.mx:
        targets = blacklist_targets(ctx.store)
        if not targets:
            ctx.error(
                "no target given and the watch list has no IPs, ranges or domains; "
                "e.g. relaywatch blacklist 192.0.2.10"
            )
            return ExitCode.USAGE
    started = datetime.now(UTC)
    with ctx.progress() as progress:
        try:
            outcome = asyncio.run(
                run_blacklist(
                    ctx.config,
                    targets,
                    mx_domains=args.mx,
                    nameservers=args.nameserver or None,
                    progress=progress,
                )
            )
        except (TargetError, BlacklistSetupError) as exc:
            progress.clear()
            ctx.error(str(exc))
            return ExitCode.USAGE
    return ctx.finish_check(outcome, text, args.json, started)


def list_zones(args: argparse.Namespace, ctx: CliContext) -> int:
    from bot.checks.blacklist import lists_for
    from handlers.blacklist import CatalogError, load_catalog

    try:
        catalog = load_catalog(ctx.config.blacklist.catalog_file or None)
        selected = lists_for(ctx.config)
    except (CatalogError, OSError) as exc:
        ctx.error(str(exc))
        return ExitCode.USAGE
    enabled = {lst.zone for lst in selected}
    extra = [lst for lst in selected if lst.source == "config"]
    rows = [*catalog, *(e for e in extra if e.zone not in {c.zone for c in catalog})]
    if args.json:
        ctx.print_json(
            {
                "lists": [
                    {
                        "zone": lst.zone,
                        "name": lst.name,
                        "kinds": list(lst.kinds),
                        "severity": lst.severity,
                        "status": lst.status,
                        "enabled": lst.zone in enabled,
                        "access": lst.access,
                        "delist_url": lst.delist_url,
                        "notes": lst.notes,
                        "codes": {c: m.meaning for c, m in lst.codes.items()},
                    }
                    for lst in rows
                ]
            }
        )
        return ExitCode.OK
    ctx.print(f"{'zone':<34} {'kinds':<10} {'severity':<8} {'state':<9} access")
    for lst in rows:
        state = "dead" if not lst.active else ("on" if lst.zone in enabled else "disabled")
        ctx.print(
            f"{lst.zone:<34} {'+'.join(lst.kinds):<10} {lst.severity:<8} {state:<9} {lst.access}"
        )
    ctx.print(f"\n{len(enabled)} lists enabled; dead lists are never queried.")
    return ExitCode.OK
