"""Building the digest from the store's history: latest results, and what changed since last time.

Everything here reads the store and nothing else, so a digest can be rebuilt after a restart and
"changes since the previous digest" come from history, not from memory.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from bot.config import Config
from bot.digest.facts import (
    blacklist_facts,
    blacklist_usable,
    domain_facts,
    failure_reason,
    mail_totals,
    relay_facts,
    suspect_facts,
)
from bot.digest.model import (
    AddressReport,
    AlertNote,
    DelistingNote,
    Digest,
    DomainAuthReport,
    Listing,
    MailTotals,
    NotRun,
    ServerReport,
    SuspectReport,
)
from bot.store import AlertRecord, CheckRecord, Store, iso
from bot.watchlist import BLACKLIST_KINDS

# how far back "days listed" looks; hourly checks make this about three months
HISTORY_LIMIT = 2000


def parse_window(text: str) -> timedelta:
    """'24h', '90m', '7d' → a timedelta; anything else counts as a day."""
    match = re.fullmatch(r"\s*(\d{1,6})\s*([mhd])\s*", text or "", re.ASCII)
    if not match:
        return timedelta(hours=24)
    value, unit = int(match.group(1)), match.group(2)
    return {"m": timedelta(minutes=value), "h": timedelta(hours=value), "d": timedelta(days=value)}[
        unit
    ]


def staleness_limits(config: Config) -> dict[str, timedelta]:
    """A result older than two scheduled intervals no longer vouches for today."""
    schedule = config.schedule
    return {
        "blacklist": timedelta(minutes=2 * max(1, schedule.blacklist_every_minutes)),
        "relay": timedelta(hours=2 * max(1, schedule.relay_every_hours)),
        "mailsummary": timedelta(minutes=2 * max(1, schedule.logsummary_every_minutes)),
        "domain": timedelta(hours=2 * max(1, schedule.domain_every_hours)),
    }


def mail_subject(config: Config) -> str:
    """The subject monitor runs record the mail summary under: the configured window ("24h")."""
    return config.logs.window


def previous_digest_time(store: Store, now: datetime) -> datetime:
    """When the last sent digest was built; 24 h ago when none was sent yet."""
    for run in store.digest_runs(limit=20):
        if run.status == "sent" and _parse(run.started_at) < now:
            return _parse(run.started_at)
    return now - timedelta(hours=24)


def build_digest(store: Store, config: Config, now: datetime) -> Digest:
    since = previous_digest_time(store, now)
    limits = staleness_limits(config)
    not_run: list[NotRun] = []
    addresses = [
        _address_report(store, item.kind, item.value, now, since, limits["blacklist"], not_run)
        for item in store.watch_list()
        if item.kind in BLACKLIST_KINDS
    ]
    servers = [
        _server_report(store, item.value, now, since, limits["relay"], not_run)
        for item in store.watch_list("server")
    ]
    mail, suspects = _mail_report(store, config, now, since, limits["mailsummary"], not_run)
    domains = [
        _domain_report(store, item.value, now, limits["domain"], not_run)
        for item in store.watch_list("domain")
    ]
    alerts = store.alerts()
    open_alerts = [_alert_note(a) for a in alerts if a.state == "open"]
    acknowledged = [
        _alert_note(a)
        for a in alerts
        if a.acknowledged_at and (a.state == "open" or _parse(a.acknowledged_at) >= since)
    ]
    status, reasons = _overall(addresses, servers, suspects, not_run, store, domains)
    return Digest(
        generated_at=iso(now),
        since=iso(since),
        status=status,
        reasons=reasons,
        addresses=addresses,
        servers=servers,
        mail=mail,
        suspects=suspects,
        not_run=not_run,
        open_alerts=open_alerts,
        acknowledged=acknowledged,
        timezone=config.schedule.timezone,
        delisting=_delisting_notes(store, config, now),
        domains=domains,
    )


def _delisting_notes(store: Store, config: Config, now: datetime) -> list[DelistingNote]:
    from bot.monitor.delisting import removal_policies
    from handlers.delisting import RemovalPolicy, overdue_at

    cases = store.delist_cases("listed")
    if not cases:
        return []
    policies = removal_policies(config)
    notes = []
    for case in cases:
        policy = policies.get(case.zone, RemovalPolicy())
        due = overdue_at(case, policy)
        notes.append(
            DelistingNote(
                subject=case.subject,
                zone=case.zone,
                listed_hours=round((now - case.first_seen).total_seconds() / 3600, 1),
                cause_fixed_by=case.cause_fixed_by,
                requested_by=case.requested_by,
                requested_at=iso(case.requested_at) if case.requested_at else None,
                overdue=due is not None and now >= due,
                removal=policy.removal,
                relistings=case.relistings,
            )
        )
    return sorted(notes, key=lambda n: -n.listed_hours)


def _domain_report(
    store: Store, domain: str, now: datetime, stale_after: timedelta, not_run: list[NotRun]
) -> DomainAuthReport:
    latest = store.latest_check("domain", domain)
    if latest is None:
        not_run.append(NotRun("domain", domain, "never checked", None, None))
        return DomainAuthReport(domain, "unchecked", None, None, note="never checked")
    facts = domain_facts(latest)
    if not facts.status:
        reason = failure_reason(latest)
        not_run.append(NotRun("domain", domain, reason, latest.finished_at, latest.id))
        return DomainAuthReport(domain, "error", latest.finished_at, latest.id, note=reason)
    report = DomainAuthReport(
        domain,
        facts.status,  # type: ignore[arg-type]
        latest.finished_at,
        latest.id,
        failing=[f"{f.id} {f.subject}: {f.summary}" for f in facts.findings if f.status == "fail"],
        warnings=[f"{f.id} {f.subject}: {f.summary}" for f in facts.findings if f.status == "warn"],
        errors=[f"{f.id} {f.subject}: {f.summary}" for f in facts.findings if f.status == "error"],
        fixes=[f.fix for f in facts.findings if f.status == "fail" and f.fix],
        counts={s: facts.count(s) for s in ("fail", "error", "warn", "pass")},
    )
    if now - _parse(latest.finished_at) > stale_after:
        report.note = f"last check {latest.finished_at} is too old to vouch for today"
        report.status = "stale"
        not_run.append(NotRun("domain", domain, report.note, latest.finished_at, latest.id))
    elif report.errors:
        report.note = (
            f"{len(report.errors)} check{'s' if len(report.errors) != 1 else ''} could not run"
        )
        not_run.append(NotRun("domain", domain, report.note, latest.finished_at, latest.id))
    return report


def _address_report(
    store: Store,
    kind: str,
    subject: str,
    now: datetime,
    since: datetime,
    stale_after: timedelta,
    not_run: list[NotRun],
) -> AddressReport:
    history = store.checks("blacklist", subject, limit=HISTORY_LIMIT)
    if not history:
        not_run.append(NotRun("blacklist", subject, "never checked", None, None))
        return AddressReport(subject, kind, "unchecked", None, None, note="never checked")
    latest = history[0]
    usable = [r for r in history if blacklist_usable(r)]
    if not blacklist_usable(latest):
        reason = failure_reason(latest)
        not_run.append(NotRun("blacklist", subject, reason, latest.finished_at, latest.id))
        report = AddressReport(subject, kind, "failed", latest.finished_at, latest.id, note=reason)
        if usable:  # what we last knew, clearly marked as not today's answer
            report.note += f" (last good check {usable[0].finished_at})"
        return report
    facts = blacklist_facts(latest)
    if now - _parse(latest.finished_at) > stale_after:
        reason = f"last check {latest.finished_at} is too old to vouch for today"
        not_run.append(NotRun("blacklist", subject, reason, latest.finished_at, latest.id))
        return AddressReport(subject, kind, "stale", latest.finished_at, latest.id, note=reason)
    streak_start = _listing_streaks(usable, facts.keys)
    listings = [
        Listing(
            target=fact.target,
            zone=fact.zone,
            codes=list(fact.codes),
            meanings=list(fact.meanings),
            delist_url=fact.delist_url,
            severity=fact.severity,
            listed_since=streak_start[fact.key],
            days_listed=max(0, (now - _parse(streak_start[fact.key])).days),
            new=_parse(streak_start[fact.key]) > since,
        )
        for fact in facts.listings
    ]
    baseline = _at_or_before(usable, since)
    removed: list[str] = []
    if baseline is not None:
        removed = [
            f"{target} {zone}"
            for target, zone in sorted(facts.removed_since(blacklist_facts(baseline).keys))
        ]
    note = ""
    if facts.unknown_zones:
        # part of the check could not run: those lists say nothing, so this is not "clean"
        shown = ", ".join(f"{zone} ({why})" for zone, why in facts.unknown_zones[:5])
        more = len(facts.unknown_zones) - 5
        note = (
            f"{len(facts.unknown_zones)} list{'s' if len(facts.unknown_zones) != 1 else ''} "
            f"could not be asked: {shown}" + (f" and {more} more" if more > 0 else "")
        )
        not_run.append(NotRun("blacklist", subject, note, latest.finished_at, latest.id))
    return AddressReport(
        subject=subject,
        kind=kind,
        status="listed" if listings else ("partial" if note else "clean"),
        checked_at=latest.finished_at,
        check_id=latest.id,
        listings=listings,
        removed=removed,
        lists_answered=facts.lists_answered,
        lists_total=facts.lists_total,
        failed_lists=facts.failed_lists,
        unhealthy_lists=facts.unhealthy_lists,
        note=note,
    )


def _listing_streaks(
    usable: list[CheckRecord], keys: frozenset[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """For each current listing, the first check of its unbroken run (history newest first).

    A run where that list could not be asked neither extends nor breaks the streak.
    """
    start = {key: usable[0].finished_at for key in keys}
    still_running = set(keys)
    for record in usable[1:]:
        if not still_running:
            break
        facts = blacklist_facts(record)
        for key in list(still_running):
            if key in facts.keys:
                start[key] = record.finished_at
            elif not facts.is_unknown(key):
                still_running.discard(key)
    return start


def _server_report(
    store: Store,
    subject: str,
    now: datetime,
    since: datetime,
    stale_after: timedelta,
    not_run: list[NotRun],
) -> ServerReport:
    history = store.checks("relay", subject, limit=200)
    if not history:
        not_run.append(NotRun("relay", subject, "never checked", None, None))
        return ServerReport(subject, "unchecked", "", "", [], None, None, note="never checked")
    latest = history[0]
    usable = [r for r in history if r.status != "failed"]
    baseline = _at_or_before(usable, since)
    previous = relay_facts(baseline).verdict if baseline else ""
    if latest.status == "failed":
        reason = failure_reason(latest)
        not_run.append(NotRun("relay", subject, reason, latest.finished_at, latest.id))
        facts = relay_facts(latest)  # an inconclusive test still says what it saw
        return ServerReport(
            subject,
            "failed",
            facts.verdict,
            previous,
            list(facts.warnings),
            latest.finished_at,
            latest.id,
            note=reason,
        )
    facts = relay_facts(latest)
    if now - _parse(latest.finished_at) > stale_after:
        reason = f"last check {latest.finished_at} is too old to vouch for today"
        not_run.append(NotRun("relay", subject, reason, latest.finished_at, latest.id))
        return ServerReport(
            subject,
            "stale",
            facts.verdict,
            previous,
            list(facts.warnings),
            latest.finished_at,
            latest.id,
            note=reason,
        )
    if facts.verdict in ("inconclusive", "unreachable", ""):
        reason = f"relay test was {facts.verdict or 'without a verdict'}"
        not_run.append(NotRun("relay", subject, reason, latest.finished_at, latest.id))
    return ServerReport(
        subject=subject,
        status="problem" if facts.verdict in ("open", "suspect") else "ok",
        verdict=facts.verdict,
        previous_verdict=previous,
        warnings=list(facts.warnings),
        checked_at=latest.finished_at,
        check_id=latest.id,
    )


def _mail_report(
    store: Store,
    config: Config,
    now: datetime,
    since: datetime,
    stale_after: timedelta,
    not_run: list[NotRun],
) -> tuple[MailTotals | None, list[SuspectReport]]:
    subject = mail_subject(config)
    history = store.checks("mailsummary", subject, limit=HISTORY_LIMIT)
    if not history:
        not_run.append(NotRun("mailsummary", subject, "never checked", None, None))
        return None, []
    latest = history[0]
    if latest.status == "failed":
        reason = failure_reason(latest)
        not_run.append(NotRun("mailsummary", subject, reason, latest.finished_at, latest.id))
        return None, []
    if now - _parse(latest.finished_at) > stale_after:
        reason = f"last summary {latest.finished_at} is too old to vouch for today"
        not_run.append(NotRun("mailsummary", subject, reason, latest.finished_at, latest.id))
        return None, []
    usable = [r for r in history if r.status != "failed"]
    previous = previous_window_record(usable, latest, parse_window(subject))
    current_totals = mail_totals(latest)
    previous_totals = mail_totals(previous) if previous else None
    deltas = (
        {k: v - previous_totals.get(k, 0) for k, v in current_totals.items()}
        if previous_totals is not None
        else None
    )
    unparsed = latest.result.get("unparsed_lines", 0)
    mail = MailTotals(
        window=subject,
        checked_at=latest.finished_at,
        check_id=latest.id,
        current=current_totals,
        previous=previous_totals,
        previous_checked_at=previous.finished_at if previous else None,
        deltas=deltas,
        previous_check_id=previous.id if previous else None,
        unparsed_lines=int(unparsed) if isinstance(unparsed, int | float) else 0,
    )
    baseline = _at_or_before(usable, since)
    known = {s.key for s in suspect_facts(baseline)} if baseline else set()
    suspects = [
        SuspectReport(
            s.kind,
            s.subject,
            s.score,
            list(s.reasons),
            list(s.evidence[:5]),
            new=s.key not in known,
            attack=s.is_attack,
            action=s.action,
        )
        for s in suspect_facts(latest)
    ]
    return mail, suspects


def previous_window_record(
    history: list[CheckRecord], latest: CheckRecord, window: timedelta
) -> CheckRecord | None:
    """The summary taken one window before `latest` (an hour's slack either way, since monitor
    runs are not exactly periodic); `history` newest first, failed runs left out."""
    target = _parse(latest.finished_at) - window
    return next(
        (
            r
            for r in history
            if r.id != latest.id
            and r.status != "failed"
            and abs(_parse(r.finished_at) - target) <= timedelta(hours=1) + window / 24
        ),
        None,
    )


def _overall(
    addresses: list[AddressReport],
    servers: list[ServerReport],
    suspects: list[SuspectReport],
    not_run: list[NotRun],
    store: Store,
    domains: list[DomainAuthReport] | None = None,
) -> tuple[str, list[str]]:
    red: list[str] = []
    yellow: list[str] = []
    for domain in domains or []:
        if domain.failing and domain.status != "stale":
            checks = sorted({line.split(" ", 1)[0] for line in domain.failing})
            red.append(f"{domain.domain} fails sending-domain checks: {', '.join(checks)}")
    for report in addresses:
        abuse = [x for x in report.listings if x.severity != "policy"]
        policy = [x for x in report.listings if x.severity == "policy"]
        if abuse:
            zones = ", ".join(sorted({x.zone for x in abuse}))
            red.append(f"{report.subject} is listed on {zones}")
        elif policy:
            zones = ", ".join(sorted({x.zone for x in policy}))
            yellow.append(f"{report.subject} is on policy list {zones} (not an abuse listing)")
    for server in servers:
        if server.verdict == "open" and server.status != "stale":
            red.append(f"{server.subject} is an open relay")
        elif server.verdict == "suspect" and server.status != "stale":
            yellow.append(f"{server.subject} may relay (verdict: suspect)")
    compromise = [s for s in suspects if not s.attack]
    if compromise:
        names = ", ".join(f"{s.subject} ({s.kind})" for s in compromise[:3])
        more = f" and {len(compromise) - 3} more" if len(compromise) > 3 else ""
        red.append(f"possible compromise: {names}{more}")
    for item in not_run:
        # a log that went quiet is its own headline, not one of "N checks could not vouch"
        if item.kind == "mailsummary" and item.reason.startswith("no mail log lines"):
            yellow.append(item.reason.partition(" (")[0])
    if not_run:
        yellow.append(
            f"{len(not_run)} check{'s' if len(not_run) != 1 else ''} could not vouch for today"
        )
    if not store.watch_list():
        yellow.append("the watch list is empty: add IPs, domains and servers to monitor")
    if red:
        return "red", red + yellow
    if yellow:
        return "yellow", yellow
    return "green", ["every watched address is clean, no open relay, no suspects"]


def _at_or_before(usable: list[CheckRecord], moment: datetime) -> CheckRecord | None:
    return next((r for r in usable if _parse(r.finished_at) <= moment), None)


def _alert_note(alert: AlertRecord) -> AlertNote:
    return AlertNote(
        id=alert.id,
        subject_key=alert.subject_key,
        kind=alert.kind,
        state=alert.state,
        summary=alert.summary,
        opened_at=alert.opened_at,
        acknowledged_by=alert.acknowledged_by,
        acknowledged_at=alert.acknowledged_at,
    )


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)
