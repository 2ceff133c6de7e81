"""Mail-log summary as terminal text, Slack blocks and the stored-JSON detail report.

Everything renders from the documented JSON dict (the store keeps exactly that), so a report from
history looks the same as a fresh one. Suspects come first: they are what an admin acts on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.checks import CheckOutcome
from bot.render.containment import suspect_buttons
from bot.render.reply import (
    STATUS_EMOJI,
    ChatReply,
    code_sections,
    context,
    detail_reply,
    divider,
    escape,
    header,
    result_buttons,
    sections,
)
from handlers.logsummary.report import MailLogReport

# Suspects shown in the chat message itself (each gets a thread reply with its evidence)
CHAT_SUSPECTS = 5
# Suspects the text report shows with reasons and evidence; the rest get one line each
TEXT_DETAILED_SUSPECTS = 8
KIND_LABELS = {
    "open_relay": "relayed for a stranger (open relay)",
    "sasl_many_ips": "account used from many places",
    "sasl_bruteforce_account": "password guessing on an account",
    "sasl_password_guessed": "password guessed, then used",
    "sasl_bruteforce": "password guessing from an address",
    "internal_host_outbound": "internal host sending straight out",
    "volume_spike": "volume far above its usual",
    "volume_outlier": "volume far above everyone else",
    "bounce_ratio": "many bounces / deferrals",
    "user_unknown": "many unknown recipients",
    "many_recipients": "many recipients per message",
    "relay_probe": "relay probing",
}
# Findings about attacks on us (nothing got through) rather than a compromised account or host
ATTACK_KINDS = frozenset(("relay_probe", "sasl_bruteforce", "sasl_bruteforce_account"))
SUBJECT_LABELS = {
    "account": "account",
    "client": "client",
    "local_sender": "local sender",
    "server": "server",
}
_TOTAL_LINES = (
    ("received", "received"),
    ("delivered", "delivered"),
    ("forwarded", "forwarded"),
    ("deferred", "deferred"),
    ("bounced", "bounced"),
    ("rejected", "rejected"),
    ("reject_warnings", "reject warnings"),
    ("held", "held"),
    ("discarded", "discarded"),
    ("bytes_received", "bytes received"),
    ("bytes_delivered", "bytes delivered"),
    ("senders", "senders"),
    ("sending_hosts", "sending hosts/domains"),
    ("recipients", "recipients"),
    ("recipient_hosts", "recipient hosts/domains"),
)


def text(result: MailLogReport | dict[str, Any]) -> str:
    """The full terminal report: suspects with evidence, then pflogsumm's sections."""
    data = result if isinstance(result, dict) else result.to_dict()
    return details_text(data)


