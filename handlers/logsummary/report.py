"""The engine's result and its documented JSON form (`relaywatch mailsummary --json`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from handlers.logsummary.summary import O_HOURS, O_MESSAGES, Summary
from handlers.logsummary.suspects import Suspect
from handlers.logsummary.timefmt import TimeWindow

# How many origins' volumes each stored run keeps for later baselines.
VOLUME_ENTRIES = 200


@dataclass
class SourceReport:
    name: str  # path, "-" (stdin) or "journal"
    status: str  # "read" | "skipped"
    reason: str = ""
    bytes: int = 0
    lines: int = 0
    warnings: list[str] = field(default_factory=list)  # truncated, over-long lines, size cap


@dataclass
class MailLogReport:
    summary: Summary
    suspects: list[Suspect]
    sources: list[SourceReport]
    window: TimeWindow
    window_hours: float
    elapsed: float
    workers: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def totals(self) -> dict[str, int]:
        s = self.summary
        return {
            "received": s.received,
            "delivered": s.delivered,
            "forwarded": s.forwarded,
            "deferred": s.deferred,
            "deferrals": s.deferrals,
            "bounced": s.bounced,
            "rejected": s.rejected,
            "reject_warnings": s.reject_warnings,
            "held": s.held,
            "discarded": s.discarded,
            "bytes_received": s.bytes_received,
            "bytes_delivered": s.bytes_delivered,
            "senders": len(s.senders),
            "sending_hosts": len(s.sending_domains),
            "recipients": len(s.recipients),
            "recipient_hosts": sum(1 for v in s.recipient_domains.values() if v[0] > 0),
        }

    def sending_per_hour(self, item: Suspect) -> list[int]:
        """Messages the suspect sent in over SMTP, by hour of day (zeros: none, or local mail)."""
        prefix = {"account": "sasl", "client": "client", "local_sender": "local"}
        stats = self.summary.origins.get(f"{prefix.get(item.subject_type, '')}:{item.subject}")
        return list(stats[O_HOURS]) if stats is not None else [0] * 24

    def to_dict(self, top: int = 10) -> dict[str, Any]:
        s = self.summary
        return {
            "totals": self.totals(),
            "suspects": [
                {**suspect_dict(item), "per_hour": self.sending_per_hour(item)}
                for item in self.suspects
            ],
            "unparsed_lines": s.unparsed_lines,
            "unparsed_sample": list(s.unparsed_sample),
            "lines": s.lines,
            "mail_lines": s.mail_lines,
            "other_program_lines": s.other_lines,
            "window": {
                "since": _iso(self.window.since),
                "until": _iso(self.window.until),
                "hours": round(self.window_hours, 3),
                "first_line": _iso(s.first_time),
                "last_line": _iso(s.last_time),
            },
            "sources": [vars(source) for source in self.sources],
            "per_hour": [
                {
                    "hour": hour,
                    "received": row[0],
                    "delivered": row[1],
                    "deferred": row[2],
                    "bounced": row[3],
                    "rejected": row[4],
                }
                for hour, row in enumerate(s.per_hour)
            ],
            "top": {
                "senders_by_count": _people(s.senders, 0, top),
                "senders_by_bytes": _people(s.senders, 1, top),
                "recipients_by_count": _people(s.recipients, 0, top),
                "recipients_by_bytes": _people(s.recipients, 1, top),
                "sending_domains": [
                    {"domain": d, "messages": v[0], "bytes": v[1]}
                    for d, v in _ranked(s.sending_domains, 0, top)
                ],
                "sending_domains_by_bytes": [
                    {"domain": d, "messages": v[0], "bytes": v[1]}
                    for d, v in _ranked(s.sending_domains, 1, top)
                ],
                "recipient_domains_by_bytes": [
                    {"domain": d, "delivered": v[0], "bytes": v[1]}
                    for d, v in _ranked(s.recipient_domains, 1, top)
                ],
                "recipient_domains": [
                    {
                        "domain": d,
                        "delivered": v[0],
                        "bytes": v[1],
                        "deferred": v[2],
                        "avg_delay": round(v[3] / v[0], 2) if v[0] else 0.0,
                        "max_delay": v[4],
                    }
                    for d, v in _ranked(s.recipient_domains, 0, top)
                ],
            },
            "reject_reasons": _reason_groups(s),
            "rejects": {action: _detail(stages, top) for action, stages in s.reject_detail.items()},
            "deferral_reasons": _by_group(s.deferral_reasons, top),
            "bounce_reasons": _by_group(s.bounce_reasons, top),
            "smtpd": {
                "connections": s.connections,
                "hosts": len(s.connections_by_host),
                "total_seconds": s.connect_seconds,
                "avg_seconds": round(s.connect_seconds / s.connections, 2) if s.connections else 0,
                "top_hosts": [
                    {"host": h, "connections": v[0], "seconds": v[1], "max_seconds": v[2]}
                    for h, v in _ranked(s.connections_by_host, 0, top)
                ],
            },
            "sasl": {
                "messages_by_account": _counts(s.sasl_messages_by_user, top),
                "failures_by_account": _counts(s.sasl_failures_by_user, top),
                "messages_by_ip": _counts(s.sasl_messages_by_ip, top),
                "failures_by_ip": _counts(s.sasl_failures_by_ip, top),
                "auth_by_ip": {
                    ip: {"ok": v[0], "failed": v[1]} for ip, v in _ranked(s.auth_by_ip, 1, top)
                },
            },
            "problems": {
                "warnings": sum(sum(v.values()) for v in s.warnings.values()),
                "fatal": sum(sum(v.values()) for v in s.fatals.values()),
                "panic": sum(sum(v.values()) for v in s.panics.values()),
                "warning_detail": _by_group(s.warnings, top),
                "fatal_detail": _by_group(s.fatals, top),
                "panic_detail": _by_group(s.panics, top),
                "smtp_delivery_failures": _by_group(s.smtp_failures, top),
                "master": _counts(s.master, top),
            },
            "volumes": _volumes(s),
            "elapsed_seconds": round(self.elapsed, 3),
            "workers": self.workers,
        }


def suspect_dict(item: Suspect) -> dict[str, Any]:
    return {
        "kind": item.kind,
        "subject": item.subject,
        "subject_type": item.subject_type,
        "score": item.score,
        "reasons": list(item.reasons),
        "evidence": list(item.evidence),
        "kinds": list(item.kinds),
        "action": item.action,
    }


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment).astimezone().isoformat(timespec="seconds")


def _ranked(table: dict[str, Any], index: int, top: int) -> list[tuple[str, Any]]:
    items = sorted(table.items(), key=lambda kv: (-kv[1][index], kv[0]))
    return items[:top] if top > 0 else items


def _people(table: dict[str, list[int]], index: int, top: int) -> list[dict[str, Any]]:
    return [{"address": a, "messages": v[0], "bytes": v[1]} for a, v in _ranked(table, index, top)]


def _counts(table: dict[str, int], top: int) -> dict[str, int]:
    items = sorted(table.items(), key=lambda kv: (-kv[1], kv[0]))
    return dict(items[:top] if top > 0 else items)


def _by_group(table: dict[str, dict[str, int]], top: int) -> dict[str, dict[str, Any]]:
    return {
        group: {"total": sum(reasons.values()), "top": _counts(reasons, top)}
        for group, reasons in sorted(table.items())
    }


def _detail(stages: dict[str, dict[str, dict[str, int]]], top: int) -> dict[str, Any]:
    return {
        stage: {
            reason: {"total": sum(keys.values()), "top": _counts(keys, top)}
            for reason, keys in sorted(reasons.items())
        }
        for stage, reasons in sorted(stages.items())
    }


def _reason_groups(s: Summary) -> list[dict[str, Any]]:
    rows = [
        {"action": action, "stage": stage, "reason": reason, "count": sum(keys.values())}
        for action, stages in s.reject_detail.items()
        for stage, reasons in stages.items()
        for reason, keys in reasons.items()
    ]
    rows.sort(key=lambda row: (-row["count"], row["action"], row["reason"]))
    return rows


def _volumes(s: Summary) -> dict[str, int]:
    ranked = sorted(s.origins.items(), key=lambda kv: (-kv[1][O_MESSAGES], kv[0]))
    return {origin: stats[O_MESSAGES] for origin, stats in ranked[:VOLUME_ENTRIES]}
