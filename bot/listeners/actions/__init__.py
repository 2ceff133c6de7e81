"""Buttons on results and alerts: Re-run, Show details, Acknowledge, and the containment buttons
(Block / Hold its mail / Throttle / Dismiss)."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.dispatch import Invocation, parse_command_line
from bot.render.containment import CONTAIN_ACTION
from bot.render.reply import plain_reply
from bot.slack.flow import answer_privately, run_command
from bot.slack.services import BotServices, services_of


def register(app: AsyncApp) -> None:
    app.action("rerun")(handle_rerun)
    # a button that runs a command after Slack's confirmation dialog (queue actions): the same
    # path as Re-run, so the dispatcher authorizes and audits the person who pressed it
    app.action("confirm_command")(handle_rerun)
    app.action("show_details")(handle_show_details)
    app.action("acknowledge")(handle_acknowledge)
    app.action("delist_cause_fixed")(handle_cause_fixed)
    app.action("delist_requested")(handle_delisting_requested)
    app.action(re.compile(f"^{CONTAIN_ACTION}_"))(handle_contain)


def _where(body: dict[str, Any]) -> tuple[str, str, str | None]:
    """(channel, message ts, thread ts of that message if it sits in a thread)."""
    container = body.get("container") or {}
    message = body.get("message") or {}
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id", "")
    ts = message.get("ts") or container.get("message_ts", "")
    return channel, ts, message.get("thread_ts") or container.get("thread_ts")


def _invocation(body: dict[str, Any], command: str, args: str) -> Invocation:
    channel, _, _ = _where(body)
    return Invocation(
        command=command,
        args=args,
        user_id=str((body.get("user") or {}).get("id") or ""),
        channel_id=channel,
        channel_name=(body.get("channel") or {}).get("name", ""),
        source="button",
    )


def _value(body: dict[str, Any]) -> str:
    actions = body.get("actions") or [{}]
    # a button value is at most 2,000 characters; anything longer was not made by us
    return str(actions[0].get("value") or "")[:2000]


def _admitted(services: BotServices, inv: Invocation, body: dict[str, Any]) -> bool:
    """Admission before any work; a refusal is answered once a minute per user, then dropped."""
    refusal = services.dispatcher.admit(inv)
    if refusal is None:
        return True
    if refusal.first:
        reply = plain_reply(f":no_entry: {refusal.shown}", ephemeral=True)
        _, _, thread_ts = _where(body)
        services.work.spawn(
            answer_privately(services, inv, reply, thread_ts, body.get("response_url")),
            name="refusal",
        )
    return False


async def handle_rerun(ack: AsyncAck, body: dict[str, Any], context: Any) -> None:
    await ack()
    services = services_of(context)
    name, args = parse_command_line(_value(body))
    inv = _invocation(body, name, args)
    if not _admitted(services, inv, body):
        return
    _, _, thread_ts = _where(body)
    # a re-run of a threaded answer (a mention) stays in that thread; otherwise a new message
    services.work.spawn(
        run_command(services, inv, thread_ts=thread_ts, response_url=body.get("response_url")),
        name=f"rerun {inv.line}",
    )


async def handle_show_details(ack: AsyncAck, body: dict[str, Any], context: Any) -> None:
    await ack()
    services = services_of(context)
    inv = _invocation(body, "show_details", _value(body))
    if not _admitted(services, inv, body):
        return
    services.work.spawn(_details(services, inv, body), name=f"details {inv.args}")


async def handle_acknowledge(ack: AsyncAck, body: dict[str, Any], context: Any) -> None:
    await ack()
    services = services_of(context)
    inv = _invocation(body, "acknowledge", _value(body))
    if not _admitted(services, inv, body):
        return
    services.work.spawn(_acknowledge(services, inv, body), name=f"ack {inv.args}")


async def handle_cause_fixed(ack: AsyncAck, body: dict[str, Any], context: Any) -> None:
    await ack()
    await _record_delisting(services_of(context), body, "cause_fixed")


async def handle_delisting_requested(ack: AsyncAck, body: dict[str, Any], context: Any) -> None:
    await ack()
    await _record_delisting(services_of(context), body, "requested")


async def _record_delisting(services: BotServices, body: dict[str, Any], field: str) -> None:
    inv = _invocation(body, f"delisting_{field}", _value(body))
    if not _admitted(services, inv, body):
        return

    async def record() -> None:
        result = await services.dispatcher.delisting(inv, field)
        await _in_thread(services, inv, body, result.reply)

    services.work.spawn(record(), name=f"delisting {field} {inv.args}")


async def handle_contain(ack: AsyncAck, body: dict[str, Any], context: Any) -> None:
    """Slack showed the button's confirmation dialog before sending this; the rights are checked
    again here, by the same /contain code path a typed command takes (admins only, audited)."""
    await ack()
    services = services_of(context)
    inv = _invocation(body, "contain", _value(body))
    _, ts, thread_ts = _where(body)
    # the decision belongs to the alert's thread: the entry records it, the reply goes there
    inv = dataclasses.replace(inv, thread_ts=thread_ts or ts)
    services.work.spawn(_contain(services, inv, body), name=f"contain {inv.args}")


async def _contain(services: BotServices, inv: Invocation, body: dict[str, Any]) -> None:
    async def no_progress(text: str) -> None:
        return None

    result = await services.dispatcher.handle(inv, no_progress)
    await _in_thread(services, inv, body, result.reply)


async def _details(services: BotServices, inv: Invocation, body: dict[str, Any]) -> None:
    result = await services.dispatcher.show_details(inv)
    await _in_thread(services, inv, body, result.reply)


async def _acknowledge(services: BotServices, inv: Invocation, body: dict[str, Any]) -> None:
    result = await services.dispatcher.acknowledge(inv)
    await _in_thread(services, inv, body, result.reply)


async def _in_thread(services: BotServices, inv: Invocation, body: dict[str, Any], reply) -> None:
    channel, ts, thread_ts = _where(body)
    if reply.ephemeral:
        await answer_privately(services, inv, reply, thread_ts, body.get("response_url"))
        return
    # details and acknowledgements belong to the message's discussion thread
    await services.poster.post(channel, reply, thread_ts=thread_ts or ts)