def details_text(data: dict[str, Any]) -> str:
    if data.get("error"):
        return f"mail summary could not complete: {data['error']}"
    out: list[str] = [_title(data), _lan_note(data), ""]
    if data.get("could_not_check"):
        out += [f"COULD NOT CHECK: {data['could_not_check']}", "Suspects: not checked", ""]
    else:
        out += _suspects_text(data.get("suspects") or [])
    out += _totals_text(data)
    out += _per_hour_text(data.get("per_hour") or [])
    top = data.get("top") or {}
    out += _table(
        "Senders by message count",
        [(e["messages"], e["address"]) for e in top.get("senders_by_count", [])],
    )
    out += _table(
        "Senders by bytes",
        [(_size(e["bytes"]), e["address"]) for e in top.get("senders_by_bytes", [])],
    )
    out += _table(
        "Recipients by message count",
        [(e["messages"], e["address"]) for e in top.get("recipients_by_count", [])],
    )
    out += _table(
        "Recipient domains (delivered, bytes, deferred)",
        [
            (e["delivered"], f"{_size(e['bytes']):>7}  {e['deferred']:>5}  {e['domain']}")
            for e in top.get("recipient_domains", [])
        ],
    )
    out += _table(
        "Sending domains",
        [
            (e["messages"], f"{_size(e['bytes']):>7}  {e['domain']}")
            for e in top.get("sending_domains", [])
        ],
    )
    out += _table(
        "Reject reasons",
        [
            (row["count"], f"{row['action']} {row['stage']}: {row['reason']}")
            for row in data.get("reject_reasons", [])
        ],
    )
    out += _groups("Deferral reasons", data.get("deferral_reasons") or {})
    out += _groups("Bounce reasons (by relay)", data.get("bounce_reasons") or {})
    smtpd = data.get("smtpd") or {}
    out += [
        "SMTPD connections",
        "-----------------",
        f"{smtpd.get('connections', 0):>8}  connections from {smtpd.get('hosts', 0)} hosts, "
        f"{smtpd.get('avg_seconds', 0)} s on average",
        "",
    ]
    sasl = data.get("sasl") or {}
    out += _table(
        "SASL: authenticated messages per account",
        list((v, k) for k, v in (sasl.get("messages_by_account") or {}).items()),
    )
    out += _table(
        "SASL: failed logins per account",
        list((v, k) for k, v in (sasl.get("failures_by_account") or {}).items()),
    )
    out += _table(
        "SASL: failed logins per client IP",
        list((v, k) for k, v in (sasl.get("failures_by_ip") or {}).items()),
    )
    problems = data.get("problems") or {}
    out += [
        "Warnings, fatal errors, panics",
        "------------------------------",
        f"{problems.get('warnings', 0):>8}  warnings",
        f"{problems.get('fatal', 0):>8}  fatal",
        f"{problems.get('panic', 0):>8}  panic",
        "",
    ]
    out += _groups("Warnings", problems.get("warning_detail") or {})
    out += _groups("Fatal errors", problems.get("fatal_detail") or {})
    out += _groups("Panics", problems.get("panic_detail") or {})
    unparsed = data.get("unparsed_lines", 0)
    out.append(f"Unparsed lines: {unparsed}")
    for line in data.get("unparsed_sample") or []:
        out.append(f"    {line}")
    out.append("")
    out += _sources_text(data)
    return "\n".join(out).rstrip() + "\n"


def headline(data: dict[str, Any]) -> str:
    totals = data.get("totals") or {}
    return (
        f"{totals.get('received', 0):,} received, {totals.get('delivered', 0):,} delivered, "
        f"{totals.get('deferred', 0):,} deferred, {totals.get('bounced', 0):,} bounced, "
        f"{totals.get('rejected', 0):,} rejected"
    )


def chat_reply(
    outcome: CheckOutcome,
    rerun: str | None = None,
    check_id: int | None = None,
    throttle_rate: str = "20/h",
) -> ChatReply:
    """Headline totals and the top suspects (a compromise with its containment buttons); each
    suspect's evidence as a thread reply; the full report as a thread reply (a file when long)."""
    data = outcome.data
    window = data.get("subject", outcome.subject)
    if data.get("could_not_check"):
        # a run that read no mail is neither clean nor broken: yellow, with the reason
        title = f"{STATUS_EMOJI['yellow']} Mail summary ({window}): could not check"
        reason = str(data["could_not_check"])
        blocks = [header(title), *sections(escape(reason))]
        blocks.append(context(escape(_lan_note(data))))
        blocks.append(context(_lines_note(data)))
        blocks.append(result_buttons("mailsummary", rerun or "", check_id))
        return ChatReply(text=f"{title}: {reason}", blocks=blocks)
    if outcome.status == "failed":
        title = f"{STATUS_EMOJI['grey']} Mail summary ({window}) could not complete"
        body = escape(str(data.get("error", "unknown error")))
        return ChatReply(
            text=escape(f"{title}: {data.get('error')}"),
            blocks=[header(title), *sections(body)],
        )
    suspects = data.get("suspects") or []
    count = len(suspects)
    attacks = sum(1 for item in suspects if item.get("kind") in ATTACK_KINDS)
    relayed = sum(1 for item in suspects if item.get("kind") == "open_relay")
    compromises = count - attacks - relayed
    colour = "red" if compromises or relayed else ("yellow" if attacks else "green")
    parts = []
    if relayed:
        parts.append("open relay (mail relayed for strangers)")
    if compromises:
        parts.append(f"{compromises} suspected compromise{'s' if compromises != 1 else ''}")
    if attacks:
        parts.append(f"{attacks} attacker{'s' if attacks != 1 else ''} (probes, guessing)")
    title = f"{STATUS_EMOJI[colour]} Mail summary ({window}): " + (
        ", ".join(parts) if parts else "no suspects"
    )
    blocks = [header(title), *sections(escape(headline(data)))]
    fallback = [escape(title), escape(headline(data))]
    thread: list[ChatReply] = []
    for item in suspects[:CHAT_SUSPECTS]:
        blocks.append(divider())
        blocks.extend(sections(_suspect_markdown(item)))
        contain = _contain_buttons(item, throttle_rate)
        if contain is not None:
            blocks.append(contain)
        fallback.append(escape(_suspect_line(item)))
        thread.append(_evidence_reply(item))
    if count > CHAT_SUSPECTS:
        blocks.append(context(f"{count - CHAT_SUSPECTS} more suspects in the full report"))
    blocks.append(context(escape(_lan_note(data))))
    blocks.append(context(_lines_note(data)))
    input_warnings = [
        f"{Path(str(source.get('name'))).name}: {warning}"
        for source in data.get("sources") or []
        for warning in source.get("warnings") or []
    ]
    if input_warnings:
        # a truncated rotation or a cut gzip bomb means the totals miss something: say so here
        extra = len(input_warnings) - 1
        more = f" (and {extra} more in the report)" if extra else ""
        blocks.append(context(f":warning: {escape(input_warnings[0])}{more}"))
        fallback.append(f"warning: {escape(input_warnings[0])}{more}")
    blocks.append(result_buttons("mailsummary", rerun or "", check_id))
    thread.append(
        detail_reply(f"Mail summary report ({window})", details_text(data), "mailsummary.txt")
    )
    return ChatReply(text="\n".join(fallback), blocks=blocks, thread=thread).fitted()


