"""Blacklist check output: terminal text, the stored document as details, and the chat reply.

Everything renders from the JSON document (`outcome.data`), so a stored check renders the same way
as a fresh one. Order of what an admin reads: listings (majors first, with the meaning and the
delist link), then what could not be checked and why, then warnings.
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
    link,
    result_buttons,
    sections,
)

SEVERITY_LABEL = {"major": "MAJOR", "minor": "minor", "policy": "policy"}
NEXT_STEP = (
    "Next: fix the cause first (a major listing usually means spam or malware from this host: "
    "check the mail logs with `relaywatch mailsummary`, look for compromised accounts or an open "
    "relay), then request removal at each delist link. Policy listings (e.g. Spamhaus PBL) are "
    "not abuse: a real mail server can remove itself or relay through its provider."
)


def _as_data(result: CheckOutcome | dict[str, Any]) -> dict[str, Any]:
    return result.data if isinstance(result, CheckOutcome) else result


def headline(data: dict[str, Any]) -> str:
    status = data.get("status")
    listed = [t for t in data.get("targets", []) if t.get("listed")]
    lists = data.get("lists") or {}
    healthy = lists.get("healthy", 0)
    if data.get("errors") and not data.get("targets") and not data.get("ranges"):
        return "Blacklist check could not run: " + "; ".join(data.get("errors", []))
    if data.get("diagnosis") and status != "problem":
        return (
            f"Could not check: {healthy} of {lists.get('asked', 0)} lists healthy — "
            f"{data['diagnosis']}"
        )
    if status == "problem":
        worst = max((len(t["listed"]) for t in listed), default=0)
        if len(listed) == 1:
            return (
                f"{listed[0]['target']} is LISTED on {len(listed[0]['listed'])} of "
                f"{listed[0].get('lists_healthy', healthy)} healthy lists"
            )
        return f"{len(listed)} addresses/names are LISTED (up to {worst} lists each)"
    if status == "ok":
        return f"Not listed: every target clean on all {healthy} healthy lists"
    return "Incomplete: nothing listed on the lists that answered, but some could not be checked"


def text(result: CheckOutcome | dict[str, Any]) -> str:
    data = _as_data(result)
    lines = [headline(data), ""]
    for entry in data.get("targets", []):
        lines.extend(_target_lines(entry))
    for summary in data.get("ranges", []):
        checked = (data.get("lists") or {}).get("healthy")
        lines.append(
            _range_line(data, summary) + (" (clean addresses are not itemised)" if checked else "")
        )
    lines.extend(_trouble_lines(data))
    if data.get("status") == "problem":
        lines += ["", NEXT_STEP]
    lines.append("")
    lines.append(_footer(data))
    return "\n".join(lines).rstrip() + "\n"


def _target_lines(entry: dict[str, Any]) -> list[str]:
    name = entry["target"]
    if entry.get("origin"):
        name += f" ({entry['origin']})"
    answered = entry.get("lists_answered", 0)
    healthy = entry.get("lists_healthy", 0)
    lines = []
    if entry.get("listed"):
        lines.append(f"{name}: LISTED on {len(entry['listed'])} of {healthy} healthy lists")
        for item in entry["listed"]:
            label = SEVERITY_LABEL.get(item.get("severity", ""), item.get("severity", ""))
            lines.append(f"  [{label}] {item['zone']}  {', '.join(item.get('codes', []))}")
            for meaning in item.get("meanings", []):
                lines.append(f"      {meaning}")
            if item.get("txt"):
                lines.append(f"      list says: {item['txt']}")
            if item.get("delist_url"):
                lines.append(f"      delist: {item['delist_url']}")
    elif "lists_healthy" in entry and not healthy:
        lines.append(f"{name}: NOT CHECKED — no healthy list to ask")
    elif entry.get("failed"):
        lines.append(
            f"{name}: not listed on the {answered} lists that answered; "
            f"{len(entry['failed'])} could not be checked"
        )
    else:
        lines.append(f"{name}: not listed ({answered} of {healthy} healthy lists answered)")
    for note in entry.get("notes", []):
        lines.append(f"  note: {note['zone']}: {note['note']}")
    return lines


def _trouble_lines(data: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    failures = [(t["target"], f) for t in data.get("targets", []) for f in t.get("failed", [])]
    if failures:
        lines += ["", "Could not check (never counted as clean):"]
        for target, failure in failures[:200]:
            lines.append(
                f"  {target}: {failure['zone']} — {failure['reason']}: {failure.get('detail', '')}"
            )
        if len(failures) > 200:
            lines.append(f"  … and {len(failures) - 200} more")
    if data.get("unhealthy"):
        lines += ["", "Unhealthy lists (failed the RFC 5782 self-test; answers set aside):"]
        common, others = _split_common(data)
        if common:
            said = "" if data.get("status") == "problem" else " (the cause is in the headline)"
            lines.append(
                f"  {len(common)} lists: {common[0]['reason']}"
                + (said or f" — likely cause: {data['diagnosis']}")
            )
        for item in others:
            lines.append(f"  {item['zone']} — {item['reason']}: {item.get('detail', '')}")
    if data.get("errors"):
        lines += ["", "Errors:"] + [f"  {e}" for e in data["errors"]]
    if data.get("warnings"):
        lines += ["", "Warnings:"] + [f"  {w}" for w in data["warnings"]]
    return lines


def _footer(data: dict[str, Any]) -> str:
    lists = data.get("lists") or {}
    summary = data.get("summary") or {}
    reasons = summary.get("failure_reasons") or {}
    why = ", ".join(f"{n} {r}" for r, n in reasons.items())
    return (
        f"{lists.get('healthy', 0)} of {lists.get('asked', 0)} lists healthy"
        f"{'; failed answers: ' + why if why else ''}; {summary.get('checked', 0):,} checked "
        f"via {', '.join(data.get('nameservers', [])) or '?'}"
        f"{' (Spamhaus DQS)' if data.get('spamhaus_dqs') else ''} "
        f"in {data.get('duration_seconds', 0):.1f}s"
    )


def details_text(data: dict[str, Any]) -> str:
    """Per-list detail: for each target named directly, every list and what it answered."""
    lines = [text(data).rstrip(), "", "Per-list detail", "==============="]
    healthy_zones: dict[str, list[str]] = (data.get("lists") or {}).get("healthy_zones", {})
    for entry in data.get("targets", []):
        if entry.get("in_range"):
            continue
        lines.append("")
        lines.append(f"{entry['target']} ({entry['kind']})")
        listed = {item["zone"]: item for item in entry.get("listed", [])}
        failed = {item["zone"]: item for item in entry.get("failed", [])}
        for zone in healthy_zones.get(entry["kind"], []):
            if zone in listed:
                item = listed[zone]
                state = f"LISTED {', '.join(item['codes'])} — {'; '.join(item['meanings'])}"
            elif zone in failed:
                state = f"could not check: {failed[zone]['reason']}"
            else:
                state = "not listed"
            lines.append(f"  {zone:<34} {state}")
        for item in entry.get("unhealthy", []):
            lines.append(f"  {item['zone']:<34} unhealthy: {item['reason']}")
    return "\n".join(lines) + "\n"


def chat_reply(
    outcome: CheckOutcome, rerun: str | None = None, check_id: int | None = None
) -> ChatReply:
    data = outcome.data
    status = data.get("status", outcome.status)
    colour = {"problem": "red", "ok": "green"}.get(status, "yellow")
    title = f"{STATUS_EMOJI[colour]} {headline(data)}"
    blocks: list[Any] = [header(f"Blacklist: {outcome.subject}")]
    blocks += sections(escape(title))
    fallback = [escape(title)]
    listed = [t for t in data.get("targets", []) if t.get("listed")]
    # majors first across targets, then by target
    listed.sort(key=lambda t: (_worst_rank(t), t["target"]))
    for entry in listed[:20]:
        markdown = _listing_markdown(entry)
        blocks += sections(markdown)
        fallback.append(markdown)
    if len(listed) > 20:
        blocks.append(context(f"… and {len(listed) - 20} more listed; see the thread"))
    clean = [
        t["target"]
        for t in data.get("targets", [])
        if not t.get("listed") and not t.get("failed") and not t.get("in_range")
    ]
    if clean and listed:
        blocks.append(context("Not listed: " + ", ".join(escape(c) for c in clean[:30])))
    for summary in data.get("ranges", []):
        blocks.append(context(escape(_range_line(data, summary))))
    trouble = _trouble_markdown(data)
    if trouble:
        blocks.append(divider())
        blocks += sections(trouble)
        fallback.append(trouble)
    if status == "problem":
        blocks.append(context(NEXT_STEP))
    blocks.append(context(escape(_footer(data))))
    args = rerun if rerun is not None else _rerun(outcome)
    blocks.append(result_buttons("blacklist", args, check_id))
    thread = [
        detail_reply(f"Per-list detail ({outcome.subject})", details_text(data), "blacklist.txt")
    ]
    return ChatReply(text="\n".join(fallback), blocks=blocks, thread=thread).fitted()


def _worst_rank(entry: dict[str, Any]) -> int:
    order = {"major": 0, "minor": 1, "policy": 2}
    return min((order.get(i.get("severity", ""), 3) for i in entry.get("listed", [])), default=3)


def _listing_markdown(entry: dict[str, Any]) -> str:
    origin = f" ({escape(entry['origin'])})" if entry.get("origin") else ""
    lines = [
        f"*{escape(entry['target'])}*{origin} listed on {len(entry['listed'])} of "
        f"{entry.get('lists_healthy', 0)} healthy lists"
    ]
    for item in entry["listed"]:
        label = SEVERITY_LABEL.get(item.get("severity", ""), item.get("severity", ""))
        meaning = "; ".join(item.get("meanings", [])) or ", ".join(item.get("codes", []))
        delist = f" — {link(item['delist_url'], 'delist')}" if item.get("delist_url") else ""
        lines.append(f"• *{label}* `{escape(item['zone'])}`: {escape(meaning)}{delist}")
        if item.get("txt"):
            lines.append(f"    _{escape(item['txt'][:300])}_")
    return "\n".join(lines)


def _trouble_markdown(data: dict[str, Any]) -> str:
    lines = []
    failures = [(t["target"], f) for t in data.get("targets", []) for f in t.get("failed", [])]
    if failures:
        lines.append(f"*Could not check* ({len(failures)}; never counted as clean):")
        for target, failure in failures[:10]:
            lines.append(
                f"• {escape(target)} on `{escape(failure['zone'])}`: {escape(failure['reason'])} — "
                f"{escape(failure.get('detail', ''))}"
            )
        if len(failures) > 10:
            lines.append(f"• … {len(failures) - 10} more in the thread")
    if data.get("unhealthy"):
        lines.append(f"*Unhealthy lists* ({len(data['unhealthy'])}; answers set aside):")
        common, others = _split_common(data)
        if common:
            lines.append(
                f"• {len(common)} lists: {escape(common[0]['reason'])} — "
                f"{escape(data.get('diagnosis', ''))}"
            )
        for item in others[:15]:
            lines.append(
                f"• `{escape(item['zone'])}`: {escape(item['reason'])} — "
                f"{escape(item.get('detail', ''))}"
            )
    for error in data.get("errors", []):
        lines.append(f":x: {escape(error)}")
    for warning in data.get("warnings", []):
        lines.append(f":warning: {escape(warning)}")
    return "\n".join(lines)


def _range_line(data: dict[str, Any], summary: dict[str, Any]) -> str:
    if "healthy" in (data.get("lists") or {}) and not data["lists"]["healthy"]:
        return (
            f"{summary['range']}: NOT CHECKED — no healthy list to ask "
            f"({summary['addresses_checked']:,} addresses)"
        )
    return (
        f"{summary['range']}: {summary['addresses_checked']:,} addresses checked, "
        f"{summary['addresses_listed']:,} listed, {summary['addresses_failed']:,} with failures"
    )


def _split_common(data: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(unhealthy lists that share the diagnosed cause, the rest): the first are said once."""
    unhealthy = data.get("unhealthy") or []
    if not data.get("diagnosis") or not unhealthy:
        return [], list(unhealthy)
    counts: dict[str, int] = {}
    for item in unhealthy:
        counts[item.get("reason", "")] = counts.get(item.get("reason", ""), 0) + 1
    reason = max(counts, key=lambda r: counts[r])
    common = [i for i in unhealthy if i.get("reason", "") == reason]
    return common, [i for i in unhealthy if i.get("reason", "") != reason]


def _rerun(outcome: CheckOutcome) -> str:
    if outcome.subject == "watch list":
        return ""
    parts = []
    for item in outcome.subject.split(", "):
        parts.append(f"--mx {item[3:]}" if item.startswith("mx:") else item)
    return " ".join(parts)
