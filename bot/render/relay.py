"""Relay check results as terminal text, as a chat reply, and as a full per-test transcript.

Everything renders from the documented JSON dict (`RelayReport.to_dict()`), so a stored check
renders exactly like a fresh one.
"""

from __future__ import annotations

from typing import Any

from bot.checks import CheckOutcome
from bot.render.reply import (
    STATUS_EMOJI,
    ChatReply,
    context,
    detail_reply,
    divider,
    escape,
    header,
    result_buttons,
    sections,
)
from handlers.relay import RelayReport

VERDICT_COLOUR = {
    "open": "red",
    "suspect": "yellow",
    "inconclusive": "grey",
    "unreachable": "grey",
    "closed": "green",
}
VERDICT_HEADLINE = {
    "open": "OPEN RELAY",
    "suspect": "SUSPECT (may relay)",
    "inconclusive": "inconclusive",
    "unreachable": "unreachable",
    "closed": "closed (not a relay)",
}
VERDICT_ORDER = ("open", "suspect", "inconclusive", "unreachable", "closed")


def text(result: RelayReport | dict[str, Any], verbose: bool = False) -> str:
    """Terminal text. Several targets: one summary line each first. A closed target is one line
    and its refused count (its warnings too); a target that needs action gets its explanation,
    its tests (accepted first), diagnostics and warnings. `verbose`: every target in full."""
    data = result if isinstance(result, dict) else result.to_dict()
    targets = data.get("targets", [])
    if not targets:
        return "no targets were checked"
    blocks = []
    if len(targets) > 1:
        blocks.append("\n".join([_summary_line(data), *(f"  {target_line(t)}" for t in targets)]))
    for entry in targets:
        if entry.get("verdict") == "closed" and not verbose:
            if len(targets) == 1 or entry.get("warnings"):
                blocks.append(_closed_text(entry))
            continue
        blocks.append(_target_text(entry))
    return "\n\n".join(blocks)


def target_line(entry: dict[str, Any]) -> str:
    """'mx.example.com:25 (192.0.2.7) — closed (not a relay): 23 of 23 relay attempts refused'."""
    verdict = entry.get("verdict", "")
    line = f"{entry.get('target')} ({entry.get('address') or '?'}) — "
    line += VERDICT_HEADLINE.get(verdict, verdict)
    tests = entry.get("tests") or []
    if not tests:
        return line + (f": {_one_line(entry['error'])}" if entry.get("error") else "")
    counts = entry.get("counts") or {}
    accepted = sum(1 for t in tests if t.get("accepted"))
    refused = counts.get("refused", sum(1 for t in tests if t.get("outcome") == "refused"))
    if verdict == "closed":
        return line + f": {refused} of {len(tests)} relay attempts refused"
    others = len(tests) - accepted - refused
    parts = [f"{accepted} accepted"] if accepted else []
    parts.append(f"{refused} refused")
    if others:
        parts.append(f"{others} undecided")
    return line + ": " + ", ".join(parts) + f" of {len(tests)}"


def _closed_text(entry: dict[str, Any]) -> str:
    lines = [target_line(entry)]
    warnings = entry.get("warnings") or []
    lines.extend(_indent(f"! {w}", "  ", "    ") for w in warnings)
    if len(lines) == 1:
        lines.append("  every test and the diagnostics: --details (or the stored check's details)")
    return "\n".join(lines)


def _summary_line(data: dict[str, Any]) -> str:
    counts: dict[str, int] = {}
    for entry in data.get("targets", []):
        counts[entry.get("verdict", "")] = counts.get(entry.get("verdict", ""), 0) + 1
    parts = [f"{counts[v]} {v}" for v in VERDICT_ORDER if counts.get(v)]
    return f"{len(data.get('targets', []))} targets: " + ", ".join(parts)


