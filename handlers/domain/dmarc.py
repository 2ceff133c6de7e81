"""DMARC: the record at _dmarc, its policy, and where its reports go (RFC 7489 §7.1).

Found and parsed by checkdmarc; each external report destination is verified with checkdmarc's
own `verify_dmarc_report_destination`, with a recording resolver so that a destination we could
not ask is an error, not "unauthorised". Runs synchronously inside `fresh_checkdmarc()`.
"""

from __future__ import annotations

from typing import Any

from handlers.domain.lookup import RecordingResolver
from handlers.domain.model import Finding

WHY_RECORD = (
    "Gmail and Yahoo (February 2024) and Microsoft's consumer mail (May 2025) require a DMARC "
    "record, at least p=none, from anyone sending to them in bulk; without it mail is rejected or "
    "junked, and anyone can spoof the domain."
)
WHY_POLICY = (
    "p=none only monitors: receivers deliver mail that fails DMARC as if there were no policy, so "
    "spoofed mail in your name still arrives. quarantine or reject makes receivers act on it."
)
WHY_REPORTS = (
    "Aggregate reports (rua) show who sends as your domain and whether it passes. RFC 7489 §7.1: "
    "receivers send reports to another organisation's address only if that domain publishes an "
    "authorisation record, otherwise the reports are silently dropped."
)


def check_dmarc(domain: str, servers: list[tuple[str, int]], timeout: float) -> list[Finding]:
    from checkdmarc.dmarc import (
        DMARCError,
        DMARCRecordNotFound,
        MultipleDMARCRecords,
        parse_dmarc_record,
        query_dmarc_record,
    )

    resolver = RecordingResolver(servers, timeout)
    suggested = f'_dmarc.{domain}. IN TXT "v=DMARC1; p=none; rua=mailto:dmarc-reports@{domain}"'
    try:
        found = query_dmarc_record(domain, resolver=resolver, timeout=timeout)
    except DMARCRecordNotFound as exc:
        if resolver.failures:
            return [_error("dmarc.record", domain, resolver)]
        return [
            Finding(
                "dmarc.record",
                domain,
                "fail",
                f"no DMARC record at _dmarc.{domain} ({exc})",
                WHY_RECORD,
                f"Publish {suggested}, then move to p=quarantine once the reports "
                "show your own mail passing.",
            )
        ]
    except MultipleDMARCRecords:
        return [
            Finding(
                "dmarc.record",
                domain,
                "fail",
                f"_dmarc.{domain} has more than one DMARC record; receivers ignore them all",
                WHY_RECORD,
                f"Keep exactly one: {suggested}",
            )
        ]
    except DMARCError as exc:
        if resolver.failures:
            return [_error("dmarc.record", domain, resolver)]
        return [
            Finding(
                "dmarc.record",
                domain,
                "fail",
                f"the DMARC record is unusable: {exc}",
                WHY_RECORD,
                f"Publish {suggested}",
            )
        ]
    record, location = found["record"], found["location"]
    try:
        parsed = parse_dmarc_record(record, location, resolver=resolver, timeout=timeout)
    except DMARCError as exc:
        if resolver.failures:
            return [_error("dmarc.record", domain, resolver)]
        return [
            Finding(
                "dmarc.record",
                domain,
                "fail",
                f"the DMARC record is invalid: {exc}",
                WHY_RECORD,
                f"Publish {suggested}",
                {"record": record, "location": location},
            )
        ]
    tags = {name: value.get("value") for name, value in parsed["tags"].items()}
    where = f"_dmarc.{location}"
    inherited = f" (inherited from {where})" if location != domain else ""
    findings = [
        Finding(
            "dmarc.record",
            domain,
            "pass",
            f"DMARC record at {where}: {record}",
            WHY_RECORD,
            detail={
                "record": record,
                "location": location,
                "warnings": list(parsed.get("warnings") or []),
            },
        )
    ]
    findings.append(_policy(domain, tags, inherited, record, where))
    findings.append(_reports(domain, location, tags, record, where, servers, timeout))
    return findings


def _error(check_id: str, subject: str, resolver: RecordingResolver) -> Finding:
    return Finding(
        check_id,
        subject,
        "error",
        f"could not check: a DNS lookup failed ({resolver.failure_text()})",
        "A lookup that failed says nothing about the record; run the check again.",
    )


