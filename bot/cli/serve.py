"""`relaywatch serve`: run the bot — Slack Socket Mode, Slack over HTTP, or the shell adapter.

Whichever front end runs, the scheduler (daily digest, monitors, alerts) runs in the same event
loop and posts through the same ChatPoster.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import inspect
import logging
import signal
import sys
from dataclasses import dataclass
from typing import Any

from bot.cli.context import CliContext, number_arg
from bot.config import Config
from bot.dispatch import SHELL_CHANNEL, Dispatcher
from bot.exitcodes import ExitCode
from bot.loopthread import LoopThread
from bot.poster import ChatPoster
from bot.store import Store

log = logging.getLogger("relaywatch.serve")

# how long a shutdown waits for commands that are still running before cancelling them
DRAIN_SECONDS = 10.0

EPILOG = """\
modes (chosen from the environment):
  SLACK_BOT_TOKEN + SLACK_APP_TOKEN        Slack Socket Mode (no public endpoint needed)
  SLACK_BOT_TOKEN + SLACK_SIGNING_SECRET   with --http: Slack over HTTP on /slack/events
  no Slack tokens                          the shell adapter: type commands in the terminal,
                                           or pipe them in, one per line

examples:
  relaywatch serve
  echo '/mailhealth watch list' | relaywatch serve
  SLACK_BOT_TOKEN=xoxb-… SLACK_APP_TOKEN=xapp-… relaywatch serve
  relaywatch serve --http --port 3000
