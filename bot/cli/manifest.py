"""`relaywatch manifest [--http URL]`: print the Slack app manifest for this configuration."""

from __future__ import annotations

import argparse

from bot.cli.context import CliContext
from bot.exitcodes import ExitCode

EPILOG = """\
Socket Mode (the default) needs no URL. For HTTP mode (relaywatch serve --http behind a TLS
proxy), give the bot's public base URL: every request URL of the manifest (the slash commands,
interactivity, events) becomes URL/slack/events. usergroups:read is included only when
[slack] admin_usergroup is set.

examples:
  relaywatch manifest > manifest.yml
  relaywatch manifest --http https://bot.example.com > manifest-http.yml
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "manifest",
        help="print the Slack app manifest for this configuration",
        description="Print the Slack app manifest (YAML) for this build and configuration.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--http",
        metavar="URL",
        help="HTTP mode: the bot's public https:// base URL (request URLs filled in)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    from bot.manifest import ManifestError, build_manifest

    try:
        text = build_manifest(ctx.config, args.http)
    except ManifestError as exc:
        ctx.error(str(exc))
        return ExitCode.USAGE
    ctx.stdout.write(text)
    return ExitCode.OK
