"""Containment outcomes as chat replies, terminal text and JSON, plus the buttons that ask for them.

Every reply that changes something says what was done, until when, and what containment does not
do: it acts at smtpd, so the account's password and locally injected mail are still the admin's.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.containment import Applied, Listing, Outcome, Released
from bot.render.reply import ChatReply, context, escape, mention, sections
from bot.store import iso
from handlers.policy.containment import format_duration
from handlers.policy.model import Containment

if TYPE_CHECKING:
    from slack_sdk.models.blocks import ActionsBlock

# What each action means in Postfix terms (the policy service's answer at RCPT/DATA).
ACTION_EFFECT = {
    "block": "new mail is refused (REJECT 5.7.1 at RCPT)",
    "hold": "its mail is accepted into Postfix's hold queue for review (HOLD)",
    "throttle": "mail past {limit} an hour is deferred (DEFER 4.7.1)",
}
ACTION_PAST = {"block": "Blocked", "hold": "Holding mail of", "throttle": "Throttled"}
KIND_LABEL = {
    "account": "account",
    "host": "host",
    "sender": "sender",
    "sender_domain": "sender domain",
}

NOT_DONE = (
    "Containment acts only where smtpd asks the policy service. It does *not* reset the "
    "account's password (do that where the accounts live, then check for forwarding rules it "
    "set) and it does *not* stop mail injected locally with sendmail/pickup (e.g. a hacked web "
    "app) — that bypasses smtpd; the log summary still sees it."
)
NOT_DONE_TEXT = re.sub(r"\*", "", NOT_DONE)

_BRACKETED = re.compile(r"\[([0-9A-Fa-f:.]+)\]$")
_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")

# action_id of the containment buttons; the value is the /contain arguments they run
CONTAIN_ACTION = "contain"


def who(set_by: str) -> str:
    """A Slack user ID becomes a mention; anything else (a login name) is shown as text."""
    if _SLACK_USER.match(set_by):
        return mention(set_by)
    return escape(set_by) or "someone"


def subject_text(entry: Containment) -> str:
    return f"{KIND_LABEL.get(entry.subject_kind, entry.subject_kind)} `{escape(entry.subject)}`"


def effect(entry: Containment) -> str:
    return ACTION_EFFECT[entry.action].format(limit=entry.limit_per_hour)


def until(entry: Containment, now: datetime) -> str:
    left = entry.expires_at - now
    when = iso(entry.expires_at).replace("T", " ").replace("+00:00", " UTC")
    return f"{when} (in {format_duration(left)})" if left.total_seconds() > 0 else when


def release_hint(entry: Containment) -> str:
    return f"/contain release {entry.subject_kind} {entry.subject}"


# -- chat -----------------------------------------------------------------------------------------


def chat_reply(outcome: Outcome, now: datetime, policy_listen: str = "") -> ChatReply:
    if isinstance(outcome, Applied):
        return _applied_reply(outcome, now, policy_listen)
    if isinstance(outcome, Released):
        return _released_reply(outcome)
    return _listing_reply(outcome)


def _applied_reply(outcome: Applied, now: datetime, policy_listen: str) -> ChatReply:
    entry = outcome.entry
    icon = {"block": ":no_entry:", "hold": ":pause_button:", "throttle": ":snail:"}[entry.action]
    lines = [
        f"{icon} {ACTION_PAST[entry.action]} {subject_text(entry)} until {until(entry, now)}: "
        f"{effect(entry)}.",
    ]
    if entry.cut_sessions:
        lines.append("Live sessions of this subject get one `421` so they end now.")
    if entry.reason:
        lines.append(f"Reason: {escape(entry.reason)}")
    for old in outcome.replaced:
        lines.append(
            f"Replaces the {old.action} set by {who(old.set_by)} (entry #{old.id}, "
            f"was until {until(old, now)})."
        )
    if outcome.guessed_kind:
        lines.append(
            f"Taken as {KIND_LABEL[entry.subject_kind]}; say `sender {escape(entry.subject)}` "
            "to contain the envelope sender instead."
        )
    lines.append(
        f"Set by {who(entry.set_by)} · entry #{entry.id} · a reminder comes before it lapses · "
        f"release early: `{escape(release_hint(entry))}`"
    )
    text = "\n".join(lines)
    notes = [context(NOT_DONE)]
    if not policy_listen:
        notes.append(
            context(
                "This bot runs no policy service ([policy] listen is empty): the entry applies "
                "where `relaywatch policy serve` reads this store."
            )
        )
    return ChatReply(text=text + "\n" + NOT_DONE_TEXT, blocks=[*sections(text), *notes])


def _released_reply(outcome: Released) -> ChatReply:
    label = f"{KIND_LABEL[outcome.subject.kind]} `{escape(outcome.subject.value)}`"
    if not outcome.entries:
        text = f"Nothing to release: no active containment for {label}."
        return ChatReply(text=text, blocks=sections(text))
    actions = ", ".join(f"{e.action} (#{e.id})" for e in outcome.entries)
    text = (
        f":white_check_mark: Released {label}: {actions}. Its mail flows normally again "
        "within a second. Messages already in the hold queue stay there: release them with "
        "`postsuper -H` or delete them with `postsuper -d` after review."
    )
    return ChatReply(text=text, blocks=sections(text))


def _listing_reply(outcome: Listing) -> ChatReply:
    if not outcome.entries:
        what = "No containment entries yet." if outcome.history else "Nothing is contained."
        return ChatReply(text=what, blocks=sections(what))
    title = "Containment history" if outcome.history else "Active containment"
    lines = [f"*{title}* ({len(outcome.entries)})"]
    for entry in outcome.entries:
        lines.append("• " + _entry_line(entry, outcome.now))
    text = "\n".join(lines)
    return ChatReply(text=text, blocks=sections(text))


def _entry_line(entry: Containment, now: datetime) -> str:
    rate = f" {entry.limit_per_hour}/h" if entry.action == "throttle" else ""
    line = f"#{entry.id} *{entry.action}*{rate} {subject_text(entry)}"
    state = _state(entry, now)
    line += f" — {state}" if state else f" — until {until(entry, now)}"
    if entry.reason:
        line += f" — {escape(entry.reason)}"
    return line + f" — by {who(entry.set_by)}"


def _state(entry: Containment, now: datetime) -> str:
    if entry.released_at is not None:
        return f"released {iso(entry.released_at)} by {who(entry.released_by)}"
    if entry.expires_at <= now:
        return f"lapsed {iso(entry.expires_at)}"
    return ""


# -- buttons --------------------------------------------------------------------------------------


def contain_buttons(
    subject_kind: str, subject: str, reason: str, throttle_rate: str, alert_id: int | None
) -> ActionsBlock:
    """Block / Hold its mail / Throttle / Dismiss, each behind a confirmation dialog."""
    from slack_sdk.models.blocks import ActionsBlock, ButtonElement, ConfirmObject

    label = KIND_LABEL.get(subject_kind, subject_kind)
    # the value is what /contain would be given; the reason keeps the alert's one-line summary
    note = " ".join(reason.split())[:200]
    target = f"{subject_kind} {subject}"
    specs = [
        ("block", f"Block {label}", f"block {target} {note}", "Refuse its new mail (5.7.1)"),
        ("hold", "Hold its mail", f"hold {target} {note}", "Park its mail in the hold queue"),
        (
            "throttle",
            "Throttle",
            f"throttle {target} {throttle_rate} {note}",
            f"Defer its mail past {throttle_rate}",
        ),
    ]
    elements = [
        ButtonElement(
            action_id=f"{CONTAIN_ACTION}_{verb}",
            text=text,
            value=value.strip()[:2000],
            style="danger" if verb == "block" else None,
            confirm=ConfirmObject(
                title=f"{text}?"[:100],
                text=f"{what} for `{escape(subject[:150])}` (default expiry; audited).",
                confirm="Yes, do it",
                deny="Cancel",
            ),
        )
        for verb, text, value, what in specs
    ]
    if alert_id is not None:
        elements.append(
            ButtonElement(
                action_id=f"{CONTAIN_ACTION}_dismiss",
                text="Dismiss",
                value=f"dismiss {alert_id}",
                confirm=ConfirmObject(
                    title="Dismiss this alert?",
                    text="Closes the alert without containing anything (audited).",
                    confirm="Dismiss",
                    deny="Cancel",
                ),
            )
        )
    return ActionsBlock(elements=elements)


# a log-summary suspect's subject_type → the containment subject kind (local senders are not
# containable at smtpd: their mail arrives through sendmail/pickup)
SUSPECT_KINDS = {"account": "account", "client": "host"}


def suspect_buttons(
    subject_type: str, subject: str, reason: str, throttle_rate: str, alert_id: int | None = None
) -> ActionsBlock | None:
    """The containment buttons for a log-summary suspect, or None when it cannot be contained."""
    from handlers.policy.containment import ContainmentError, parse_subject

    kind = SUSPECT_KINDS.get(subject_type)
    if kind is None:
        return None
    bracketed = _BRACKETED.search(subject)  # a client as Postfix logs it: name[192.0.2.7]
    if kind == "host" and bracketed:
        subject = bracketed.group(1)
    try:
        parsed = parse_subject(kind, subject)
    except ContainmentError:
        return None
    return contain_buttons(parsed.kind, parsed.value, reason, throttle_rate, alert_id)


# -- terminal and JSON ----------------------------------------------------------------------------


def plain_text(outcome: Outcome, now: datetime) -> str:
    """What the CLI prints: the chat text without Slack markup."""
    reply = chat_reply(outcome, now, policy_listen="-")
    text = reply.text.replace("`", "").replace("*", "")
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def entry_json(entry: Containment) -> dict[str, Any]:
    return {
        "id": entry.id,
        "subject_kind": entry.subject_kind,
        "subject": entry.subject,
        "action": entry.action,
        "limit_per_hour": entry.limit_per_hour,
        "cut_sessions": entry.cut_sessions,
        "reason": entry.reason,
        "set_by": entry.set_by,
        "set_at": iso(entry.set_at),
        "expires_at": iso(entry.expires_at),
        "channel": entry.channel,
        "thread_ts": entry.thread_ts,
        "released_at": iso(entry.released_at) if entry.released_at else None,
        "released_by": entry.released_by,
    }


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    if isinstance(outcome, Applied):
        return {
            "done": "contained",
            "entry": entry_json(outcome.entry),
            "replaced": [entry_json(e) for e in outcome.replaced],
            "not_done": NOT_DONE_TEXT,
        }
    if isinstance(outcome, Released):
        return {
            "done": "released" if outcome.entries else "nothing to release",
            "subject_kind": outcome.subject.kind,
            "subject": outcome.subject.value,
            "released": [entry_json(e) for e in outcome.entries],
        }
    assert isinstance(outcome, Listing)
    return {"history": outcome.history, "entries": [entry_json(e) for e in outcome.entries]}
