"""Domain check results as terminal text, as a chat reply (details in the thread), and as the full
per-finding report (`details_text`, also what Show details renders from the stored JSON).

Everything renders from the documented JSON document, so a stored check renders like a fresh one.
Record text comes from DNS and is attacker-chosen: Slack output goes through `escape`, terminal
output through `visible` (control characters shown as escapes, never interpreted).
"""

from __future__ import annotations

from typing import Any

from bot.checks import CheckOutcome
from bot.render.reply import (
    ChatReply,
    context,
    detail_reply,
    escape,
    header,
    result_buttons,
    sections,
)

LABEL = {"pass": "PASS", "warn": "WARN", "fail": "FAIL", "error": "ERROR"}
EMOJI = {
    "pass": ":large_green_circle:",
    "warn": ":large_yellow_circle:",
    "fail": ":red_circle:",
    "error": ":white_circle:",
}
ORDER = {"fail": 0, "error": 1, "warn": 2, "pass": 3}
CHAT_LINES = 15


def visible(text: Any) -> str:
    """Terminal-safe: control characters (ESC, CR, …) become \\xNN instead of acting."""
    return "".join(
        ch if ch.isprintable() or ch == "\n" else f"\\x{ord(ch):02x}" for ch in str(text)
    )


def _counts(domain: dict[str, Any]) -> str:
    counts = domain.get("counts") or {}
    return ", ".join(f"{counts[s]} {s}" for s in ("fail", "error", "warn", "pass") if counts.get(s))


def _domains(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in data.get("domains") or [] if isinstance(d, dict)]


def text(data: dict[str, Any]) -> str:
    """Terminal text: per domain, every finding on one line; fixes under the ones that need them."""
    if "error" in data and not _domains(data):
        return f"domain check could not run: {visible(data['error'])}"
    blocks = []
    for domain in _domains(data):
        status = str(domain.get("status", ""))
        lines = [
            f"{visible(domain.get('domain'))} — {LABEL.get(status, status)} ({_counts(domain)})"
        ]
        checks = domain.get("checks") or []
        width = max((len(str(c.get("id", ""))) for c in checks), default=0)
        for check in sorted(checks, key=lambda c: ORDER.get(c.get("status"), 9)):
            lines.append(
                f"  {LABEL.get(check.get('status'), '?'):<5} {check.get('id', ''):<{width}}  "
                f"{visible(check.get('summary', ''))}"
            )
            if check.get("fix") and check.get("status") != "pass":
                pad = " " * (width + 10)
                fix = visible(check["fix"]).replace("\n", "\n" + pad + "     ")
                lines.append(f"{pad}fix: {fix}")
        if domain.get("dkim_selectors", {}).get("guessed"):
            lines.append("  (DKIM: common selectors guessed; name yours with --selector)")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) or "no domains were checked"


def details_text(data: dict[str, Any]) -> str:
    """Every finding with why it matters, the fix and the facts behind it."""
    blocks = []
    for domain in _domains(data):
        lines = [f"=== {visible(domain.get('domain'))}: {domain.get('status')} ({_counts(domain)})"]
        ips = domain.get("sending_ips") or []
        if ips:
            lines.append(
                "sending IPs: " + ", ".join(f"{i['address']} ({i['origin']})" for i in ips)
            )
        if domain.get("mx_hosts"):
            lines.append("MX hosts: " + ", ".join(visible(h) for h in domain["mx_hosts"]))
        for check in domain.get("checks") or []:
            lines.append("")
            lines.append(
                f"[{LABEL.get(check.get('status'), '?')}] {check.get('id')} "
                f"{visible(check.get('subject', ''))}"
            )
            lines.append(f"  {visible(check.get('summary', ''))}")
            if check.get("why"):
                lines.append(f"  why: {visible(check['why'])}")
            if check.get("fix"):
                lines.append("  fix: " + visible(check["fix"]).replace("\n", "\n       "))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) or visible(data.get("error", "no domains were checked"))


def chat_reply(outcome: CheckOutcome, rerun: str = "", check_id: int | None = None) -> ChatReply:
    data = outcome.data
    domains = _domains(data)
    if not domains:
        reason = escape(str(data.get("error", "nothing was checked")))
        return ChatReply(
            text=f"Domain check could not run: {reason}",
            blocks=sections(f":white_circle: Domain check could not run: {reason}"),
        )
    blocks: list[Any] = [header("Domain check: " + ", ".join(d["domain"] for d in domains))]
    fallback = []
    for domain in domains:
        status = str(domain.get("status"))
        name = escape(str(domain.get("domain")))
        lines = [f"{EMOJI.get(status, '')} *{name}*: {status} ({_counts(domain)})"]
        fallback.append(f"{domain.get('domain')}: {status} ({_counts(domain)})")
        problems = sorted(
            (c for c in domain.get("checks") or [] if c.get("status") != "pass"),
            key=lambda c: ORDER.get(c.get("status"), 9),
        )
        for check in problems[:CHAT_LINES]:
            lines.append(
                f"{EMOJI.get(check.get('status'), '')} `{escape(str(check.get('id')))}` "
                f"{escape(str(check.get('summary', '')))}"
            )
        if len(problems) > CHAT_LINES:
            lines.append(f"… and {len(problems) - CHAT_LINES} more in the thread")
        blocks += sections("\n".join(lines))
    blocks.append(
        context(
            "Gmail, Yahoo and Microsoft junk or reject mail from domains that fail these. "
            "Every fix, as the exact record to publish, is in the thread."
        )
    )
    blocks.append(result_buttons("domaincheck", rerun, check_id))
    return ChatReply(
        text="Domain check: " + "; ".join(fallback),
        blocks=blocks,
        # record text from DNS is attacker-chosen: escaped even inside the code block
        thread=[detail_reply("Findings and fixes", escape(details_text(data)), "domaincheck.txt")],
    ).fitted()
