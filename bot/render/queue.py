"""The mail queue and queue actions as terminal text and as a chat reply.

Senders, recipient domains and delay reasons are chosen by whoever sent the mail: escaped for
Slack, control characters made visible for terminals.
"""

from __future__ import annotations

from typing import Any

from bot.render.reply import ChatReply, context, escape, header, sections
from bot.render.terminal import visible
from handlers.queue import QueueActionResult

_ACTION_WORDS = {"hold": "held", "release": "released", "delete": "deleted"}


def size(value: int) -> str:
    for unit, factor in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if value >= factor:
            return f"{value / factor:.1f} {unit}"
    return f"{value} B"


def age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def headline(data: dict[str, Any]) -> str:
    if "error" in data:
        return f"could not read the queue: {data['error']}"
    queues = ", ".join(
        f"{name} {counts['messages']}" for name, counts in sorted(data["by_queue"].items())
    )
    return (
        f"{data['messages']} queued messages ({size(data['bytes'])}, "
        f"{data['recipients']} recipients){': ' + queues if queues else ''}; "
        f"oldest {age(data['oldest_age_seconds'])}"
    )


def _ranked_lines(title: str, rows: list[dict[str, Any]], show) -> list[str]:
    if not rows:
        return []
    lines = [title]
    for row in rows:
        marks = f"  [{', '.join(row['marks'])}]" if row["marks"] else ""
        lines.append(f"  {row['messages']:>7}  {size(row['bytes']):>9}  {show(row['key'])}{marks}")
    return lines


def text(data: dict[str, Any]) -> str:
    lines = [headline(data)]
    if "error" in data:
        return lines[0]
    for title, key in (
        ("Top senders:", "top_senders"),
        ("Top SASL accounts:", "top_accounts"),
        ("Top clients:", "top_clients"),
        ("Top recipient domains:", "top_recipient_domains"),
    ):
        lines.extend(_ranked_lines(title, data[key], visible))
    if data["top_delay_reasons"]:
        lines.append("Most common delay reasons:")
        lines.extend(
            f"  {row['recipients']:>7}  {visible(row['reason'])}"
            for row in data["top_delay_reasons"]
        )
    lines.extend(f"warning: {visible(w)}" for w in data["warnings"])
    if _flagged(data):
        lines.append(
            "next: hold the mail of a suspect or contained sender before it goes out: "
            "relaywatch queue hold account|sender|client VALUE"
        )
    return "\n".join(lines)


def _flagged(data: dict[str, Any]) -> bool:
    return any(
        row["marks"] for key in ("top_senders", "top_accounts", "top_clients") for row in data[key]
    )


def chat_reply(data: dict[str, Any], admin: bool) -> ChatReply:
    first = headline(data)
    if "error" in data:
        return ChatReply(
            text=escape(first),
            blocks=sections(f":large_yellow_circle: {escape(first)}"),
        )
    blocks = [header("Mail queue"), *sections(escape(first))]
    for title, key in (
        ("Senders", "top_senders"),
        ("SASL accounts", "top_accounts"),
        ("Clients", "top_clients"),
        ("Recipient domains", "top_recipient_domains"),
    ):
        rows = data[key][:8]
        if rows:
            body = "\n".join(
                f"• `{escape(row['key'])}` {row['messages']} ({size(row['bytes'])})"
                + (f" — *{', '.join(row['marks'])}*" if row["marks"] else "")
                for row in rows
            )
            blocks.extend(sections(f"*{title}*\n{body}"))
    if data["top_delay_reasons"]:
        body = "\n".join(
            f"• {row['recipients']} × {escape(row['reason'][:200])}"
            for row in data["top_delay_reasons"][:5]
        )
        blocks.extend(sections(f"*Why mail waits*\n{body}"))
    if _flagged(data):
        hint = (
            "`/mailqueue hold account|sender|client VALUE` holds that mail for review"
            if admin
            else "an admin can hold that mail for review with `/mailqueue hold …`"
        )
        blocks.append(context(f"Mail of suspects or contained subjects is still queued: {hint}"))
    for warning in data["warnings"][:3]:
        blocks.append(context(f":warning: {escape(warning)}"))
    return ChatReply(text=escape(first), blocks=blocks)


def plan_text(result: QueueActionResult) -> str:
    plan = result.plan
    count = len(plan.queue_ids)
    what = f"{count} messages ({size(plan.bytes)}) of {visible(str(plan.selection))}"
    if result.dry_run:
        line = f"dry run: would {plan.action} {what}"
    elif result.ok:
        line = f"{_ACTION_WORDS[plan.action]} {what}"
    else:
        line = f"could not {plan.action} {what}: {visible(result.error)}"
    if plan.elsewhere:
        source = "the hold queue" if plan.action != "hold" else "the queues it holds from"
        line += f"; {plan.elsewhere} more of theirs are not in {source}"
    lines = [line, *(f"  {visible(out)}" for out in result.output)]
    # an unreadable log means mail of this account or client may be missing from the plan
    lines.extend(f"warning: {visible(text)}" for text in plan.warnings)
    if result.ok and not result.dry_run and plan.action == "hold" and count:
        lines.append(
            "next: review the held mail (postcat -q ID), then delete it from hold or release it"
        )
    return "\n".join(lines)


def plan_reply(result: QueueActionResult, command_args: str) -> ChatReply:
    body = escape(plan_text(result))
    plan = result.plan
    blocks = sections(body)
    if result.dry_run and plan.queue_ids:
        blocks.append(_confirm_button(result, command_args))
    return ChatReply(text=body, blocks=blocks)


def _confirm_button(result: QueueActionResult, command_args: str):
    from slack_sdk.models.blocks import ActionsBlock, ButtonElement, ConfirmObject

    plan = result.plan
    count = len(plan.queue_ids)
    return ActionsBlock(
        elements=[
            ButtonElement(
                action_id="confirm_command",
                text=f"{plan.action.capitalize()} {count} messages",
                value=f"mailqueue {command_args} --yes"[:2000],
                style="danger" if plan.action == "delete" else "primary",
                confirm=ConfirmObject(
                    title=f"{plan.action.capitalize()} queued mail?",
                    text=(
                        f"{plan.action.capitalize()} {count} messages of "
                        f"{escape(str(plan.selection))}? This is recorded in the audit log."
                    )[:300],
                    confirm=plan.action.capitalize(),
                    deny="Cancel",
                ),
            )
        ]
    )
