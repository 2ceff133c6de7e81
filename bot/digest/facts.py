"""Reading stored check documents (the engines' documented `--json`) into comparable facts.

The store keeps each check's JSON document; the digest and the change alerts both need the same
questions answered about it (which lists, which verdict, which suspects), so they are answered here,
against the documented keys only, tolerating documents from failed runs that lack them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.store import CheckRecord

# Worst first: the verdict that speaks for a server with several addresses / ports.
RELAY_VERDICT_ORDER = ("open", "suspect", "inconclusive", "unreachable", "closed")
RELAY_ALERT_VERDICTS = ("open", "suspect")


@dataclass(frozen=True)
class ListingFact:
    target: str  # the address or name that is listed (a CIDR or hostname check lists addresses)
    zone: str
    codes: tuple[str, ...] = ()
    meanings: tuple[str, ...] = ()
    txt: str = ""
    delist_url: str = ""
    severity: str = ""  # "major" | "minor" | "policy" when the engine reports it

    @property
    def key(self) -> tuple[str, str]:
        return (self.target, self.zone)


@dataclass(frozen=True)
class BlacklistFacts:
    listings: tuple[ListingFact, ...]
    lists_answered: int
    lists_total: int
    failed_lists: int
    unhealthy_lists: int
    # (target, zone) pairs this run could not ask (timeout, SERVFAIL, blocked, unhealthy list):
    # neither listed nor clean there — a listing seen before is not "removed" on their account
    unknown: frozenset[tuple[str, str]] = frozenset()
    unknown_zones: tuple[tuple[str, str], ...] = ()  # (zone, reason), for the digest's note
    has_answers: bool = False  # at least one list answered: the run tells us something

    @property
    def keys(self) -> frozenset[tuple[str, str]]:
        return frozenset(listing.key for listing in self.listings)

    def removed_since(self, before: frozenset[tuple[str, str]]) -> frozenset[tuple[str, str]]:
        """Listings in `before` that this run saw answered as not listed."""
        return frozenset(k for k in before - self.keys if not self.is_unknown(k))

    def is_unknown(self, key: tuple[str, str]) -> bool:
        return key in self.unknown or ("*", key[1]) in self.unknown


@dataclass(frozen=True)
class RelayFacts:
    verdict: str  # the worst verdict over the record's targets; "" when none was reported
    per_target: tuple[tuple[str, str], ...]  # (target, verdict)
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class SuspectFact:
    kind: str
    subject: str
    score: float
    reasons: tuple[str, ...]
    evidence: tuple[str, ...]
    kinds: tuple[str, ...] = ()  # every finding, strongest first (kind is the first)
    action: str = ""  # the engine's suggested next step
    subject_type: str = ""  # account | client | local_sender (what the subject names)

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.subject}"

    @property
    def is_attack(self) -> bool:
        """Only attacks *on* us (probing, password guessing), nothing that says compromise."""
        return all(k in ATTACK_SUSPECT_KINDS for k in (self.kinds or (self.kind,)))


def _targets(data: dict[str, Any]) -> list[dict[str, Any]]:
    targets = data.get("targets")
    return [t for t in targets if isinstance(t, dict)] if isinstance(targets, list) else []


def blacklist_facts(record: CheckRecord) -> BlacklistFacts:
    """Facts of one blacklist check document — also of a "failed" (incomplete) one, whose lists
    that did answer still count: the engine calls a run failed when any list could not be asked."""
    listings: list[ListingFact] = []
    unknown: set[tuple[str, str]] = set()
    unknown_zones: dict[str, str] = {}
    unhealthy_zones: set[str] = set()
    answered = total = failed = 0
    has_answers = False
    for entry in _targets(record.result):
        target = str(entry.get("target", record.subject))
        for listed in entry.get("listed") or []:
            if not isinstance(listed, dict):
                continue
            has_answers = True
            listings.append(
                ListingFact(
                    target=target,
                    zone=str(listed.get("zone", "?")),
                    codes=tuple(str(c) for c in listed.get("codes") or []),
                    meanings=tuple(str(m) for m in listed.get("meanings") or []),
                    txt=str(listed.get("txt") or ""),
                    delist_url=str(listed.get("delist_url") or ""),
                    severity=str(listed.get("severity") or ""),
                )
            )
        for key in ("failed", "unhealthy"):
            for item in entry.get(key) or []:
                if isinstance(item, dict) and item.get("zone"):
                    zone = str(item["zone"])
                    unknown.add((target, zone))
                    unknown_zones.setdefault(zone, str(item.get("reason") or key))
        entry_answered = _int(entry.get("lists_answered"))
        has_answers = has_answers or entry_answered > 0
        answered += entry_answered
        total += _int(entry.get("lists_total"))
        failed += len(entry.get("failed") or [])
        unhealthy_zones.update(
            str(i["zone"]) for i in entry.get("unhealthy") or [] if isinstance(i, dict)
        )
    # lists found unhealthy in the run's self-test apply to every target
    for item in record.result.get("unhealthy") or []:
        if isinstance(item, dict) and item.get("zone"):
            zone = str(item["zone"])
            unknown.add(("*", zone))
            unknown_zones.setdefault(zone, str(item.get("reason") or "unhealthy"))
            unhealthy_zones.add(zone)
    unhealthy = len(unhealthy_zones)
    listings.sort(key=lambda item: (_severity_rank(item.severity), item.target, item.zone))
    return BlacklistFacts(
        tuple(listings),
        answered,
        total,
        failed,
        unhealthy,
        frozenset(unknown),
        tuple(sorted(unknown_zones.items())),
        has_answers,
    )


def blacklist_usable(record: CheckRecord) -> bool:
    """A record that says something about listings: complete, or incomplete with answers."""
    facts = blacklist_facts(record)
    if facts.has_answers:
        return True
    if facts.lists_total:  # lists were due and none answered, whatever the status says
        return False
    return record.status != "failed"  # e.g. a range whose clean addresses are not itemised


def relay_facts(record: CheckRecord) -> RelayFacts:
    per_target: list[tuple[str, str]] = []
    warnings: list[str] = []
    for entry in _targets(record.result):
        target = str(entry.get("target", record.subject))
        per_target.append((target, str(entry.get("verdict") or "")))
        for warning in entry.get("warnings") or []:
            text = warning if isinstance(warning, str) else _warning_text(warning)
            if text and text not in warnings:
                warnings.append(text)
        diagnostics = entry.get("diagnostics")
        if isinstance(diagnostics, dict):
            for warning in diagnostics.get("warnings") or []:
                text = warning if isinstance(warning, str) else _warning_text(warning)
                if text and text not in warnings:
                    warnings.append(text)
    return RelayFacts(worst_verdict(v for _, v in per_target), tuple(per_target), tuple(warnings))


def worst_verdict(verdicts: Any) -> str:
    known = [v for v in verdicts if v in RELAY_VERDICT_ORDER]
    if not known:
        return ""
    return min(known, key=RELAY_VERDICT_ORDER.index)


def suspect_facts(record: CheckRecord) -> list[SuspectFact]:
    suspects = record.result.get("suspects")
    found: list[SuspectFact] = []
    for item in suspects if isinstance(suspects, list) else []:
        if not isinstance(item, dict):
            continue
        score = item.get("score", 0)
        found.append(
            SuspectFact(
                kind=str(item.get("kind", "?")),
                subject=str(item.get("subject", "?")),
                score=float(score) if isinstance(score, int | float) else 0.0,
                reasons=tuple(str(r) for r in item.get("reasons") or []),
                evidence=tuple(str(e) for e in item.get("evidence") or []),
                kinds=tuple(str(k) for k in item.get("kinds") or []),
                action=str(item.get("action") or ""),
                subject_type=str(item.get("subject_type") or ""),
            )
        )
    found.sort(key=lambda s: (-s.score, s.kind, s.subject))
    return found


def mail_totals(record: CheckRecord) -> dict[str, int]:
    totals = record.result.get("totals")
    if not isinstance(totals, dict):
        return {}
    return {str(k): int(v) for k, v in totals.items() if isinstance(v, int | float)}


def failure_reason(record: CheckRecord) -> str:
    """One line saying why a failed check failed, from whatever the document carries."""
    data = record.result
    for key in ("error", "could_not_check", "reason", "message"):
        value = data.get(key)
        if isinstance(value, str) and value:
            return value
    reasons: list[str] = []
    for entry in _targets(data):
        name = entry.get("target", record.subject)
        error = entry.get("error") or entry.get("reason")
        verdict = entry.get("verdict")
        if verdict in ("inconclusive", "unreachable"):
            why = error or entry.get("explanation") or ""
            reasons.append(f"{name}: {verdict}" + (f" ({why})" if why else ""))
        elif isinstance(error, str) and error:
            reasons.append(f"{name}: {error}")
        if entry.get("lists_total") and not entry.get("lists_answered"):
            reasons.append(f"{name}: none of {entry.get('lists_total')} lists answered")
    errors = data.get("errors")
    if isinstance(errors, list):
        reasons.extend(str(e) for e in errors[:3])
    return "; ".join(reasons[:3]) or "the check did not complete"


def _warning_text(warning: Any) -> str:
    if isinstance(warning, dict):
        for key in ("message", "text", "warning", "reason"):
            if isinstance(warning.get(key), str):
                return warning[key]
    return str(warning) if warning else ""


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _severity_rank(severity: str) -> int:
    return {"major": 0, "minor": 1, "policy": 2}.get(severity, 1)


# Suspect kinds that describe attacks *on* us (relay probing, password guessing) rather than a
# compromised host or account of ours: shown in the digest, but they do not turn it red or alert —
# every public mail server sees them every day.
ATTACK_SUSPECT_KINDS = frozenset({"relay_probe", "sasl_bruteforce", "sasl_bruteforce_account"})


# -- sending-domain checks ----------------------------------------------------------------------


@dataclass(frozen=True)
class DomainFinding:
    id: str
    subject: str
    status: str  # pass | warn | fail | error
    summary: str
    fix: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.id, self.subject)


@dataclass(frozen=True)
class DomainFacts:
    status: str  # the domain's status; "" when the document has no result for it
    findings: tuple[DomainFinding, ...] = ()

    @property
    def fails(self) -> dict[tuple[str, str], DomainFinding]:
        return {f.key: f for f in self.findings if f.status == "fail"}

    @property
    def unknown(self) -> frozenset[tuple[str, str]]:
        """Checks this run could not make: neither failing nor fixed on their account."""
        return frozenset(f.key for f in self.findings if f.status == "error")

    def count(self, status: str) -> int:
        return sum(1 for f in self.findings if f.status == status)


def domain_facts(record: CheckRecord) -> DomainFacts:
    """The findings for `record.subject` in a stored domain-check document."""
    for entry in record.result.get("domains") or []:
        if not isinstance(entry, dict) or entry.get("domain") != record.subject:
            continue
        findings = tuple(
            DomainFinding(
                str(c.get("id", "")),
                str(c.get("subject", "")),
                str(c.get("status", "")),
                str(c.get("summary", "")),
                str(c.get("fix", "") or ""),
            )
            for c in entry.get("checks") or []
            if isinstance(c, dict)
        )
        return DomainFacts(str(entry.get("status", "")), findings)
    return DomainFacts("")