def _target_text(entry: dict[str, Any]) -> str:
    verdict = entry.get("verdict", "")
    address = entry.get("address") or "?"
    lines = [f"{entry.get('target')} ({address}) — {VERDICT_HEADLINE.get(verdict, verdict)}"]
    lines.append(_indent(entry.get("explanation", ""), "  "))
    if entry.get("source_ip"):
        lines.append(
            f"  probed from {entry['source_ip']}"
            + ("" if entry.get("confirm", True) else " (RCPT only: --no-data)")
        )
    tests = _ordered_tests(entry.get("tests", []))
    if tests:
        counts = entry.get("counts") or {}
        summary = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(counts.items()))
        lines.append(f"  tests ({len(tests)}): {summary}")
        width = max(len(t.get("name", "")) for t in tests)
        for test in tests:
            outcome = str(test.get("outcome", "")).replace("_", " ").upper()
            lines.append(
                f"    {outcome:<13} {test.get('name', ''):<{width}}  "
                f"MAIL FROM:{test.get('mail_from')} → RCPT TO:{test.get('rcpt_to')}  "
                f"⇒ {_one_line(test.get('reply', ''))}"
            )
            if test.get("data_reply"):
                lines.append(f"    {'':<13} {'':<{width}}  DATA ⇒ {_one_line(test['data_reply'])}")
    diagnostics = entry.get("diagnostics") or {}
    diag_lines = diagnostics_lines(diagnostics)
    if diag_lines:
        lines.append("  diagnostics:")
        lines.extend(f"    {line}" for line in diag_lines)
    warnings = entry.get("warnings") or []
    if warnings:
        lines.append("  warnings:")
        lines.extend(_indent(f"! {w}", "    ", "      ") for w in warnings)
    return "\n".join(lines)


def diagnostics_lines(diagnostics: dict[str, Any]) -> list[str]:
    """Short 'label  value' lines for the diagnostics an admin looks at."""
    lines: list[str] = []
    if diagnostics.get("banner"):
        ms = diagnostics.get("banner_ms")
        lines.append(
            f"banner      {_one_line(diagnostics['banner'])}"
            + (f" ({ms:.0f} ms)" if isinstance(ms, int | float) else "")
        )
    if diagnostics.get("esmtp") is not None:
        mode = "EHLO" if diagnostics["esmtp"] else "HELO only (EHLO refused)"
        name = diagnostics.get("ehlo_name") or "?"
        lines.append(f"greeting    {mode}, says it is {name}")
    if diagnostics.get("extensions"):
        lines.append("extensions  " + ", ".join(diagnostics["extensions"]))
    if diagnostics.get("size_limit"):
        lines.append(f"size limit  {diagnostics['size_limit'] / 1_000_000:.1f} MB")
    tls = diagnostics.get("starttls") or {}
    if diagnostics.get("esmtp") is not None or tls.get("implicit"):
        lines.append("TLS         " + _tls_text(tls))
    cert = tls.get("certificate")
    if cert:
        flags = []
        if cert.get("self_signed"):
            flags.append("self-signed")
        if cert.get("expired"):
            flags.append("EXPIRED")
        lines.append(
            f"certificate {cert.get('subject')}, expires {cert.get('not_after')} "
            f"({cert.get('days_left')} days)" + (f" [{', '.join(flags)}]" if flags else "")
        )
    if diagnostics.get("auth_before_tls") or diagnostics.get("auth_after_tls"):
        before = " ".join(diagnostics.get("auth_before_tls") or []) or "none"
        after = " ".join(diagnostics.get("auth_after_tls") or []) or "none"
        lines.append(f"AUTH        before TLS: {before}; after TLS: {after}")
    for verb in ("vrfy", "expn"):
        if diagnostics.get(verb):
            state = {True: "enabled", False: "disabled", None: "unclear"}[
                diagnostics.get(f"{verb}_enabled")
            ]
            lines.append(f"{verb.upper():<12}{state} ({_one_line(diagnostics[verb])})")
    rdns = diagnostics.get("reverse_dns") or {}
    if rdns.get("ptr"):
        fcrdns = {True: "resolves back (FCrDNS ok)", False: "does NOT resolve back", None: "?"}[
            rdns.get("fcrdns")
        ]
        lines.append(f"PTR         {', '.join(rdns['ptr'])} — {fcrdns}")
    elif rdns.get("error") or rdns.get("fcrdns") is False:
        lines.append(f"PTR         none ({rdns.get('error') or 'no PTR record'})")
    if diagnostics.get("banner_matches_ptr") is not None:
        lines.append(
            "names       banner "
            + ("matches" if diagnostics["banner_matches_ptr"] else "does not match")
            + " the PTR"
        )
    if diagnostics.get("total_ms"):
        sessions = diagnostics.get("sessions") or 0
        lines.append(
            f"time        {diagnostics['total_ms'] / 1000:.2f} s over {sessions} "
            f"SMTP session{'s' if sessions != 1 else ''}"
        )
    return lines


