"""`relaywatch config check`: print the effective configuration, secrets masked."""

from __future__ import annotations

import argparse

from bot.cli.context import CliContext
from bot.config import effective_config_toml
from bot.exitcodes import ExitCode


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "config",
        help="inspect the configuration",
        description="Inspect relaywatch's configuration.",
        epilog="example: relaywatch config check",
    )
    actions = parser.add_subparsers(dest="config_action", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check",
        help="validate and print the effective configuration (secrets masked)",
        description=(
            "Load defaults, the config file and RELAYWATCH_* variables, validate and print the "
            "result as TOML with secrets masked. Exit 2 with a one-line reason when invalid."
        ),
        epilog="example: relaywatch --config /etc/relaywatch/config.toml config check",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.set_defaults(run=run_check)


def run_check(args: argparse.Namespace, ctx: CliContext) -> int:
    ctx.print(effective_config_toml(ctx.config).rstrip("\n"))
    return ExitCode.OK
