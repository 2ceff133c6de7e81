"""A live policy alarm as a chat alert: what crossed which threshold, the evidence, and buttons.

Every value here came from an SMTP client (login names, recipient addresses, the policy context),
so all of it is escaped before it reaches Slack markup.
"""

from __future__ import annotations

from datetime import timedelta

from bot.render.containment import KIND_LABEL, contain_buttons
from bot.render.reply import ChatReply, context, escape, sections
from handlers.policy.containment import ContainmentError, format_duration, parse_subject
from handlers.policy.model import PolicyAlarm

EVIDENCE_ITEMS = 10

# rule → what its count measures
RULE_WORDS = {
    "account_messages_per_minute": "messages",
    "account_messages_per_day": "messages",
    "account_client_ips_per_hour": "client IPs",
    "account_networks_per_hour": "networks (/24, /64)",
    "host_outbound_per_hour": "messages to outside domains",
    "host_domains_per_hour": "outside domains written to",
}


def window_text(seconds: int) -> str:
    named = {60: "a minute", 3600: "an hour", 86400: "a day"}
    return named.get(seconds) or format_duration(timedelta(seconds=max(60, seconds)))


def summary(alarm: PolicyAlarm) -> str:
    """One line, plain text: the alert's summary and the reason a button's entry carries."""
    what = RULE_WORDS.get(alarm.rule, alarm.rule)
    return (
        f"alarm {alarm.rule}: {alarm.count} {what} in {window_text(alarm.window_seconds)} "
        f"(threshold {alarm.threshold})"
    )


def containable(alarm: PolicyAlarm) -> tuple[str, str] | None:
    """The subject in the form /contain accepts, or None with the alert saying why not."""
    try:
        subject = parse_subject(alarm.subject_kind, alarm.subject)
    except ContainmentError:
        return None
    return subject.kind, subject.value


def alarm_reply(alarm: PolicyAlarm, alert_id: int, throttle_rate: str) -> ChatReply:
    kind = KIND_LABEL.get(alarm.subject_kind, alarm.subject_kind)
    what = RULE_WORDS.get(alarm.rule, escape(alarm.rule))
    head = (
        f":rotating_light: live alarm: {escape(kind)} `{escape(alarm.subject)}` — "
        f"*{alarm.count}* {what} in {window_text(alarm.window_seconds)} "
        f"(threshold {alarm.threshold}, rule `{escape(alarm.rule)}`)"
    )
    lines = [head]
    if alarm.client_addresses:
        lines.append("Client IPs: " + _listing(alarm.client_addresses))
    if alarm.sample_recipients:
        lines.append("Sample recipients: " + _listing(alarm.sample_recipients))
    if alarm.policy_context:
        lines.append(f"Seen by: `{escape(alarm.policy_context)}`")
    replicas = alarm.detail.get("replicas")
    if isinstance(replicas, int) and replicas > 1:
        lines.append(f"Counted over {replicas} policy service replicas (their sum crossed it)")
    text = "\n".join(lines)
    blocks = [*sections(text)]
    subject = containable(alarm)
    if subject is None:
        blocks.append(
            context(
                "This subject cannot be contained at smtpd from here (not a valid account or "
                "routable client address); check the server itself."
            )
        )
    else:
        blocks.append(
            context(
                "From the policy service's live counters. Block refuses its new mail (5.7.1), "
                "Hold parks it in Postfix's hold queue, Throttle defers past "
                f"{escape(throttle_rate)}. Each asks for confirmation, is audited and expires."
            )
        )
    buttons = contain_buttons(
        *(subject or (alarm.subject_kind, alarm.subject)),
        reason="from " + summary(alarm),
        throttle_rate=throttle_rate,
        alert_id=alert_id,
    )
    if subject is None:  # Dismiss only
        buttons.elements = buttons.elements[-1:]
    blocks.append(buttons)
    return ChatReply(text=text, blocks=blocks)


def follow_up_text(alarm: PolicyAlarm) -> str:
    return (
        f":arrows_counterclockwise: still going: *{alarm.count}* "
        f"{RULE_WORDS.get(alarm.rule, escape(alarm.rule))} in "
        f"{window_text(alarm.window_seconds)} (threshold {alarm.threshold})"
        + (f"; client IPs {_listing(alarm.client_addresses)}" if alarm.client_addresses else "")
    )


def _listing(items: tuple[str, ...]) -> str:
    shown = ", ".join(f"`{escape(i)}`" for i in items[:EVIDENCE_ITEMS])
    more = len(items) - EVIDENCE_ITEMS
    return shown + (f" and {more} more" if more > 0 else "")
