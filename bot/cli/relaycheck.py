"""`relaywatch relaycheck`: test mail servers for open relaying, with SMTP diagnostics."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime

from bot.cli.context import CliContext
from bot.exitcodes import ExitCode

# handlers.relay (aiosmtplib, dnspython) is imported inside run(): every `relaywatch` invocation
# imports this module to build its parser, and most of them never test a relay.

EPILOG = """\
Nothing is ever delivered: after an accepted RCPT TO relaywatch sends DATA, waits for the 354
and hangs up before any message text, so no test message can be queued (and a server that
refuses at DATA is not reported open). --no-data stops at RCPT TO (the verdict may overstate).

verdicts: open, suspect (exit 1) · closed (exit 0) · inconclusive, unreachable (exit 3)

examples:
  relaywatch relaycheck                       # relay.default_target (localhost:25)
  relaywatch relaycheck mx.example.com 192.0.2.10:587 '[2001:db8::25]:25'
  relaywatch relaycheck --mx example.com --json
  relaywatch relaycheck mx.example.com --no-data --tls require
  relaywatch relaycheck --list-tests
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "relaycheck",
        help="test mail servers for open relaying (and SMTP/TLS/DNS diagnostics)",
        description=(
            "Run a battery of relay attempts (every nmap smtp-open-relay form plus more) against "
            "each target over one SMTP session, and report a verdict with the evidence: open, "
            "closed, suspect, inconclusive or unreachable. Targets are tested side by side."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "targets",
        nargs="*",
        metavar="TARGET",
        help="host, host:port, IPv4[:port] or [IPv6]:port (default: relay.default_target)",
    )
    parser.add_argument(
        "--mx",
        action="append",
        default=[],
        metavar="DOMAIN",
        help="test every MX host of DOMAIN (repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="print the JSON document")
    parser.add_argument(
        "--details",
        action="store_true",
        help="every test and the diagnostics also for closed servers (as does -v)",
    )
    parser.add_argument(
        "--no-data",
        action="store_true",
        help="stop at RCPT: do not send DATA after an accepted RCPT (the verdict may overstate)",
    )
    parser.add_argument(
        "--confirm",
        action="store_true",
        help="accepted for old scripts: DATA after an accepted RCPT is now the default",
    )
    parser.add_argument(
        "--tls",
        choices=("auto", "require", "off"),
        help="STARTTLS: auto = when offered (default: relay.tls), require, off",
    )
    parser.add_argument(
        "--test",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this test (repeatable; see --list-tests)",
    )
    parser.add_argument(
        "--list-tests", action="store_true", help="list the battery's tests and exit"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    from handlers.relay import BATTERY, TargetError

    if args.list_tests:
        return list_tests(args, ctx)
    known = {spec.name for spec in BATTERY}
    unknown = [name for name in args.test if name not in known]
    if unknown:
        ctx.error(f"unknown test {unknown[0]!r}; see: relaywatch relaycheck --list-tests")
        return ExitCode.USAGE
    from bot.checks.relay import run_relay
    from bot.render.relay import text

    started = datetime.now(UTC)
    with ctx.progress() as progress:
        try:
            outcome = asyncio.run(
                run_relay(
                    ctx.config,
                    args.targets,
                    mx_domains=args.mx,
                    confirm=not args.no_data,
                    tls=args.tls,
                    only_tests=tuple(args.test),
                    progress=progress,
                )
            )
        except TargetError as exc:
            progress.clear()
            ctx.error(str(exc))
            return ExitCode.USAGE
    verbose = args.details or args.verbose > 0
    return ctx.finish_check(outcome, lambda data: text(data, verbose=verbose), args.json, started)


def list_tests(args: argparse.Namespace, ctx: CliContext) -> int:
    from handlers.relay import BATTERY

    if args.json:
        ctx.print_json(
            {
                "tests": [
                    {
                        "name": spec.name,
                        "kind": spec.kind,
                        "origin": spec.origin,
                        "mail_from": _template(spec.mail_from),
                        "rcpt_to": _template(spec.rcpt_to),
                        "description": spec.description,
                    }
                    for spec in BATTERY
                ]
            }
        )
        return ExitCode.OK
    config = ctx.config.relay
    ctx.print(
        f"{len(BATTERY)} tests. SERVER = the name in the server's banner, IP = its address; "
        f"recipient domain {config.test_domain}, sender domain {config.sender_domain} "
        "(relay.test_domain, relay.sender_domain).\n"
        "plain: accepting it makes the server an open relay; trick: accepting it is suspect.\n"
    )
    width = max(len(spec.name) for spec in BATTERY)
    for spec in BATTERY:
        ctx.print(
            f"{spec.name:<{width}}  {spec.kind:<5}  {spec.origin:<10}  "
            f"MAIL FROM:{_template(spec.mail_from)} → RCPT TO:{_template(spec.rcpt_to)}"
        )
        ctx.print(f"{'':<{width}}  {spec.description}")
    return ExitCode.OK


def _template(text: str) -> str:
    return (
        text.replace("{lp}", "user")
        .replace("{LP}", "USER")
        .replace("{slp}", "sender")
        .replace("{ext}", "EXT")
        .replace("{EXT}", "EXT(upper-case)")
        .replace("{sdom}", "SENDERDOMAIN")
        .replace("{server}", "SERVER")
        .replace("{ip}", "[IP]")
    )