def _policy(domain: str, tags: dict[str, Any], inherited: str, record: str, where: str) -> Finding:
    p, sp = str(tags.get("p", "none")), str(tags.get("sp", tags.get("p", "none")))
    pct = int(tags.get("pct", 100) or 100)
    adkim, aspf = str(tags.get("adkim", "r")), str(tags.get("aspf", "r"))
    detail = {"p": p, "sp": sp, "pct": pct, "adkim": adkim, "aspf": aspf}
    modes = f"p={p}, sp={sp}, pct={pct}, adkim={adkim}, aspf={aspf}{inherited}"
    if p == "none":
        stronger = _set_tag(record, "p", "quarantine")
        return Finding(
            "dmarc.policy",
            domain,
            "warn",
            f"p=none: monitoring only, failing mail is still delivered ({modes})",
            WHY_POLICY,
            f'{where}. IN TXT "{stronger}" (once the reports show your own mail aligned)',
            detail,
        )
    notes = []
    if pct < 100:
        notes.append(f"pct={pct}: the policy applies to {pct}% of failing mail only")
    if sp == "none":
        notes.append("sp=none: subdomains can be spoofed freely")
    if notes:
        fixed = _set_tag(_set_tag(record, "pct", "100"), "sp", p) if sp == "none" else record
        if pct < 100:
            fixed = _set_tag(fixed, "pct", "100")
        return Finding(
            "dmarc.policy",
            domain,
            "warn",
            "; ".join(notes) + f" ({modes})",
            WHY_POLICY,
            f'{where}. IN TXT "{fixed}"',
            detail,
        )
    return Finding("dmarc.policy", domain, "pass", f"enforced: {modes}", WHY_POLICY, detail=detail)


def _set_tag(record: str, name: str, value: str) -> str:
    parts = [p.strip() for p in record.split(";") if p.strip()]
    for index, part in enumerate(parts):
        if part.split("=", 1)[0].strip().lower() == name:
            parts[index] = f"{name}={value}"
            break
    else:
        parts.append(f"{name}={value}")
    return "; ".join(parts)


def _addresses(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [
        str(uri.get("address"))
        for uri in value
        if isinstance(uri, dict) and uri.get("scheme") == "mailto" and uri.get("address")
    ]


def _reports(
    domain: str,
    location: str,
    tags: dict[str, Any],
    record: str,
    where: str,
    servers: list[tuple[str, int]],
    timeout: float,
) -> Finding:
    from checkdmarc.dmarc import UnverifiedDMARCURIDestination, verify_dmarc_report_destination
    from checkdmarc.utils import get_base_domain

    rua, ruf = _addresses(tags.get("rua")), _addresses(tags.get("ruf"))
    destinations: list[dict[str, Any]] = []
    unauthorised: list[str] = []
    failed: list[str] = []
    for tag, addresses in (("rua", rua), ("ruf", ruf)):
        for address in addresses:
            target = address.rsplit("@", 1)[-1].lower()
            external = get_base_domain(target) != get_base_domain(location)
            entry = {"tag": tag, "address": address, "external": external, "authorised": True}
            if external:
                resolver = RecordingResolver(servers, timeout)
                try:
                    verify_dmarc_report_destination(
                        location, target, resolver=resolver, timeout=timeout
                    )
                except UnverifiedDMARCURIDestination:
                    if resolver.failures:
                        entry["authorised"] = None
                        failed.append(f"{address} ({resolver.failure_text()})")
                    else:
                        entry["authorised"] = False
                        unauthorised.append(target)
            destinations.append(entry)
    detail = {"rua": rua, "ruf": ruf, "destinations": destinations}
    if unauthorised:
        records = "; ".join(
            f'{location}._report._dmarc.{t}. IN TXT "v=DMARC1"' for t in dict.fromkeys(unauthorised)
        )
        return Finding(
            "dmarc.reports",
            domain,
            "fail",
            "reports go to " + ", ".join(dict.fromkeys(unauthorised)) + ", which does not "
            f"authorise reports about {location}: receivers drop them",
            WHY_REPORTS,
            f"The report receiver publishes {records}",
            detail,
        )
    if failed:
        return Finding(
            "dmarc.reports",
            domain,
            "error",
            "could not check whether report destinations accept reports: " + ", ".join(failed),
            "A lookup that failed says nothing about the record; run the check again.",
            detail=detail,
        )
    if not rua:
        return Finding(
            "dmarc.reports",
            domain,
            "warn",
            "no rua: you receive no aggregate reports, so you cannot see who fails DMARC",
            WHY_REPORTS,
            f'{where}. IN TXT "{_set_tag(record, "rua", f"mailto:dmarc-reports@{location}")}"',
            detail,
        )
    summary = "aggregate reports to " + ", ".join(rua)
    if ruf:
        summary += "; failure reports to " + ", ".join(ruf)
    if any(d["external"] for d in destinations):
        summary += " (external destinations authorised)"
    return Finding("dmarc.reports", domain, "pass", summary, WHY_REPORTS, detail=detail)
