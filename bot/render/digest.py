"""The health digest as terminal text and as a Slack message whose details go in thread replies."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.digest.model import (
    AddressReport,
    DelistingNote,
    Digest,
    DomainAuthReport,
    ServerReport,
    SuspectReport,
)
from bot.render.reply import (
    STATUS_EMOJI,
    ChatReply,
    buttons,
    context,
    detail_reply,
    divider,
    escape,
    header,
    mention,
    sections,
)

TOP_SUSPECTS = 5
# the totals worth a line in the digest, in pflogsumm's order
HEADLINE_TOTALS = ("received", "delivered", "deferred", "bounced", "rejected")


def text(digest: Digest) -> str:
    zone = digest.timezone
    lines = [
        f"Mail health digest {_when(digest.generated_at, zone)} — status: {digest.status.upper()}",
        *[f"  - {reason}" for reason in digest.reasons],
        f"changes since {_when(digest.since, zone)}",
        "",
        "Blocklists (watched IPs, ranges and domains)",
    ]
    if not digest.addresses:
        lines.append("  nothing watched (relaywatch watch add 192.0.2.10)")
    for report in digest.addresses:
        # the terminal is where the admin acts: delist links inline
        lines.extend("  " + line for line in _address_lines(report, detail=True, zone=zone))
    lines += ["", "Open relay (watched servers)"]
    if not digest.servers:
        lines.append("  nothing watched (relaywatch watch add --kind server mx.example.com:25)")
    for server in digest.servers:
        lines.extend("  " + line for line in _server_lines(server))
    lines += ["", "Authentication (SPF, DKIM, DMARC, reverse DNS of watched domains)"]
    if not digest.domains:
        lines.append("  no domains watched (relaywatch watch add example.com)")
    for domain in digest.domains:
        lines.extend("  " + line for line in _domain_lines(domain))
    lines += ["", *_mail_lines(digest)]
    if digest.suspects:
        lines += ["", "Top suspects"]
        for suspect in digest.suspects[:TOP_SUSPECTS]:
            lines.extend("  " + line for line in _suspect_lines(suspect))
        if len(digest.suspects) > TOP_SUSPECTS:
            lines.append(
                f"  … and {len(digest.suspects) - TOP_SUSPECTS} more (relaywatch mailsummary)"
            )
    if digest.not_run:
        lines += ["", "Could not run (not counted as clean)"]
        for item in digest.not_run:
            lines.append(f"  {item.kind} {item.subject}: {item.reason}")
    if digest.open_alerts:
        lines += ["", "Open alerts"]
        for alert in digest.open_alerts:
            ack = (
                f" — acknowledged by {alert.acknowledged_by} at "
                f"{_when(alert.acknowledged_at, zone)}"
                if alert.acknowledged_by
                else " — not acknowledged"
            )
            lines.append(f"  #{alert.id} {alert.summary}{ack}")
    if digest.delisting:
        lines += ["", "Delisting (open cases)"]
        lines += [f"  {_delisting_line(note)}" for note in digest.delisting]
    closed_acks = [a for a in digest.acknowledged if a.state != "open"]
    if closed_acks:
        lines += ["", "Acknowledged since the last digest"]
        for alert in closed_acks:
            lines.append(
                f"  #{alert.id} {alert.summary} — by {alert.acknowledged_by} at "
                f"{_when(alert.acknowledged_at, zone)} (now closed)"
            )
    return "\n".join(lines)


def chat_reply(digest: Digest) -> ChatReply:
    zone = digest.timezone
    emoji = STATUS_EMOJI[digest.status]
    blocks = [
        header(f"Mail health digest — {_when(digest.generated_at, zone)}"),
        *sections(
            f"{emoji} *{digest.status.capitalize()}*\n"
            + "\n".join(f"• {escape(r)}" for r in digest.reasons)
        ),
        context(f"changes since the previous digest ({_when(digest.since, zone)})"),
        divider(),
        *sections(
            "*Blocklists*\n"
            + (
                "\n".join(_address_mrkdwn(r) for r in digest.addresses)
                or "_nothing watched — `/mailhealth watch add 192.0.2.10`_"
            )
        ),
        *sections(
            "*Open relay*\n"
            + (
                "\n".join(_server_mrkdwn(s) for s in digest.servers)
                or "_no servers watched — `/mailhealth watch add mx.example.com:25`_"
            )
        ),
        *sections(
            "*Authentication*\n"
            + (
                "\n".join(_domain_mrkdwn(d) for d in digest.domains)
                or "_no domains watched — `/mailhealth watch add example.com`_"
            )
        ),
        *sections("\n".join(_mail_mrkdwn(digest))),
    ]
    if digest.suspects:
        blocks += sections(
            "*Top suspects*\n"
            + "\n".join(
                f"• `{escape(s.subject)}` {escape(s.kind)} (score {s.score:g})"
                + (" *new*" if s.new else "")
                + (f" — {escape(s.reasons[0])}" if s.reasons else "")
                for s in digest.suspects[:TOP_SUSPECTS]
            )
        )
    if digest.not_run:
        blocks += sections(
            ":white_circle: *Could not run* (not counted as clean)\n"
            + "\n".join(
                f"• {n.kind} `{escape(n.subject)}`: {escape(n.reason)}" for n in digest.not_run
            )
        )
    acks = list(digest.acknowledged)
    if digest.open_alerts or acks:
        alert_lines = []
        for alert in digest.open_alerts:
            who = (
                f"acknowledged by {mention(alert.acknowledged_by)} "
                f"{_when(alert.acknowledged_at, zone)}"
                if alert.acknowledged_by
                else "*not acknowledged*"
            )
            alert_lines.append(f"• #{alert.id} {escape(alert.summary)} — {who}")
        for alert in acks:
            if alert.state != "open":
                alert_lines.append(
                    f"• #{alert.id} {escape(alert.summary)} — acknowledged by "
                    f"{mention(alert.acknowledged_by)} {_when(alert.acknowledged_at, zone)}, "
                    "now closed"
                )
        blocks += sections("*Alerts*\n" + "\n".join(alert_lines))
    if digest.delisting:
        blocks += sections(
            "*Delisting*\n"
            + "\n".join(f"• {escape(_delisting_line(note))}" for note in digest.delisting[:15])
        )
    blocks.append(buttons(("rerun", "Re-run", "mailhealth")))
    return ChatReply(
        text=f"Mail health digest: {digest.status} — " + "; ".join(map(escape, digest.reasons)),
        blocks=blocks,
        thread=_thread(digest),
    ).fitted()


def _thread(digest: Digest) -> list[ChatReply]:
    """Details an admin acts on, one thread reply per area that has something to say."""
    zone = digest.timezone
    replies: list[ChatReply] = []
    listed = [r for r in digest.addresses if r.listings or r.removed]
    if listed:
        body = "\n\n".join("\n".join(_address_lines(r, detail=True, zone=zone)) for r in listed)
        replies.append(detail_reply("Blocklist listings", body, "digest-blocklists.txt"))
    servers = [s for s in digest.servers if s.verdict not in ("closed", "") or s.warnings]
    if servers:
        body = "\n\n".join("\n".join(_server_lines(s, detail=True)) for s in servers)
        replies.append(detail_reply("Relay verdicts and warnings", body, "digest-relay.txt"))
    domains = [d for d in digest.domains if d.failing or d.warnings or d.errors]
    if domains:
        body = "\n\n".join("\n".join(_domain_lines(d, detail=True)) for d in domains)
        # record text from DNS is attacker-chosen: escaped even inside the code block
        replies.append(
            detail_reply("Authentication findings and fixes", escape(body), "digest-auth.txt")
        )
    if digest.suspects:
        body = "\n\n".join(
            "\n".join(_suspect_lines(s, detail=True)) for s in digest.suspects[:TOP_SUSPECTS]
        )
        replies.append(detail_reply("Suspects and evidence", body, "digest-suspects.txt"))
    if digest.not_run:
        body = "\n".join(
            f"{n.kind} {n.subject}: {n.reason}" + (f" (check #{n.check_id})" if n.check_id else "")
            for n in digest.not_run
        )
        replies.append(detail_reply("Checks that could not run", body, "digest-not-run.txt"))
    return replies


def _address_lines(report: AddressReport, detail: bool = False, zone: str = "UTC") -> list[str]:
    coverage = (
        f"answered {report.lists_answered} of {report.lists_total} lists"
        + (
            f" ({report.failed_lists} failed, {report.unhealthy_lists} unhealthy)"
            if report.failed_lists or report.unhealthy_lists
            else ""
        )
        if report.lists_total
        else ""
    )
    if report.status in ("failed", "stale", "unchecked"):
        return [f"{report.subject}: COULD NOT CHECK — {report.note}"]
    if report.status == "partial":
        lines = [f"{report.subject}: not listed where asked, NOT CLEAN — {report.note}"]
        if coverage:
            lines.append(f"    {coverage}")
    elif not report.listings:
        lines = [f"{report.subject}: clean" + (f", {coverage}" if coverage else "")]
    else:
        lines = [f"{report.subject}: LISTED on {len(report.listings)}, {coverage}"]
        for listing in report.listings:
            meaning = "; ".join(listing.meanings) or ", ".join(listing.codes)
            tag = "NEW" if listing.new else f"{listing.days_listed} days"
            where = f" ({listing.target})" if listing.target != report.subject else ""
            lines.append(
                f"    {listing.zone}{where} — {meaning or 'listed'} [{tag}]"
                + (f" [{listing.severity}]" if listing.severity else "")
            )
            if detail and listing.delist_url:
                lines.append(f"      delist: {listing.delist_url}")
            if detail:
                lines.append(f"      listed since {_when(listing.listed_since, zone)}")
    if report.listings and report.note:
        lines.append(f"    {report.note}")
    for removed in report.removed:
        lines.append(f"    removed since last digest: {removed}")
    return lines


def _address_mrkdwn(report: AddressReport) -> str:
    if report.status in ("failed", "stale", "unchecked"):
        return f":white_circle: `{escape(report.subject)}` could not check — {escape(report.note)}"
    removed = f", delisted from {len(report.removed)}" if report.removed else ""
    if report.status == "partial":
        return (
            f":white_circle: `{escape(report.subject)}` not listed where asked, but "
            f"{escape(report.note)}{removed}"
        )
    if not report.listings:
        return f":large_green_circle: `{escape(report.subject)}` clean{removed}"
    new = sum(1 for x in report.listings if x.new)
    longest = max(x.days_listed for x in report.listings)
    zones = ", ".join(escape(x.zone) for x in report.listings[:4])
    more = f" +{len(report.listings) - 4}" if len(report.listings) > 4 else ""
    return (
        f":red_circle: `{escape(report.subject)}` listed on {zones}{more}"
        + (f" (*{new} new*)" if new else "")
        + f", up to {longest} days{removed}"
    )


def _server_lines(server: ServerReport, detail: bool = False) -> list[str]:
    if server.status in ("failed", "unchecked"):
        return [f"{server.subject}: COULD NOT CHECK — {server.note}"]
    change = (
        f" (was {server.previous_verdict})"
        if server.previous_verdict and server.previous_verdict != server.verdict
        else ""
    )
    stale = f" — {server.note}" if server.status == "stale" else ""
    lines = [f"{server.subject}: {server.verdict or 'no verdict'}{change}{stale}"]
    shown = server.warnings if detail else server.warnings[:2]
    lines.extend(f"    warning: {w}" for w in shown)
    if len(server.warnings) > len(shown):
        lines.append(f"    … {len(server.warnings) - len(shown)} more warnings in the thread")
    return lines


def _server_mrkdwn(server: ServerReport) -> str:
    if server.status in ("failed", "unchecked", "stale") or server.verdict in (
        "inconclusive",
        "unreachable",
        "",
    ):
        note = server.note or f"verdict {server.verdict or 'unknown'}"
        return f":white_circle: `{escape(server.subject)}` could not tell — {escape(note)}"
    emoji = {"open": ":red_circle:", "suspect": ":large_yellow_circle:"}.get(
        server.verdict, ":large_green_circle:"
    )
    change = (
        f" (was {server.previous_verdict})"
        if server.previous_verdict and server.previous_verdict != server.verdict
        else ""
    )
    warn = f", {len(server.warnings)} warnings" if server.warnings else ""
    return f"{emoji} `{escape(server.subject)}` {server.verdict}{change}{warn}"


def _domain_lines(domain: DomainAuthReport, detail: bool = False) -> list[str]:
    if domain.status in ("unchecked", "stale") or not domain.counts:
        return [f"{domain.domain}: COULD NOT CHECK — {domain.note}"]
    counts = ", ".join(f"{n} {s}" for s, n in domain.counts.items() if n)
    lines = [f"{domain.domain}: {domain.status.upper()} ({counts})"]
    lines.extend(f"    FAIL  {line}" for line in domain.failing)
    lines.extend(f"    ERROR {line}" for line in domain.errors)
    shown = domain.warnings if detail else domain.warnings[:3]
    lines.extend(f"    WARN  {line}" for line in shown)
    if len(domain.warnings) > len(shown):
        lines.append(f"    … {len(domain.warnings) - len(shown)} more warnings in the thread")
    if detail:
        lines.extend(f"    fix: {fix}" for fix in domain.fixes)
    return lines


def _domain_mrkdwn(domain: DomainAuthReport) -> str:
    name = escape(domain.domain)
    if domain.status in ("unchecked", "stale") or not domain.counts:
        return f":white_circle: `{name}` could not check — {escape(domain.note)}"
    if domain.failing:
        checks = sorted({line.split(" ", 1)[0] for line in domain.failing})
        return f":red_circle: `{name}` fails {escape(', '.join(checks))}" + (
            f", {len(domain.errors)} could not run" if domain.errors else ""
        )
    if domain.errors:
        return f":white_circle: `{name}` {len(domain.errors)} checks could not run"
    if domain.warnings:
        return f":large_yellow_circle: `{name}` passes, {len(domain.warnings)} warnings"
    return f":large_green_circle: `{name}` passes every check"


def _mail_lines(digest: Digest) -> list[str]:
    mail = digest.mail
    if mail is None:
        return ["Mail (log summary)", "  no usable summary — see 'Could not run'"]
    lines = [f"Mail, last {mail.window} against the {mail.window} before"]
    for key in HEADLINE_TOTALS:
        value = mail.current.get(key, 0)
        delta = _delta(mail.deltas, key)
        lines.append(f"  {key:<10} {value:>8}{delta}")
    if mail.previous is None:
        lines.append("  (no summary from one window earlier yet: deltas start tomorrow)")
    if mail.unparsed_lines:
        lines.append(f"  {mail.unparsed_lines} log lines could not be parsed")
    return lines


def _mail_mrkdwn(digest: Digest) -> list[str]:
    mail = digest.mail
    if mail is None:
        return ["*Mail*", ":white_circle: no usable log summary (see below)"]
    parts = [
        f"{key} *{mail.current.get(key, 0)}*{_delta(mail.deltas, key)}" for key in HEADLINE_TOTALS
    ]
    lines = [
        f"*Mail, last {escape(mail.window)}* vs the {escape(mail.window)} before",
        " · ".join(parts),
    ]
    if mail.previous is None:
        lines.append("_no earlier summary to compare with yet_")
    return lines


def _suspect_lines(suspect: SuspectReport, detail: bool = False) -> list[str]:
    lines = [
        f"{suspect.subject} ({suspect.kind}, score {suspect.score:g})"
        + (" NEW" if suspect.new else "")
        + (" — an attack on us, not a compromise" if suspect.attack else "")
    ]
    lines.extend(f"    {reason}" for reason in (suspect.reasons if detail else suspect.reasons[:1]))
    if suspect.action:
        lines.append(f"    next step: {suspect.action}")
    if detail:
        lines.extend(f"    | {line}" for line in suspect.evidence)
    return lines


def _delta(deltas: dict[str, int] | None, key: str) -> str:
    if deltas is None or key not in deltas:
        return ""
    value = deltas[key]
    return f" ({value:+d})"


def _delisting_line(note: DelistingNote) -> str:
    hours = note.listed_hours
    age = f"{hours:.0f} h" if hours < 72 else f"{hours / 24:.1f} days"
    parts = [f"{note.subject} on {note.zone}: listed {age}"]
    if note.requested_by:
        parts.append("removal requested")
    elif note.removal in ("self-service", "request"):
        parts.append("removal not requested yet")
    elif note.removal == "expires":
        parts.append("expires by itself once the cause stops")
    if note.cause_fixed_by:
        parts.append("cause fixed")
    if note.overdue:
        parts.append("OVERDUE")
    if note.relistings:
        parts.append(f"relisted {note.relistings}×")
    return ", ".join(parts)


def _when(stamp: str | None, zone: str = "UTC") -> str:
    """A stored UTC time as people read it: in the schedule's time zone, to the minute."""
    if not stamp:
        return "?"
    try:
        moment = datetime.fromisoformat(stamp).astimezone(ZoneInfo(zone))
    except (ValueError, KeyError):
        return stamp
    return moment.strftime("%Y-%m-%d %H:%M %Z")
