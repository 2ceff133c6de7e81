"""`relaywatch domaincheck`: SPF, DKIM, DMARC, reverse DNS, HELO, MX, MTA-STS and TLS-RPT."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime

from bot.cli.context import CliContext
from bot.exitcodes import ExitCode

EPILOG = """\
Every finding is pass, warn, fail or error, says which receivers act on it (Gmail and Yahoo's
2024 sender rules, Microsoft's 2025 ones) and gives the fix as the exact record to publish.
A lookup that failed is an error, never a pass.

exit codes: 0 nothing failed (warnings allowed) · 1 something failed
            3 nothing failed but some checks could not run · 2 bad input

examples:
  relaywatch domaincheck example.com
  relaywatch domaincheck example.com --ip 192.0.2.10 --selector s2048 --json
  relaywatch domaincheck example.com --helo mail.example.com --nameserver 127.0.0.1:5353
  relaywatch domaincheck            # every domain on the watch list
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "domaincheck",
        help="check a sending domain's SPF, DKIM, DMARC, reverse DNS, MTA-STS and TLS-RPT",
        description=(
            "Check what receivers check before they trust mail from a domain: one valid SPF "
            "record within the lookup limits that authorises every sending IP, a DMARC policy "
            "and authorised report addresses, DKIM keys of a safe size, forward-confirmed reverse "
            "DNS for every sending IP, HELO names, MX hosts, MTA-STS and TLS-RPT. Sending IPs are "
            "the --ip addresses, [domain] sending_ips, the watch list's IPs and the MX hosts' "
            "addresses. No DOMAIN: every domain on the watch list."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("domains", nargs="*", metavar="DOMAIN", help="the sending domain")
    parser.add_argument(
        "--ip",
        action="append",
        default=[],
        metavar="SENDING_IP",
        help="an address that sends mail for the domain (repeatable)",
    )
    parser.add_argument(
        "--selector",
        action="append",
        default=[],
        metavar="S",
        help="a DKIM selector (s= in DKIM-Signature; repeatable; overrides domain.selectors)",
    )
    parser.add_argument(
        "--helo",
        action="append",
        default=[],
        metavar="NAME",
        help="a name your server gives in HELO/EHLO, checked to resolve back (repeatable)",
    )
    parser.add_argument(
        "--nameserver",
        action="append",
        default=[],
        metavar="IP[:PORT]",
        help="resolver to query (repeatable; overrides domain.nameservers)",
    )
    parser.add_argument("--json", action="store_true", help="print the JSON document")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    from bot.checks.domaincheck import run_domaincheck, watched_domains
    from bot.render.domaincheck import text

    domains = list(args.domains) or watched_domains(ctx.store)
    if not domains:
        ctx.error(
            "no domain given and the watch list has no domains; "
            "e.g. relaywatch domaincheck example.com"
        )
        return ExitCode.USAGE
    started = datetime.now(UTC)
    with ctx.progress() as progress:
        try:
            outcome = asyncio.run(
                run_domaincheck(
                    ctx.config,
                    domains,
                    ips=args.ip,
                    selectors=args.selector,
                    helo=args.helo,
                    nameservers=args.nameserver or None,
                    progress=progress,
                    store=ctx.store,
                )
            )
        except ValueError as exc:  # DomainInputError and a bad --nameserver
            progress.clear()
            ctx.error(str(exc))
            return ExitCode.USAGE
    return ctx.finish_check(outcome, text, args.json, started)
