"""The domain check: MX first (their addresses join the sending IPs), then the checkdmarc checks
in one worker thread beside our own lookups (PTR, DKIM, HELO), then the MTA-STS policy fetch."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from handlers.domain.dkim import check_dkim
from handlers.domain.dmarc import check_dmarc
from handlers.domain.identity import check_helo, check_mx, check_ptr
from handlers.domain.library import fresh_checkdmarc
from handlers.domain.lookup import AsyncDns
from handlers.domain.model import (
    DomainInputs,
    DomainReport,
    DomainSettings,
    Finding,
    SendingIp,
)
from handlers.domain.spf import check_spf
from handlers.domain.transport import LibraryTransport, check_mta_sts, check_transport_records

Progress = Callable[[str], None]

# the order findings are shown in
SECTION_ORDER = ("spf", "dmarc", "dkim", "ptr", "helo", "mx", "mta_sts", "tls_rpt")


async def run_domain_check(
    inputs: DomainInputs, settings: DomainSettings, progress: Progress | None = None
) -> DomainReport:
    """Every check for one domain; a lookup that failed makes its finding an error, never a pass."""
    started = time.monotonic()
    say = progress or (lambda _text: None)
    domain = inputs.domain
    dns = AsyncDns(settings.nameservers, settings.timeout)
    report = DomainReport(domain)

    say(f"{domain}: MX hosts…")
    mx = await check_mx(domain, dns)
    report.mx_hosts = list(mx.hosts)
    ips = _sending_ips(inputs, mx.addresses)
    report.sending_ips = ips

    selectors = list(inputs.selectors) or list(settings.common_selectors)
    report.selectors_tried = selectors
    report.selectors_guessed = not inputs.selectors

    say(f"{domain}: SPF, DMARC, MTA-STS and TLS-RPT records, DKIM keys, reverse DNS…")
    library = asyncio.to_thread(_library_checks, domain, ips, settings)
    dkim = check_dkim(domain, selectors, not inputs.selectors, dns)
    ptrs = asyncio.gather(*(check_ptr(ip.address, ip.origin, dns) for ip in ips))
    helos = asyncio.gather(*(check_helo(name, dns) for name in inputs.helo_names))
    (spf_dmarc, transport), dkim_findings, ptr_findings, helo_findings = await asyncio.gather(
        library, dkim, ptrs, helos
    )
    say(f"{domain}: MTA-STS policy…")
    sts = await check_mta_sts(domain, transport.sts, mx.hosts, settings, dns)

    findings = [
        *spf_dmarc,
        *dkim_findings,
        *ptr_findings,
        *helo_findings,
        mx.finding,
        sts,
        transport.tls_rpt,
    ]
    report.findings = sorted(findings, key=_order)
    report.duration = time.monotonic() - started
    return report


def _library_checks(
    domain: str, ips: list[SendingIp], settings: DomainSettings
) -> tuple[list[Finding], LibraryTransport]:
    servers, timeout = settings.nameservers, settings.timeout
    with fresh_checkdmarc():
        findings = check_spf(domain, ips, servers, timeout)
        findings += check_dmarc(domain, servers, timeout)
        transport = check_transport_records(domain, servers, timeout)
    return findings, transport


def _sending_ips(inputs: DomainInputs, mx_addresses: dict[str, list[str]]) -> list[SendingIp]:
    seen: dict[str, SendingIp] = {}
    for ip in inputs.ips:
        seen.setdefault(ip.address, ip)
    for host, addresses in mx_addresses.items():
        for address in addresses:
            seen.setdefault(address, SendingIp(address, f"mx {host}"))
    return list(seen.values())


def _order(finding: Finding) -> int:
    section = finding.id.split(".", 1)[0]
    return SECTION_ORDER.index(section) if section in SECTION_ORDER else len(SECTION_ORDER)
