"""`relaywatch digest`: the health digest in the terminal (or posted to the digest channel)."""

from __future__ import annotations

import argparse
import asyncio

from bot.cli.context import CliContext
from bot.config import Config
from bot.digest import Digest, build_digest
from bot.exitcodes import ExitCode
from bot.monitor import Monitor
from bot.render import digest as render
from bot.store import utc_now

EPILOG = """\
Runs the checks whose stored results are too old (blocklists of the watch list, the relay test of
watched servers, the mail-log summary), records them, and prints the digest. Changes are counted
since the last digest the bot sent (or the last 24 hours).

exit codes: 0 green or yellow, 1 red (listed, open relay, possible compromise),
            3 some check could not run (and nothing is red), 2 usage or configuration error

examples:
  relaywatch digest
  relaywatch digest --cached --json
  relaywatch digest --post      # to [slack] digest_channel, needs SLACK_BOT_TOKEN
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "digest",
        help="print the mail health digest",
        description="The mail health digest: blocklists, open relay, mail totals and suspects.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print the digest as JSON")
    refresh = parser.add_mutually_exclusive_group()
    refresh.add_argument(
        "--cached", action="store_true", help="run no checks; use stored results only"
    )
    refresh.add_argument(
        "--fresh", action="store_true", help="run every check now, even if results are fresh"
    )
    parser.add_argument(
        "--post",
        action="store_true",
        help="also post it to [slack] digest_channel (needs SLACK_BOT_TOKEN)",
    )
    parser.set_defaults(run=run)


def exit_code(digest: Digest) -> int:
    if digest.status == "red":
        return ExitCode.PROBLEM
    if digest.not_run:
        return ExitCode.INCOMPLETE
    return ExitCode.OK


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    config = ctx.config
    if args.post and not (config.secrets.slack_bot_token and config.slack.digest_channel):
        ctx.error(
            "--post needs SLACK_BOT_TOKEN in the environment and [slack] digest_channel in the "
            "config (or RELAYWATCH_SLACK_DIGEST_CHANNEL)"
        )
        return ExitCode.USAGE
    store = ctx.store
    if not args.cached:
        monitor = Monitor(config, store)
        with ctx.progress() as progress:
            if args.fresh:
                for kind in ("blacklist", "relay", "mailsummary"):
                    progress(f"{kind}: checking…")
                    asyncio.run(monitor.run(kind, progress=progress))
            else:
                progress("refreshing results that are too old…")
                asyncio.run(monitor.refresh_stale(progress=progress))
    digest = build_digest(store, config, utc_now())
    if args.json:
        ctx.print_json(digest.to_json())
    else:
        ctx.print(render.text(digest))
    if args.post:
        try:
            ts = asyncio.run(_post(config, digest))
        except Exception as exc:
            ctx.error(f"could not post the digest to {config.slack.digest_channel}: {exc}")
            return ExitCode.INCOMPLETE
        ctx.error(f"posted to {config.slack.digest_channel} (ts {ts})")
    return exit_code(digest)


async def _post(config: Config, digest: Digest) -> str:
    from bot.slack.client import web_client
    from bot.slack.poster import SlackPoster

    poster = SlackPoster(web_client(config))
    return await poster.post(config.slack.digest_channel, render.chat_reply(digest))