# -- pieces ------------------------------------------------------------------------------------


def _lan_note(data: dict[str, Any]) -> str:
    """Which networks counted as the LAN and why: every verdict about "outside" depends on it."""
    networks = data.get("internal_networks") or []
    shown = ", ".join(str(n) for n in networks) or "none"
    note = f"Internal networks assumed: {shown} (from {data.get('internal_networks_source', '?')})"
    skipped = data.get("internal_networks_skipped") or []
    if skipped:
        note += f"; not readable as networks, ignored: {', '.join(str(x) for x in skipped)}"
    return note


def _lines_note(data: dict[str, Any]) -> str:
    window_info = data.get("window") or {}
    return (
        f"{data.get('lines', 0):,} log lines, "
        f"first {escape(window_info.get('first_line') or '–')}, "
        f"last {escape(window_info.get('last_line') or '–')}; "
        f"{data.get('unparsed_lines', 0)} unparsed"
    )


def _title(data: dict[str, Any]) -> str:
    window = data.get("window") or {}
    since, until = window.get("since"), window.get("until")
    span = f"{since or 'start'} – {until or 'now'}" if since or until else "whole log"
    return (
        f"Mail log summary ({span}; {data.get('lines', 0):,} lines, "
        f"first {window.get('first_line') or '–'}, last {window.get('last_line') or '–'})"
    )


def _suspect_line(item: dict[str, Any]) -> str:
    label = KIND_LABELS.get(item.get("kind", ""), item.get("kind", ""))
    kind = SUBJECT_LABELS.get(item.get("subject_type", ""), "")
    return f"[{item.get('score')}] {item.get('subject')} ({kind}): {label}"


def _suspect_markdown(item: dict[str, Any]) -> str:
    lines = [f"*{escape(_suspect_line(item))}*"]
    for reason in item.get("reasons") or []:
        lines.append(f"• {escape(reason)}")
    if item.get("action"):
        lines.append(f"_Next:_ {escape(item['action'])}")
    return "\n".join(lines)


def _contain_buttons(item: dict[str, Any], throttle_rate: str) -> Any:
    """Block / Hold / Throttle for a suspected compromise (not for attackers: nothing got in)."""
    if item.get("kind") in ATTACK_KINDS:
        return None
    reason = f"from log summary: {KIND_LABELS.get(item.get('kind', ''), item.get('kind', ''))}"
    return suspect_buttons(
        str(item.get("subject_type") or ""), str(item.get("subject") or ""), reason, throttle_rate
    )


def _evidence_reply(item: dict[str, Any]) -> ChatReply:
    evidence = item.get("evidence") or []
    title = f"Evidence for {item.get('subject')} ({item.get('kind')})"
    body = "\n".join(evidence) or "(no log lines kept)"
    return ChatReply(
        text=escape(f"{title}\n{body}"),
        blocks=[*sections(f"*{escape(title)}*"), *code_sections(body)],
    )


