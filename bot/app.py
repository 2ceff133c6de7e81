"""The Slack app: build the Bolt AsyncApp, register the listeners, start it (Socket Mode / HTTP)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.auditlog import AuditRow
from bot.config import Config
from bot.dispatch import AdminDirectory, Dispatcher, new_error_id
from bot.listeners import register_listeners
from bot.slack import SlackPoster, usergroup_lookup, web_client
from bot.slack.http_guard import (
    BODY_READ_SECONDS,
    MAX_BODY_BYTES,
    LogThrottle,
    Rejection,
    ServerLogFilter,
    header_rejection,
    read_body,
)
from bot.slack.poster import DeliveryFailure
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
    poster = SlackPoster(client, on_failure=delivery_failure_recorder(dispatcher))
    services = BotServices(config, store, dispatcher, poster)
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
    app.error(listener_failed)
    return app, services


async def listener_failed(error: Exception) -> BoltResponse:
    """A listener itself failed (a bug, or a payload unlike Slack's): one log line with the trace
    and an error id, and an answer that says so, instead of a bare HTTP 500."""
    error_id = new_error_id()
    logging.getLogger("relaywatch.slack").error(
        "a Slack request could not be handled",
        extra={"error_id": error_id},
        exc_info=(type(error), error, error.__traceback__),
    )
    return BoltResponse(
        status=200,
        body=f":warning: relaywatch could not complete this (error id `{error_id}`).",
    )


def _rejected(rejection: Rejection, request: web.Request, throttle: LogThrottle) -> web.Response:
    throttle.warning(
        rejection.kind,
        f"refused a request: {rejection.text}",
        status=rejection.status,
        peer=request.remote or "",
    )
    response = web.Response(status=rejection.status, text=rejection.text + "\n")
    # close instead of draining what is left of the body (aiohttp would wait up to 10 s for it)
    response.force_close()
    return response


def delivery_failure_recorder(dispatcher: Dispatcher) -> Callable[[DeliveryFailure], None]:
    """Slack refusals are kept in the audit log (written off the loop), besides the log line."""

    def record(failure: DeliveryFailure) -> None:
        outcome = failure.recovered or "not delivered"
        dispatcher.audit.submit(  # type: ignore[union-attr]
            AuditRow(
                user_id="relaywatch",
                command=f"slack:{failure.method}",
                args="",
                allowed=True,
                reason=f"Slack refused ({failure.error}); {outcome}",
                channel_id=failure.channel,
            )
        )

    return record


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


async def start_http(
    app: AsyncApp,
    host: str = "127.0.0.1",
    port: int = 3000,
    *,
    read_timeout: float = BODY_READ_SECONDS,
    throttle: LogThrottle | None = None,
    clock: Callable[[], float] = time.time,
) -> HttpServer:
    """Serves Slack's requests on POST /slack/events; port 0: any.

    Requests are checked here first (complete body, well-formed headers, valid signature), so
    junk gets a 4xx and at most one rate-limited log line; Bolt then checks the signature again.
    """
    throttle = throttle or LogThrottle()
    secret = app._signing_secret or ""  # the secret Bolt verifies with

    async def events(request: web.Request) -> web.Response:
        body = await read_body(request, read_timeout)
        if isinstance(body, Rejection):
            return _rejected(body, request, throttle)
        rejection = header_rejection(request.headers, secret, body, clock())
        if rejection is None:
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                rejection = Rejection(400, "malformed", "body is not UTF-8")
        if rejection is not None:
            return _rejected(rejection, request, throttle)
        bolt_request = AsyncBoltRequest(
            body=text,
            query=request.query_string,
            headers=request.headers,  # type: ignore[arg-type]
        )
        try:
            return await to_aiohttp_response(await app.async_dispatch(bolt_request))
        except Exception:
            # an authentic request Bolt could not handle: one log line with the trace, no trace
            # to the caller
            throttle.exception("unhandled", "could not handle a signed Slack request")
            return web.Response(status=400, text="could not handle the request\n")

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    web_app = web.Application(client_max_size=MAX_BODY_BYTES)
    web_app.add_routes([web.post(EVENTS_PATH, events), web.get("/health", health)])
    # lingering_time: how long to keep reading a refused request's unread body; a stalled client
    # would otherwise hold its connection (and a shutdown) for aiohttp's default 10 s
    server_log = logging.getLogger("relaywatch.http.server")
    for old in [f for f in server_log.filters if isinstance(f, ServerLogFilter)]:
        server_log.removeFilter(old)
    server_log.addFilter(ServerLogFilter(throttle))
    runner = web.AppRunner(web_app, access_log=None, lingering_time=0.5, logger=server_log)
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
