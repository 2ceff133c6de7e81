"""The Slack app: build the Bolt AsyncApp, register the listeners, start it (Socket Mode / HTTP)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Config
from bot.dispatch import AdminDirectory, Dispatcher
from bot.listeners import register_listeners
from bot.slack import SlackPoster, usergroup_lookup, web_client
from bot.slack.services import CONTEXT_KEY, BotServices
from bot.store import Store

EVENTS_PATH = "/slack/events"


class _SkipTokenWarning(logging.Filter):
    # Bolt reads SLACK_BOT_TOKEN from the environment itself and then warns that our client (which
    # carries that same token, plus base URL and retry handlers) takes precedence: noise.
    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


def bolt_logger() -> logging.Logger:
    logger = logging.getLogger("relaywatch.bolt")
    if not any(isinstance(f, _SkipTokenWarning) for f in logger.filters):
        logger.addFilter(_SkipTokenWarning())
    return logger


def build_app(
    config: Config,
    store: Store,
    client: AsyncWebClient | None = None,
    commands: dict[str, Any] | None = None,
) -> tuple[AsyncApp, BotServices]:
    client = client or web_client(config)
    admins = AdminDirectory(
        config.slack.admins, config.slack.admin_usergroup, lookup=usergroup_lookup(client)
    )
    dispatcher = Dispatcher(config, store, admins=admins)
    if commands is not None:
        dispatcher.commands = commands
    services = BotServices(config, store, dispatcher, SlackPoster(client))
    app = AsyncApp(
        client=client,
        logger=bolt_logger(),
        signing_secret=config.secrets.slack_signing_secret,
        # Every listener acks and hands the work to a background task, so it returns within
        # microseconds: answering when it returns skips Bolt's 10 ms ack polling, and the ack
        # leaves before the work's first Slack call.
        process_before_response=True,
        # unknown buttons or events get a quiet 404 instead of an error log per request
        raise_error_for_unhandled_request=False,
    )

    async def provide_services(context: dict[str, Any], next: Any) -> None:
        context[CONTEXT_KEY] = services
        await next()

    app.use(provide_services)
    register_listeners(app)
    return app, services


@dataclass
class HttpServer:
    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{EVENTS_PATH}"

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_http(app: AsyncApp, host: str = "127.0.0.1", port: int = 3000) -> HttpServer:
    """Serves Slack's requests on POST /slack/events (signatures checked by Bolt); port 0: any."""

    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    web_app = web.Application()
    web_app.add_routes([web.post(EVENTS_PATH, events), web.get("/health", health)])
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1] if port == 0 else port  # type: ignore[union-attr]
    return HttpServer(runner, host, int(bound))


async def run_socket_mode(app: AsyncApp, app_token: str, stop: asyncio.Event) -> None:
    """Socket Mode: an outbound WebSocket, so it works behind NAT with no public endpoint."""
    handler = AsyncSocketModeHandler(app, app_token)
    await handler.connect_async()
    try:
        await stop.wait()
    finally:
        await handler.close_async()