def _tls_text(tls: dict[str, Any]) -> str:
    if tls.get("negotiated"):
        how = "implicit TLS" if tls.get("implicit") else "STARTTLS"
        return f"{how} negotiated: {tls.get('protocol')} {tls.get('cipher')}"
    if tls.get("offered"):
        return "STARTTLS offered, not negotiated" + (
            f" ({tls['error']})" if tls.get("error") else ""
        )
    return "STARTTLS not offered"


def details_text(data: dict[str, Any]) -> str:
    """The full transcript: every command sent and every reply, per target and per test."""
    out: list[str] = []
    for entry in data.get("targets", []):
        out.append(
            f"=== {entry.get('target')} ({entry.get('address') or '?'}) — {entry.get('verdict')}"
        )
        if entry.get("source_ip"):
            out.append(f"from {entry['source_ip']}")
        if entry.get("explanation"):
            out.append(entry["explanation"])
        diag_lines = diagnostics_lines(entry.get("diagnostics") or {})
        if diag_lines:
            out.append("-- diagnostics")
            out.extend(diag_lines)
        if entry.get("session_log"):
            out.append("-- session")
            out.extend(_exchange_lines(entry["session_log"]))
        for test in entry.get("tests", []):
            out.append(
                f"-- {test.get('name')} [{test.get('kind')}] {str(test.get('outcome', '')).upper()}"
                + (" (after reconnecting)" if test.get("reconnected") else "")
            )
            out.extend(_exchange_lines(test.get("commands", [])))
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _exchange_lines(exchanges: list[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    for exchange in exchanges:
        lines.append(f"> {exchange.get('command')}")
        reply = exchange.get("reply", "")
        code = exchange.get("code")
        ms = exchange.get("elapsed_ms")
        timing = f"  ({ms:.0f} ms)" if isinstance(ms, int | float) else ""
        reply_lines = str(reply).splitlines() or [""]
        for index, line in enumerate(reply_lines):
            prefix = f"{code}{'-' if index < len(reply_lines) - 1 else ' '}" if code else ""
            lines.append(f"< {prefix}{line}" + (timing if index == len(reply_lines) - 1 else ""))
    return lines


def chat_reply(
    outcome: CheckOutcome, rerun: str | None = None, check_id: int | None = None
) -> ChatReply:
    """Headline with colour, per target: accepted tests first, diagnostics, vantage warning; a
    Re-run button; the full transcript as a thread reply."""
    data = outcome.data
    targets = data.get("targets", [])
    worst = min((t.get("verdict", "") for t in targets), key=_verdict_rank, default="")
    emoji = STATUS_EMOJI[VERDICT_COLOUR.get(worst, "grey")]
    if len(targets) == 1:
        title = f"{targets[0].get('target')}: {VERDICT_HEADLINE.get(worst, worst)}"
    else:
        title = "Relay check: " + _summary_line(data).split(": ", 1)[-1]
    blocks = [header(f"{title}")]
    fallback = [escape(title)]
    # the servers that need action first
    ordered = sorted(targets, key=lambda t: _verdict_rank(t.get("verdict", "")))
    if len(targets) > 1:
        blocks.extend(
            sections(
                "\n".join(
                    f"{STATUS_EMOJI[VERDICT_COLOUR.get(t.get('verdict', ''), 'grey')]} "
                    f"{escape(target_line(t))}"
                    for t in ordered
                )
            )
        )
        blocks.append(divider())
    for entry in ordered:
        if entry.get("verdict") == "closed":
            # its summary line above (or the title) says it all; the tests are in the thread
            if len(targets) == 1:
                blocks.extend(sections(escape(target_line(entry))))
            warnings = entry.get("warnings") or []
            if warnings:
                blocks.append(
                    context(
                        f"*{escape(entry.get('target'))}*: "
                        + "\n".join(f":warning: {escape(w)}" for w in warnings[:8])
                    )
                )
            fallback.append(escape(target_line(entry)))
            continue
        blocks.extend(sections(_target_markdown(entry, len(targets) > 1)))
        warnings = entry.get("warnings") or []
        if warnings:
            blocks.append(context("\n".join(f":warning: {escape(w)}" for w in warnings[:8])))
        fallback.append(
            escape(f"{entry.get('target')}: {entry.get('verdict')} — {entry.get('explanation')}")
        )
        blocks.append(divider())
    rerun_args = rerun if rerun is not None else _rerun_args(outcome)
    blocks.append(result_buttons("relaycheck", rerun_args, check_id))
    title_line = f"{emoji} {title}"
    transcript = detail_reply(
        f"Relay test transcript ({outcome.subject})",
        details_text(data),
        "relaycheck-transcript.txt",
    )
    return ChatReply(
        text="\n".join([escape(title_line), *fallback[1:]]),
        blocks=[header(title_line), *blocks[1:]],
        thread=[transcript],
    ).fitted()


def _target_markdown(entry: dict[str, Any], named: bool) -> str:
    verdict = entry.get("verdict", "")
    emoji = STATUS_EMOJI[VERDICT_COLOUR.get(verdict, "grey")]
    lines = []
    if named:
        lines.append(
            f"{emoji} *{escape(str(entry.get('target')))}* — "
            f"*{escape(VERDICT_HEADLINE.get(verdict, verdict))}*"
        )
    lines.append(escape(entry.get("explanation", "")))
    tests = entry.get("tests", [])
    accepted = [t for t in tests if t.get("accepted")]
    if accepted:
        lines.append("*Accepted:*")
        for test in accepted[:10]:
            data_reply = (
                f" · DATA `{escape(_one_line(test['data_reply']))}`"
                if test.get("data_reply")
                else ""
            )
            lines.append(
                f"• `{escape(test.get('name', ''))}` "
                f"`MAIL FROM:{escape(test.get('mail_from', ''))}` → "
                f"`RCPT TO:{escape(test.get('rcpt_to', ''))}` ⇒ "
                f"`{escape(_one_line(test.get('reply', '')))}`" + data_reply
            )
        if len(accepted) > 10:
            lines.append(f"• …and {len(accepted) - 10} more (see the transcript in the thread)")
    others = [t for t in tests if not t.get("accepted")]
    if others:
        counts = entry.get("counts") or {}
        summary = ", ".join(
            f"{n} {k.replace('_', ' ')}" for k, n in sorted(counts.items()) if k != "accepted"
        )
        example = escape(_one_line(others[0].get("reply", "")))
        lines.append(f"*Not accepted:* {summary} (e.g. `{example}`)")
    diag = diagnostics_lines(entry.get("diagnostics") or {})
    if diag:
        lines.append("*Diagnostics:*\n```" + escape("\n".join(diag)) + "```")
    if entry.get("source_ip"):
        lines.append(f"_probed from {escape(entry['source_ip'])}_")
    return "\n".join(lines)


def _verdict_rank(verdict: str) -> int:
    return VERDICT_ORDER.index(verdict) if verdict in VERDICT_ORDER else len(VERDICT_ORDER)


def _rerun_args(outcome: CheckOutcome) -> str:
    parts = []
    for item in outcome.subject.split(", "):
        parts.append(f"--mx {item[3:]}" if item.startswith("MX ") else item)
    return " ".join(parts)


def _ordered_tests(tests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # accepted first: that is what the admin must act on
    return sorted(tests, key=lambda t: not t.get("accepted"))


def _one_line(text: str) -> str:
    return " / ".join(line.strip() for line in str(text).splitlines() if line.strip())


def _indent(text: str, first: str, rest: str | None = None) -> str:
    import textwrap

    return textwrap.fill(
        text,
        width=100,
        initial_indent=first,
        subsequent_indent=rest or first,
        break_long_words=False,
    )
