"""The `relaywatch` command line.

Each subcommand is one module in this package exposing `register(subparsers)`, which adds its parser
and sets `run=<callable(args, ctx) -> int>`; adding a module adds the subcommand.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence

from bot.cli.context import CliContext
from bot.config import ConfigError
from bot.exitcodes import ExitCode
from bot.logsetup import configure_logging
from bot.store import StoreError

log = logging.getLogger("relaywatch")

EPILOG = """\
exit codes: 0 nothing wrong, 1 a problem was found (listed, open relay, suspects),
            2 usage or configuration error, 3 a check could not complete

examples:
  relaywatch blacklist 192.0.2.10
  relaywatch relaycheck mx.example.com:25 --json
  relaywatch mailsummary --since 24h
  relaywatch serve            # shell adapter when no Slack tokens are set
"""


class UsageErrorParser(argparse.ArgumentParser):
    """argparse, but usage errors are one line plus a hint, exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = UsageErrorParser(
        prog="relaywatch",
        description=(
            "Keep a mail server off the spam lists: check DNS blocklists, test for an open relay, "
            "and find compromised hosts or accounts in the mail logs."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", metavar="PATH", help="TOML config file (env RELAYWATCH_CONFIG)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr")
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=UsageErrorParser
    )
    for module in _command_modules():
        module.register(subparsers)
    return parser


def _command_modules() -> list:
    package = importlib.import_module(__name__)
    names = sorted(
        info.name
        for info in pkgutil.iter_modules(package.__path__)
        if not info.name.startswith("_") and info.name != "context"
    )
    return [importlib.import_module(f"{__name__}.{name}") for name in names]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(-1 if args.quiet else args.verbose)
    run = getattr(args, "run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return ExitCode.USAGE
    ctx = CliContext(config_path=args.config)
    try:
        return int(run(args, ctx))
    except (ConfigError, StoreError) as exc:
        print(f"relaywatch: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except KeyboardInterrupt:
        print("relaywatch: interrupted", file=sys.stderr)
        return ExitCode.INCOMPLETE
    finally:
        ctx.close()


def entry() -> None:
    sys.exit(main())
