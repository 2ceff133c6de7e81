"""`relaywatch mailsummary`: pflogsumm's numbers for the mail log, and the compromised suspects."""

from __future__ import annotations

import argparse
import asyncio
import os
from datetime import UTC, datetime

from bot.cli.context import CliContext
from bot.exitcodes import ExitCode
from handlers.numbers import NumberError, parse_count

EPILOG = """\
Reads the configured logs ([logs] paths with their rotations, oldest first, .gz included; or the
journal with [logs] journal = true) over the configured window (24h), or the FILEs you name
(whole, unless --since/--until narrow them; - reads stdin). Totals mean what pflogsumm means.

Every verdict about "outside" depends on the LAN: --internal-networks, else [logsummary]
internal_networks, else the local Postfix's mynetworks or Exim's relay_from_hosts, else RFC 1918
and loopback; the report's second line says which networks were assumed and where from.

exit codes: 0 no suspects · 1 suspects found · 2 usage error · 3 could not check (the logs
could not be read, or held no mail log lines in the window: "no suspects" would be a guess)

examples:
  relaywatch mailsummary
  relaywatch mailsummary --since 24h --json
  relaywatch mailsummary --since 2026-11-27T00:00 --until 2026-11-28T00:00
  relaywatch mailsummary /var/log/mail.log /var/log/mail.log.1 --top 20
  relaywatch mailsummary --internal-networks 192.168.10.0/24,10.8.0.0/16
  journalctl -u postfix@- -o short-iso | relaywatch mailsummary -
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "mailsummary",
        help="summarise the mail log (pflogsumm's totals) and name compromised accounts/hosts",
        description=(
            "Summarise Postfix or Exim logs with the same totals as pflogsumm (received,\n"
            "delivered, deferred, bounced, rejected, …, per hour, top senders and domains,\n"
            "reject reasons, SASL), then list the suspects: accounts used from many places,\n"
            "internal hosts sending straight out, volume spikes, bounce storms, relay probers,\n"
            "password guessing — each with the log lines that show it."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "files", nargs="*", metavar="FILE", help="log files (default: the configured logs; - stdin)"
    )
    parser.add_argument("--since", metavar="WHEN", help="24h, 90m, 7d or 2026-11-27T00:00")
    parser.add_argument("--until", metavar="WHEN", help="same forms as --since")
    parser.add_argument(
        "--internal-networks",
        metavar="CIDRS",
        help="the LAN, comma-separated (10.0.0.0/8,192.168.1.0/24); default: [logsummary] "
        "internal_networks, else the local MTA's mynetworks / relay_from_hosts, else RFC 1918 "
        "and loopback",
    )
    parser.add_argument("--json", action="store_true", help="print the JSON document")
    parser.add_argument(
        "--top",
        default="10",
        metavar="N",
        help="entries per top-N list (default 10)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    from bot.checks.mailsummary import run_mailsummary
    from bot.render.mailsummary import text
    from handlers.logsummary.inputs import not_regular
    from handlers.logsummary.lan import normalise_network
    from handlers.logsummary.timefmt import TimeSpecError

    try:
        top = parse_count(args.top, "--top", minimum=1, maximum=100_000)
    except NumberError as exc:
        ctx.error(str(exc))
        return ExitCode.USAGE
    for path in args.files:
        if path == "-":
            continue
        try:
            refused = not_regular(os.stat(path).st_mode)
        except FileNotFoundError:
            refused = "no such file (name a mail log, or - for stdin)"
        except OSError as exc:
            refused = f"{exc.strerror or 'cannot read'} (name a mail log, or - for stdin)"
        if refused:
            ctx.error(f"{path}: {refused}")
            return ExitCode.USAGE
    networks: list[str] | None = None
    if args.internal_networks is not None:
        networks = [n.strip() for n in args.internal_networks.split(",") if n.strip()]
        bad = [n for n in networks if normalise_network(n) is None]
        if bad or not networks:
            shown = repr(bad[0]) if bad else "nothing"
            ctx.error(
                f"--internal-networks: {shown} is not a network (give CIDRs or addresses, "
                "comma-separated: 10.0.0.0/8,192.168.1.0/24)"
            )
            return ExitCode.USAGE
    started = datetime.now(UTC)
    with ctx.progress() as progress:
        try:
            outcome = asyncio.run(
                run_mailsummary(
                    ctx.config,
                    since=args.since,
                    until=args.until,
                    files=args.files or None,
                    store=ctx.optional_store(),
                    top=top,
                    progress=progress,
                    internal_networks=networks,
                )
            )
        except TimeSpecError as exc:
            progress.clear()
            ctx.error(str(exc))
            return ExitCode.USAGE
    return ctx.finish_check(outcome, text, args.json, started)
