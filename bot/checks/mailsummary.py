"""Maps `[logs]` and `[logsummary]` onto the log-summary engine; wraps its report as a CheckOutcome.

The baseline for "volume far above its own usual" comes from earlier mail summaries in the store:
each stored run keeps per-origin message counts (`volumes`) and its window length, so the usual
rate of an account or host is the mean of its rate over earlier, non-overlapping windows.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path

from bot.checks import CheckOutcome, ProgressCallback
from bot.config import Config
from bot.store import Store
from handlers.logsummary.engine import SummaryOptions, summarize_logs
from handlers.logsummary.inputs import LogInputError, rotations, time_order
from handlers.logsummary.lan import discover_internal_networks
from handlers.logsummary.suspects import SuspectThresholds
from handlers.logsummary.timefmt import TimeSpecError, TimeWindow, window_from_specs

KIND = "mailsummary"
# Earlier runs used for the baseline, newest first
BASELINE_RUNS = 50
# A run where at least this share of the lines could not be parsed did not read a mail log
UNPARSED_SHARE_LIMIT = 0.9
# … once it has read this many lines (a handful of odd lines in a tiny log prove nothing)
UNPARSED_MIN_LINES = 20


def thresholds_for(config: Config) -> SuspectThresholds:
    c = config.logsummary
    return SuspectThresholds(
        sasl_distinct_ips=c.sasl_distinct_ips,
        sasl_distinct_networks=c.sasl_distinct_networks,
        volume_spike_factor=c.volume_spike_factor,
        volume_share=c.volume_share,
        min_messages_for_ratio=c.min_messages_for_ratio,
        bounce_ratio=c.bounce_ratio,
        user_unknown_count=c.user_unknown_count,
        user_unknown_ratio=c.user_unknown_ratio,
        recipients_per_message=c.recipients_per_message,
        internal_outbound_messages=c.internal_outbound_messages,
        relay_probe_count=c.relay_probe_count,
        sasl_failures_per_ip=c.sasl_failures_per_ip,
        sasl_failures_per_account=c.sasl_failures_per_account,
    )


def configured_paths(config: Config) -> list[str]:
    """Each configured log with its rotations (mail.log.2.gz, mail.log.1, mail.log), oldest first"""
    found: list[str] = []
    for path in config.logs.paths:
        found.extend(rotations(path))
    return found


def baseline_from_store(store: Store, window: TimeWindow) -> dict[str, float]:
    """Usual messages per hour per origin, from earlier summaries whose window ended before this
    one began (overlapping runs would already contain the spike we are looking for)."""
    rates: dict[str, float] = {}
    runs = 0
    for record in store.checks(KIND, limit=BASELINE_RUNS):
        if record.status == "failed" or record.result.get("inputs") != "configured":
            continue  # only runs over the configured logs describe this server's usual traffic
        volumes = record.result.get("volumes")
        hours = (record.result.get("window") or {}).get("hours")
        if not isinstance(volumes, dict) or not isinstance(hours, int | float) or hours <= 0:
            continue
        if window.since is not None:
            ended = datetime.fromisoformat(record.finished_at).timestamp()
            if ended > window.since:
                continue
        runs += 1
        for origin, count in volumes.items():
            if isinstance(count, int | float):
                rates[origin] = rates.get(origin, 0.0) + count / hours
    if not runs:
        return {}
    return {origin: total / runs for origin, total in rates.items()}


def window_subject(since: str | None, until: str | None) -> str:
    if since and until:
        return f"{since}..{until}"
    if until:
        return f"..{until}"
    return since or "all"


async def run_mailsummary(
    config: Config,
    since: str | None = None,
    until: str | None = None,
    files: list[str] | None = None,
    store: Store | None = None,
    top: int = 10,
    progress: ProgressCallback | None = None,
    now: datetime | None = None,
    internal_networks: list[str] | None = None,
) -> CheckOutcome:
    """Summarises the configured logs (or `files`, "-" for stdin) over a window.

    With no files and no `since`, the configured window (`logs.window`, e.g. 24h) applies; named
    files are read whole unless `since`/`until` narrow them. Raises TimeSpecError for a bad
    since/until (a usage error); problems reading the logs make the outcome "failed".
    `internal_networks` (the CLI's --internal-networks) overrides the configured LAN; without
    either, the local MTA's trusted networks (lan.py) are used.
    """
    moment = now or datetime.now(UTC)
    if since is None and not files:
        since = config.logs.window
    window = window_from_specs(since, until, moment)
    subject = window_subject(since, until)
    if files:
        # runs over named files are kept apart from the configured-log history (digest, alerts)
        names = ", ".join("stdin" if f == "-" else Path(f).name for f in files)
        subject = f"{subject} of {names[:80]}"
    paths = time_order(files) if files else configured_paths(config)
    journal = () if files else tuple(config.logs.journal_units if config.logs.journal else ())
    lan = await asyncio.to_thread(
        discover_internal_networks,
        internal_networks or config.logsummary.internal_networks,
        "--internal-networks" if internal_networks else "[logsummary] internal_networks",
    )
    options = SummaryOptions(
        paths=tuple(paths),
        journal_units=journal,
        window=window,
        thresholds=thresholds_for(config),
        internal_networks=lan.networks,
        local_domains=tuple(config.logsummary.local_domains),
        syslog_names=tuple(config.logs.syslog_names),
        baseline=baseline_from_store(store, window) if store is not None else None,
        workers=config.logsummary.workers,
        timeout=config.logs.journal_timeout,
        max_decompressed_bytes=config.logs.max_decompressed_mb << 20,
        now=moment.timestamp(),
    )
    if not paths and not journal:
        wanted = ", ".join(config.logs.paths) or "(none)"
        return _failed(
            subject,
            f"no log file at {wanted}: set [logs] paths, or journal = true to read the journal",
        )
    try:
        report = await summarize_logs(options, progress)
    except LogInputError as exc:
        return _failed(subject, str(exc))
    except OSError as exc:
        return _failed(subject, f"cannot read the logs: {exc}")
    data = report.to_dict(top=top)
    data["subject"] = subject
    data["inputs"] = "files" if files else "configured"
    data["internal_networks"] = list(lan.networks)
    data["internal_networks_source"] = lan.source
    if lan.skipped:
        data["internal_networks_skipped"] = list(lan.skipped)
    silent = silence_reason(data, span_words(since, until, files))
    if silent:
        # nothing (or nearly nothing) was read: "no suspects" would be a guess, not a finding
        data["could_not_check"] = silent
        return CheckOutcome(kind=KIND, subject=subject, status="failed", data=data, result=report)
    status = "problem" if report.suspects else "ok"
    return CheckOutcome(kind=KIND, subject=subject, status=status, data=data, result=report)


def span_words(since: str | None, until: str | None, files: list[str] | None) -> str:
    """How a reason names the window: "in the last 24 h", "between A and B", "in mail.log"."""
    if since and not until:
        found = re.fullmatch(r"\s*(\d+)\s*([mhdw])\s*", since)
        if found:
            return f"in the last {found.group(1)} {found.group(2)}"
        return f"since {since}"
    if since and until:
        return f"between {since} and {until}"
    if until:
        return f"before {until}"
    if files:
        return "in " + ", ".join("stdin" if f == "-" else Path(f).name for f in files)[:120]
    return "in the logs"


def silence_reason(data: dict, span: str) -> str | None:
    """Why this run could not say anything about the mail (None: it read mail log lines).

    Zero Postfix/Exim lines inside the window — an empty log, a log of something else, or a log
    whose lines all lie outside the window — or nearly all lines unparsed: "could not check".
    """
    lines = int(data.get("lines") or 0)
    mail = int(data.get("mail_lines") or 0)
    unparsed = int(data.get("unparsed_lines") or 0)
    if mail == 0:
        sources = data.get("sources") or []
        if lines == 0 and sources and all(s.get("status") == "skipped" for s in sources):
            detail = "every log file lies outside the time window"
        elif lines == 0:
            detail = "the log is empty"
        elif unparsed >= lines:
            detail = f"none of the {lines:,} lines read is a log line relaywatch can parse"
        elif int(data.get("other_program_lines") or 0) + unparsed >= lines:
            detail = f"none of the {lines:,} lines read is from Postfix or Exim"
        else:
            last = (data.get("window") or {}).get("last_line")
            detail = f"{lines:,} lines read, none inside the window" + (
                f"; the newest is from {last}" if last else ""
            )
        return f"no mail log lines {span} — is logging alive? ({detail})"
    if unparsed >= UNPARSED_MIN_LINES and unparsed >= UNPARSED_SHARE_LIMIT * (unparsed + mail):
        return (
            f"{unparsed:,} of {unparsed + mail:,} lines {span} could not be parsed — is this "
            "a Postfix or Exim log? (see the unparsed sample)"
        )
    return None


def _failed(subject: str, error: str) -> CheckOutcome:
    return CheckOutcome(
        kind=KIND, subject=subject, status="failed", data={"error": error, "subject": subject}
    )


__all__ = ["KIND", "TimeSpecError", "baseline_from_store", "run_mailsummary", "thresholds_for"]