def _suspects_text(suspects: list[dict[str, Any]]) -> list[str]:
    """Compromises first (what to act on), then attackers (nothing got through), as in chat."""
    if not suspects:
        return ["Suspects: none", ""]
    attacks = [item for item in suspects if item.get("kind") in ATTACK_KINDS]
    compromises = [item for item in suspects if item.get("kind") not in ATTACK_KINDS]
    out: list[str] = []
    detailed = TEXT_DETAILED_SUSPECTS
    for title, items in (
        (f"Open relay and suspected compromises ({len(compromises)})", compromises),
        (f"Attackers: probes and password guessing ({len(attacks)})", attacks),
    ):
        if not items:
            out += [title.replace(f" ({len(items)})", ": none"), ""]
            continue
        out += [title, "-" * len(title)]
        for index, item in enumerate(items):
            out.append(_suspect_line(item))
            if index >= detailed:
                continue  # past the first few: one line each (the JSON has everything)
            for reason in item.get("reasons") or []:
                out.append(f"    - {reason}")
            if item.get("action"):
                out.append(f"    next: {item['action']}")
            for line in (item.get("evidence") or [])[:6]:
                out.append(f"      | {line}")
            out.append("")
        if len(items) > detailed:
            out.append("")
    return out


def _totals_text(data: dict[str, Any]) -> list[str]:
    totals = data.get("totals") or {}
    out = ["Grand totals", "------------"]
    for key, label in _TOTAL_LINES:
        value = totals.get(key, 0)
        shown = _size(value) if key.startswith("bytes") else str(value)
        if key == "deferred":
            shown_line = f"{shown:>8}  {label}  ({totals.get('deferrals', 0)} deferrals)"
        else:
            shown_line = f"{shown:>8}  {label}"
        out.append(shown_line)
    smtpd = data.get("smtpd") or {}
    out.append(f"{smtpd.get('connections', 0):>8}  smtpd connections")
    out.append("")
    return out


def _per_hour_text(rows: list[dict[str, Any]]) -> list[str]:
    if not any(r.get("received") or r.get("delivered") or r.get("rejected") for r in rows):
        return []
    out = [
        "Per-hour traffic",
        "----------------",
        "    time        received  delivered   deferred    bounced   rejected",
    ]
    for row in rows:
        hour = row["hour"]
        out.append(
            f"    {hour:02d}00-{hour + 1:02d}00 {row['received']:>10} {row['delivered']:>10} "
            f"{row['deferred']:>10} {row['bounced']:>10} {row['rejected']:>10}"
        )
    out.append("")
    return out


def _table(title: str, rows: list[tuple[Any, str]]) -> list[str]:
    if not rows:
        return []
    out = [title, "-" * len(title)]
    out += [f"{value!s:>8}  {label}" for value, label in rows]
    out.append("")
    return out


def _groups(title: str, groups: dict[str, dict[str, Any]]) -> list[str]:
    if not groups:
        return []
    out = [title, "-" * len(title)]
    for group, entry in groups.items():
        out.append(f"  {group} (total: {entry.get('total', 0)})")
        for reason, count in (entry.get("top") or {}).items():
            out.append(f"    {count:>6}   {reason}")
    out.append("")
    return out


def _sources_text(data: dict[str, Any]) -> list[str]:
    sources = data.get("sources") or []
    if not sources:
        return []
    out = ["Sources", "-------"]
    for source in sources:
        note = f" ({source.get('reason')})" if source.get("reason") else ""
        out.append(f"  {source.get('status', '?'):<8} {source.get('name')}{note}")
        for warning in source.get("warnings") or []:
            out.append(f"  warning  {source.get('name')}: {warning}")
    out.append(
        f"  {data.get('lines', 0):,} lines in {data.get('elapsed_seconds', 0)} s "
        f"with {data.get('workers', 1)} process(es); "
        f"{data.get('other_program_lines', 0):,} lines from other programs"
    )
    return out


def _size(value: int) -> str:
    """Bytes the way pflogsumm prints them (k above 512 kB, m above 512 MB)."""
    if value > 536_870_912:
        return f"{value // 1_048_576}m"
    if value > 524_288:
        return f"{value // 1024}k"
    return str(value)
