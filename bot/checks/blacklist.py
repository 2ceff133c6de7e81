"""Maps `[blacklist]` configuration onto the DNSBL engine and wraps its report as a CheckOutcome.

The JSON document built here (`report_data`) is what `relaywatch blacklist --json` prints, what the
store keeps, and what the digest and alerts read; its keys are documented in the README.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from typing import Any

from bot.checks import CheckOutcome, ProgressCallback
from bot.config import Config
from handlers.blacklist import (
    AnswerCache,
    BlacklistReport,
    BlacklistSetupError,
    CatalogError,
    DnsblList,
    EngineSettings,
    TargetError,
    TargetResult,
    TargetSpec,
    load_catalog,
    parse_nameserver,
    parse_target,
    run_check,
    select_lists,
    system_nameservers,
)
from handlers.numbers import NumberError, is_ascii_digits, parse_port

log = logging.getLogger(__name__)

KIND = "blacklist"


def lists_for(config: Config) -> list[DnsblList]:
    """The catalog (or catalog_file) minus disabled_zones, plus extra_zones; CatalogError if bad."""
    section = config.blacklist
    try:
        catalog = load_catalog(section.catalog_file or None)
    except OSError as exc:
        raise CatalogError(
            f"blacklist.catalog_file: cannot read {section.catalog_file} ({exc.strerror})"
        ) from None
    return select_lists(catalog, section.disabled_zones, section.extra_zones)


def settings_for(config: Config, nameservers: Iterable[str] | None = None) -> EngineSettings:
    """Engine settings; `nameservers` (IP[:PORT] strings) overrides blacklist.nameservers."""
    section = config.blacklist
    chosen = list(nameservers or []) or list(section.nameservers)
    servers = [parse_nameserver(s) for s in chosen] if chosen else system_nameservers()
    return EngineSettings(
        nameservers=servers,
        timeout=section.timeout,
        retries=section.retries,
        concurrency=section.concurrency,
        dqs_key=config.secrets.spamhaus_dqs_key,
    )


def parse_targets(
    config: Config, targets: Iterable[str], mx_domains: Iterable[str] = ()
) -> list[TargetSpec]:
    """Validated targets; raises TargetError (one line) on the first bad one."""
    section = config.blacklist
    specs = [
        parse_target(_strip_port(t), section.max_ipv4_prefix, section.max_ipv6_prefix)
        for t in targets
    ]
    specs += [parse_target(d, mx=True) for d in mx_domains]
    if not specs:
        raise TargetError("give an IP address, a CIDR range, a host name or --mx DOMAIN")
    return specs


def subject_for(targets: Iterable[str], mx_domains: Iterable[str] = ()) -> str:
    names = [*targets, *(f"mx:{d}" for d in mx_domains)]
    return ", ".join(names) if names else "watch list"


async def run_blacklist(
    config: Config,
    targets: Iterable[str],
    mx_domains: Iterable[str] = (),
    nameservers: Iterable[str] | None = None,
    progress: ProgressCallback | None = None,
    cache: AnswerCache | None = None,
) -> CheckOutcome:
    """Checks `targets` (IPs, CIDRs, host names) and the MX hosts of `mx_domains` on the DNSBLs.

    Raises TargetError for input that is not a target and BlacklistSetupError for unusable
    settings (a bad nameserver, a bad extra_zones entry): usage errors. Every problem met while
    checking is a "failed" outcome, never an "ok" one.
    """
    targets = list(targets)
    mx_domains = list(mx_domains)
    subject = subject_for(targets, mx_domains)
    specs = parse_targets(config, targets, mx_domains)
    try:
        lists = lists_for(config)
    except CatalogError as exc:
        raise BlacklistSetupError(str(exc)) from None
    settings = settings_for(config, nameservers)
    try:
        report = await run_check(specs, lists, settings, progress=progress, cache=cache)
    except (BlacklistSetupError, OSError) as exc:
        return _failed(subject, f"could not run the DNS queries: {exc}")
    data = report_data(report, lists)
    return CheckOutcome(KIND, subject, report.status, data, report)  # type: ignore[arg-type]


def _failed(subject: str, reason: str) -> CheckOutcome:
    data = {
        "targets": [],
        "ranges": [],
        "unhealthy": [],
        "errors": [reason],
        "warnings": [],
        "status": "failed",
    }
    return CheckOutcome(KIND, subject, "failed", data, None)


def _strip_port(text: str) -> str:
    """A watch-list mail server 'mx.example.com:25' is checked as the host 'mx.example.com'."""
    raw = text.strip()
    if raw.startswith("[") and "]:" in raw:
        return raw[1:].partition("]")[0]
    host, sep, port = raw.rpartition(":")
    if sep and raw.count(":") == 1 and is_ascii_digits(port):
        with contextlib.suppress(NumberError):
            parse_port(port)
            return host
    return raw  # not host:port (an out-of-range port stays, and is refused as a name)


# -- the JSON document --------------------------------------------------------------------------


def report_data(report: BlacklistReport, lists: list[DnsblList]) -> dict[str, Any]:
    health = report.health
    unhealthy = [_health_item(h) for h in health.unhealthy]
    unhealthy_zones = {h.zone for h in health.unhealthy}
    healthy_zones = {
        kind: [lst.zone for lst in usable] for kind, usable in sorted(health.usable.items())
    }
    applicable_zones = {lst.zone for group in health.applicable.values() for lst in group}
    by_zone = {lst.zone: lst for lst in lists}
    targets = []
    for result in report.targets:
        entry = _target_entry(result)
        entry["unhealthy"] = [
            item
            for item in unhealthy
            if item["zone"] in unhealthy_zones
            and result.kind in by_zone.get(item["zone"], _NO_LIST).kinds
        ]
        targets.append(entry)
    failed_targets = [t for t in report.targets if t.failed]
    return {
        "targets": targets,
        "ranges": [
            {
                "range": r.range,
                "addresses_checked": r.checked,
                "addresses_listed": r.listed,
                "addresses_failed": r.failed,
            }
            for r in report.ranges
        ],
        "unhealthy": unhealthy,
        # most lists failed their self-test the same way: the likely cause, said once
        "diagnosis": health.diagnosis,
        "lists": {
            "asked": len(applicable_zones),
            "healthy": len(applicable_zones - unhealthy_zones),
            "unhealthy": len(applicable_zones & unhealthy_zones),
            "healthy_zones": healthy_zones,
        },
        "summary": {
            "checked": report.checked,
            "listed": len(report.listed_targets),
            "with_failures": len(failed_targets),
            "failure_reasons": _reason_counts(failed_targets),
        },
        "errors": list(report.errors),
        "warnings": list(report.warnings),
        "nameservers": [_server_text(h, p) for h, p in report.nameservers],
        "spamhaus_dqs": report.dqs,
        "queries_sent": report.stats.sent,
        "duration_seconds": round(report.duration, 3),
        "status": report.status,
    }


class _NoList:
    kinds: tuple[str, ...] = ()


_NO_LIST = _NoList()


def _target_entry(result: TargetResult) -> dict[str, Any]:
    listed = sorted(result.listed, key=lambda item: (_SEVERITY_ORDER[item.severity], item.zone))
    entry: dict[str, Any] = {
        "target": result.target,
        "kind": result.kind,
        "listed": [
            {
                "zone": item.zone,
                "name": item.name,
                "codes": list(item.codes),
                "meanings": list(item.meanings),
                "severity": item.severity,
                "txt": item.txt,
                "delist_url": item.delist_url,
                "lookup_url": item.lookup_url,
            }
            for item in listed
        ],
        "failed": [
            {"zone": f.zone, "reason": f.reason, "detail": f.detail}
            for f in sorted(result.failed, key=lambda f: f.zone)
        ],
        "notes": [{"zone": zone, "note": note} for zone, note in result.notes],
        "lists_answered": result.answered,
        "lists_healthy": result.healthy_total,
        "lists_total": result.lists_total,
    }
    if result.origin:
        entry["origin"] = result.origin
    if result.in_range:
        entry["in_range"] = True
    return entry


def _health_item(health: Any) -> dict[str, str]:
    return {"zone": health.zone, "reason": health.reason, "detail": health.detail}


def _reason_counts(results: list[TargetResult]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for result in results:
        for failure in result.failed:
            counts[failure.reason] = counts.get(failure.reason, 0) + 1
    return dict(sorted(counts.items()))


def _server_text(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port == 53 else f"{shown}:{port}"


_SEVERITY_ORDER = {"major": 0, "minor": 1, "policy": 2}
