"""Maps `[domain]` configuration and the watch list onto the domain-check engine.

The JSON document built here is what `relaywatch domaincheck --json` prints, what the store keeps
(check kind "domain", one record per domain for monitor runs) and what alerts and the digest read;
its keys are documented in docs/domaincheck.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from bot.checks import CheckOutcome, CheckStatus, ProgressCallback
from bot.config import Config
from bot.store import Store
from handlers.domain import (
    DomainInputs,
    DomainReport,
    DomainSettings,
    SendingIp,
    normalize_domain,
    normalize_ip,
    normalize_selector,
    parse_nameserver,
    worst,
)

KIND = "domain"


def settings_for(config: Config, nameservers: Iterable[str] | None = None) -> DomainSettings:
    """Engine settings; `nameservers` (IP[:PORT]) overrides domain.nameservers (ValueError: bad)."""
    section = config.domain
    chosen = list(nameservers or []) or list(section.nameservers)
    return DomainSettings(
        nameservers=[parse_nameserver(s) for s in chosen],
        timeout=section.timeout,
        mta_sts_timeout=section.mta_sts_timeout,
        mta_sts_max_bytes=section.mta_sts_max_bytes,
    )


def watched_domains(store: Store) -> list[str]:
    return [item.value for item in store.watch_list("domain")]


def sending_ips(config: Config, store: Store | None, given: Iterable[str]) -> list[SendingIp]:
    """Given IPs, then [domain] sending_ips, then the watch list's single IPs (not ranges)."""
    found: dict[str, SendingIp] = {}
    for text in given:
        address = normalize_ip(text)
        found.setdefault(address, SendingIp(address, "given"))
    for text in config.domain.sending_ips:
        address = normalize_ip(text)
        found.setdefault(address, SendingIp(address, "config"))
    if store is not None:
        for item in store.watch_list("ip"):
            found.setdefault(item.value, SendingIp(item.value, "watch list"))
    return list(found.values())


def helo_names(config: Config, store: Store | None, given: Iterable[str]) -> list[str]:
    """Given names, [domain] helo_names, and the EHLO names the relay check saw on watched hosts."""
    names = [normalize_domain(n) for n in given] + [
        normalize_domain(n) for n in config.domain.helo_names
    ]
    if store is not None:
        for item in store.watch_list("server"):
            record = store.latest_check("relay", item.value)
            for target in (record.result.get("targets") or []) if record else []:
                name = ((target or {}).get("diagnostics") or {}).get("ehlo_name")
                if isinstance(name, str):
                    try:
                        names.append(normalize_domain(name))
                    except ValueError:
                        continue  # a server that greets with a bare word or an address literal
    return list(dict.fromkeys(names))


def parse_inputs(
    config: Config,
    domains: Iterable[str],
    ips: Iterable[str] = (),
    selectors: Iterable[str] = (),
    helo: Iterable[str] = (),
    store: Store | None = None,
) -> list[DomainInputs]:
    """Validated inputs, one per domain; raises DomainInputError (one line) on bad input."""
    names = list(dict.fromkeys(normalize_domain(d) for d in domains))
    chosen = [normalize_selector(s) for s in selectors] or [
        normalize_selector(s) for s in config.domain.selectors
    ]
    senders = tuple(sending_ips(config, store, ips))
    greetings = tuple(helo_names(config, store, helo))
    return [DomainInputs(name, senders, tuple(chosen), greetings) for name in names]


async def run_domaincheck(
    config: Config,
    domains: Iterable[str],
    ips: Iterable[str] = (),
    selectors: Iterable[str] = (),
    helo: Iterable[str] = (),
    nameservers: Iterable[str] | None = None,
    progress: ProgressCallback | None = None,
    store: Store | None = None,
    settings: DomainSettings | None = None,
) -> CheckOutcome:
    """Checks each domain. Raises DomainInputError / ValueError for bad input or settings."""
    import dns.exception

    from handlers.domain.engine import run_domain_check

    inputs = parse_inputs(config, domains, ips, selectors, helo, store)
    chosen = settings or settings_for(config, nameservers)
    try:
        reports = await asyncio.gather(*(run_domain_check(i, chosen, progress) for i in inputs))
    except (dns.exception.DNSException, OSError) as exc:
        # e.g. no nameserver configured and no /etc/resolv.conf: could not check, not "clean"
        subject = ", ".join(i.domain for i in inputs)
        data = {"domains": [], "status": "error", "error": f"could not run the DNS queries: {exc}"}
        return CheckOutcome(KIND, subject, "failed", data, None)
    return outcome_for(list(reports))


def outcome_for(reports: list[DomainReport]) -> CheckOutcome:
    data = report_data(reports)
    subject = ", ".join(r.domain for r in reports)
    return CheckOutcome(KIND, subject, status_of(data["status"]), data, reports)


def report_data(reports: list[DomainReport]) -> dict[str, Any]:
    return {
        "domains": [r.to_dict() for r in reports],
        "status": worst(r.status for r in reports),
    }


def status_of(domain_status: str) -> CheckStatus:
    """fail → problem (exit 1); error without a fail → failed (exit 3); warn and pass → ok."""
    return {"fail": "problem", "error": "failed"}.get(domain_status, "ok")  # type: ignore[return-value]