"""


class ModeError(Exception):
    """The tokens present do not make a runnable mode; the message says what to set."""


@dataclass(frozen=True)
class Mode:
    kind: str  # "socket" | "http" | "shell"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the bot (Slack Socket Mode, Slack over HTTP, or the shell adapter)",
        description=(
            "Run the relaywatch bot with its scheduler (daily digest, monitors, alerts). "
            "With no Slack tokens it runs the shell adapter in this terminal."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--http", action="store_true", help="serve Slack's requests over HTTP, not Socket Mode"
    )
    parser.add_argument(
        "--port",
        type=number_arg("--port", 0, 65535),
        default=3000,
        help="HTTP port (default 3000; 0: any)",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="HTTP address (default 127.0.0.1: behind the TLS proxy; 0.0.0.0 for every address)",
    )
    parser.add_argument(
        "--shell", action="store_true", help="the shell adapter even when Slack tokens are set"
    )
    parser.set_defaults(run=run)


def pick_mode(args: argparse.Namespace, config: Config) -> Mode:
    secrets = config.secrets
    if args.shell:
        return Mode("shell")
    if args.http:
        missing = [
            name
            for name, value in (
                ("SLACK_BOT_TOKEN", secrets.slack_bot_token),
                ("SLACK_SIGNING_SECRET", secrets.slack_signing_secret),
            )
            if not value
        ]
        if missing:
            raise ModeError(
                f"--http needs {' and '.join(missing)} (environment or secrets_file); "
                "find them under the app's OAuth and Basic Information pages"
            )
        return Mode("http")
    if secrets.slack_bot_token and secrets.slack_app_token:
        return Mode("socket")
    if secrets.slack_bot_token:
        raise ModeError(
            "SLACK_BOT_TOKEN is set but SLACK_APP_TOKEN is not: set SLACK_APP_TOKEN (xapp-…) for "
            "Socket Mode, or run `relaywatch serve --http` with SLACK_SIGNING_SECRET"
        )
    if secrets.slack_app_token:
        raise ModeError("SLACK_APP_TOKEN is set but SLACK_BOT_TOKEN is not: set SLACK_BOT_TOKEN")
    return Mode("shell")


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    try:
        mode = pick_mode(args, ctx.config)
    except ModeError as exc:
        ctx.error(str(exc))
        return ExitCode.USAGE
    try:
        if mode.kind == "shell":
            return asyncio.run(serve_shell(ctx.config, ctx.store, ctx))
        return asyncio.run(serve_slack(mode, args, ctx.config, ctx.store, ctx))
    except KeyboardInterrupt:
        return ExitCode.OK


# -- the scheduler hook (issue 7): optional, decoupled --------------------------------------


async def start_scheduler(poster: ChatPoster, config: Config, store: Store, shell: bool) -> Any:
    """Starts `bot.scheduler.start_for(poster, config, store)` in this loop, if it exists."""
    try:
        module = importlib.import_module("bot.scheduler")
    except ModuleNotFoundError as exc:
        if exc.name != "bot.scheduler":
            raise
        return None
    start_for = getattr(module, "start_for", None)
    if start_for is None:
        return None
    kwargs: dict[str, Any] = {}
    if shell and "channel" in inspect.signature(start_for).parameters:
        kwargs["channel"] = SHELL_CHANNEL  # the terminal is the digest channel
    handle = start_for(poster, config, store, **kwargs)
    if inspect.isawaitable(handle):
        handle = await handle
    return handle


async def stop_scheduler(handle: Any) -> None:
    shutdown = getattr(handle, "shutdown", None)
    if shutdown is None:
        return
    try:
        result = shutdown()
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception("scheduler shutdown failed")


# -- the policy service (issue 10): in the same loop when [policy] listen is set -------------


async def start_policy(config: Config) -> Any:
    if not config.policy.listen:
        return None
    from bot.policy.server import PolicyService, ServiceSettings

    service = PolicyService(ServiceSettings.from_config(config))
    await service.start()
    log.warning("policy service listening on %s", ", ".join(service.addresses))
    return service


async def stop_policy(service: Any) -> None:
    if service is not None:
        await service.stop()


# -- modes ----------------------------------------------------------------------------------


async def serve_shell(config: Config, store: Store, ctx: CliContext) -> int:
    from bot.shell import ShellAdapter, ShellPoster

    poster = ShellPoster(ctx.stdout)
    interactive = sys.stdin.isatty() and ctx.stdout.isatty()
    handle = await start_scheduler(poster, config, store, shell=True)
    policy = await start_policy(config)
    try:
        adapter = ShellAdapter(
            Dispatcher(config, store),
            poster,
            stdin=sys.stdin,
            stderr=ctx.stderr,
            interactive=interactive,
        )
        code = await adapter.run()
    finally:
        await stop_policy(policy)
        await stop_scheduler(handle)
    if not interactive and adapter.handled == 0:
        # typically a service started without its Slack tokens (stdin is /dev/null)
        ctx.error(
            "no Slack tokens and no commands on stdin: nothing to serve; set SLACK_BOT_TOKEN "
            "and SLACK_APP_TOKEN (Socket Mode), or pipe commands in, one per line"
        )
        return ExitCode.USAGE
    return code


async def serve_slack(
    mode: Mode, args: argparse.Namespace, config: Config, store: Store, ctx: CliContext
) -> int:
    from slack_sdk.errors import SlackApiError

    from bot.app import build_app, run_socket_mode, start_http
    from bot.slack.client import api_base_url

    app, services = build_app(config, store)
    try:
        # Fail fast, at start and in one line, on a wrong token or an unreachable API.
        identity = await services.poster.client.auth_test()
    except SlackApiError as exc:
        ctx.error(f"Slack rejected SLACK_BOT_TOKEN ({exc.response.get('error')}); check the token")
        return ExitCode.USAGE
    except OSError as exc:
        ctx.error(f"cannot reach Slack's API at {api_base_url(config)} ({exc})")
        return ExitCode.INCOMPLETE
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    # the schedule runs in a loop of its own: its store calls never delay an acknowledgement
    schedule = LoopThread()
    handle = await schedule.call(
        lambda: start_scheduler(services.poster, config, store, shell=False)
    )
    policy = await start_policy(config)
    who = f"{identity.get('user')} in {identity.get('team')}"
    try:
        if mode.kind == "http":
            server = await start_http(app, args.host, args.port)
            ctx.error(f"serving Slack over HTTP as {who} on {server.url}")
            try:
                await stop.wait()
            finally:
                await server.stop()
        else:
            ctx.error(f"connecting to Slack over Socket Mode as {who}")
            await run_socket_mode(app, config.secrets.slack_app_token, stop)
    finally:
        await stop_policy(policy)
        await schedule.call(lambda: stop_scheduler(handle))
        await schedule.close()
        if not await services.work.drain(within=DRAIN_SECONDS):
            await services.work.cancel()
        await services.dispatcher.close()
    return ExitCode.OK
