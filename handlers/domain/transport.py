"""Transport: MTA-STS (the _mta-sts TXT record, the policy over HTTPS, its mode and MX patterns
against the real MX hosts) and TLS-RPT (_smtp._tls).

The two TXT records are found and parsed by checkdmarc, and the policy text is parsed by
checkdmarc's `parse_mta_sts_policy`. The policy is *fetched* here instead of by checkdmarc's
`download_mta_sts_policy`, which uses `requests` with the system resolver and CA store and reads
the whole body: this fetch resolves mta-sts.DOMAIN through the configured nameservers (or an
address map), accepts a CA for tests, has one deadline for the whole exchange and stops reading
past a size cap.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field
from typing import Any, Literal

from handlers.domain.lookup import AsyncDns, RecordingResolver
from handlers.domain.model import DomainSettings, Finding

WHY_MTA_STS = (
    "MTA-STS (RFC 8461) makes senders such as Gmail, Yahoo and Microsoft insist on verified TLS "
    "when delivering to you; in enforce mode, an MX host the policy does not list gets no mail "
    "from them at all."
)
WHY_TLS_RPT = (
    "TLS-RPT (RFC 8460) makes Gmail, Microsoft and others send daily reports of TLS failures "
    "delivering to you — the only way to learn that MTA-STS or STARTTLS is blocking mail."
)
UNCHECKED = "A lookup that failed says nothing; run the check again."


@dataclass
class StsRecord:
    state: Literal["ok", "missing", "invalid", "error"]
    record: str = ""
    policy_id: str = ""
    reason: str = ""


@dataclass
class LibraryTransport:
    sts: StsRecord
    tls_rpt: Finding


def check_transport_records(
    domain: str, servers: list[tuple[str, int]], timeout: float
) -> LibraryTransport:
    """The two TXT records (synchronous, inside fresh_checkdmarc)."""
    return LibraryTransport(
        _sts_record(domain, servers, timeout), _tls_rpt(domain, servers, timeout)
    )


def _sts_record(domain: str, servers: list[tuple[str, int]], timeout: float) -> StsRecord:
    from checkdmarc.mta_sts import (
        MTASTSError,
        MTASTSRecordNotFound,
        parse_mta_sts_record,
        query_mta_sts_record,
    )

    resolver = RecordingResolver(servers, timeout)
    try:
        record = query_mta_sts_record(domain, resolver=resolver, timeout=timeout)["record"]
    except MTASTSRecordNotFound as exc:
        if resolver.failures:
            return StsRecord("error", reason=resolver.failure_text())
        return StsRecord("missing", reason=str(exc))
    except MTASTSError as exc:
        if resolver.failures:
            return StsRecord("error", reason=resolver.failure_text())
        return StsRecord("invalid", reason=str(exc))
    try:
        tags = parse_mta_sts_record(record)["tags"]
    except MTASTSError as exc:
        return StsRecord("invalid", record, reason=str(exc))
    policy_id = tags.get("id", "")
    return StsRecord(
        "ok", record, str(policy_id.get("value") if isinstance(policy_id, dict) else policy_id)
    )


def _tls_rpt(domain: str, servers: list[tuple[str, int]], timeout: float) -> Finding:
    from checkdmarc.smtp_tls_reporting import (
        SMTPTLSReportingError,
        SMTPTLSReportingRecordNotFound,
        parse_smtp_tls_reporting_record,
        query_smtp_tls_reporting_record,
    )

    name = f"_smtp._tls.{domain}"
    fix = f'{name}. IN TXT "v=TLSRPTv1; rua=mailto:tls-reports@{domain}"'
    resolver = RecordingResolver(servers, timeout)
    try:
        record = query_smtp_tls_reporting_record(domain, resolver=resolver, timeout=timeout)[
            "record"
        ]
    except SMTPTLSReportingRecordNotFound:
        if resolver.failures:
            return _error("tls_rpt.record", domain, resolver.failure_text())
        return Finding(
            "tls_rpt.record", domain, "warn", f"no TLS-RPT record at {name}", WHY_TLS_RPT, fix
        )
    except SMTPTLSReportingError as exc:
        if resolver.failures:
            return _error("tls_rpt.record", domain, resolver.failure_text())
        return Finding(
            "tls_rpt.record",
            domain,
            "fail",
            f"the TLS-RPT record is unusable: {exc}",
            WHY_TLS_RPT,
            fix,
        )
    try:
        tags = parse_smtp_tls_reporting_record(record)["tags"]
    except SMTPTLSReportingError as exc:
        return Finding(
            "tls_rpt.record",
            domain,
            "fail",
            f"the TLS-RPT record is invalid: {exc}",
            WHY_TLS_RPT,
            fix,
            {"record": record},
        )
    rua = tags.get("rua", {}).get("value", [])
    shown = ", ".join(rua) if isinstance(rua, list) else str(rua)
    return Finding(
        "tls_rpt.record",
        domain,
        "pass",
        f"TLS reports go to {shown}",
        WHY_TLS_RPT,
        detail={"record": record},
    )


def _error(check_id: str, subject: str, reason: str) -> Finding:
    return Finding(check_id, subject, "error", f"could not check: {reason}", UNCHECKED)


# -- the policy over HTTPS -----------------------------------------------------------------------


@dataclass
class PolicyFetch:
    state: Literal["ok", "fail", "error"]
    text: str = ""
    reason: str = ""
    warnings: list[str] = field(default_factory=list)


class _PinnedResolver:
    """aiohttp's resolver interface over our DNS (or a fixed map): never the system resolver."""

    def __init__(self, dns: AsyncDns, address_map: dict[str, str]) -> None:
        self.dns = dns
        self.address_map = {k.lower().rstrip("."): v for k, v in address_map.items()}

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[dict[str, Any]]:
        mapped = self.address_map.get(host.lower().rstrip("."))
        addresses = [mapped] if mapped else (await self.dns.addresses(host))[0]
        if not addresses:
            raise OSError(f"{host} has no A/AAAA record")
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in addresses
        ]

    async def close(self) -> None:
        return None


async def fetch_policy(domain: str, settings: DomainSettings, dns: AsyncDns) -> PolicyFetch:
    import aiohttp

    host = f"mta-sts.{domain}"
    port = "" if settings.mta_sts_port == 443 else f":{settings.mta_sts_port}"
    url = f"https://{host}{port}/.well-known/mta-sts.txt"
    context = settings.ssl_context or ssl.create_default_context()
    connector = aiohttp.TCPConnector(
        resolver=_PinnedResolver(dns, settings.address_map),  # type: ignore[arg-type]
        ssl=context,
        use_dns_cache=False,
    )
    timeout = aiohttp.ClientTimeout(total=settings.mta_sts_timeout)
    cap = settings.mta_sts_max_bytes
    try:
        async with (
            aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
            session.get(url, allow_redirects=False) as response,
        ):
            if response.status != 200:
                # RFC 8461 §3.3: exactly 200, redirects are not followed
                return PolicyFetch("fail", reason=f"{url} answered HTTP {response.status}")
            body = await response.content.read(cap + 1)
            if len(body) > cap:
                return PolicyFetch("fail", reason=f"the policy is larger than {cap} bytes")
            warnings = []
            content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
            if content_type != "text/plain":
                warnings.append(f"Content-Type is {content_type or 'missing'}, not text/plain")
            return PolicyFetch("ok", body.decode("utf-8", "replace"), warnings=warnings)
    except aiohttp.ClientConnectorCertificateError as exc:
        return PolicyFetch(
            "fail", reason=f"the certificate of {host} is not valid: {exc.certificate_error}"
        )
    except aiohttp.ClientSSLError as exc:
        return PolicyFetch("fail", reason=f"TLS with {host} failed: {exc}")
    except TimeoutError:
        return PolicyFetch(
            "error", reason=f"no policy from {url} within {settings.mta_sts_timeout:g} s"
        )
    except (aiohttp.ClientError, OSError) as exc:
        return PolicyFetch("error", reason=f"could not fetch {url}: {exc}")


async def check_mta_sts(
    domain: str,
    record: StsRecord,
    mx_hosts: list[str],
    settings: DomainSettings,
    dns: AsyncDns,
) -> Finding:
    from checkdmarc.mta_sts import MTASTSError, mx_in_mta_sts_patterns, parse_mta_sts_policy

    name = f"_mta-sts.{domain}"
    policy_fix = (
        f'{name}. IN TXT "v=STSv1; id=<a new id, e.g. today\'s date>" and serve '
        f"https://mta-sts.{domain}/.well-known/mta-sts.txt with a valid certificate:\n"
        "version: STSv1\nmode: enforce\n"
        + "".join(f"mx: {h}\n" for h in mx_hosts or [f"mail.{domain}"])
        + "max_age: 604800"
    )
    if record.state == "error":
        return _error("mta_sts.policy", domain, record.reason)
    if record.state == "missing":
        return Finding(
            "mta_sts.policy",
            domain,
            "warn",
            f"no MTA-STS record at {name}: senders may deliver to you without verified TLS",
            WHY_MTA_STS,
            policy_fix,
        )
    if record.state == "invalid":
        return Finding(
            "mta_sts.policy",
            domain,
            "fail",
            f"the MTA-STS record is invalid: {record.reason}",
            WHY_MTA_STS,
            policy_fix,
            {"record": record.record},
        )
    fetched = await fetch_policy(domain, settings, dns)
    detail: dict[str, Any] = {"record": record.record, "id": record.policy_id}
    if fetched.state == "error":
        return Finding(
            "mta_sts.policy",
            domain,
            "error",
            f"could not check: {fetched.reason}",
            UNCHECKED,
            detail=detail,
        )
    if fetched.state == "fail":
        return Finding(
            "mta_sts.policy",
            domain,
            "fail",
            f"{name} announces a policy, but {fetched.reason}",
            WHY_MTA_STS,
            policy_fix,
            detail,
        )
    try:
        policy = parse_mta_sts_policy(fetched.text)["policy"]
    except MTASTSError as exc:
        return Finding(
            "mta_sts.policy",
            domain,
            "fail",
            f"the MTA-STS policy is invalid: {exc}",
            WHY_MTA_STS,
            policy_fix,
            {**detail, "policy": fetched.text[:2000]},
        )
    mode, patterns = policy["mode"], list(policy.get("mx") or [])
    uncovered = [h for h in mx_hosts if not mx_in_mta_sts_patterns(h, patterns)]
    detail.update(
        {
            "mode": mode,
            "mx_patterns": patterns,
            "uncovered_mx": uncovered,
            "max_age": policy.get("max_age"),
            "warnings": fetched.warnings,
        }
    )
    if uncovered and mode == "enforce":
        return Finding(
            "mta_sts.policy",
            domain,
            "fail",
            "enforce mode, but the policy does not list MX host "
            + ", ".join(uncovered)
            + ": senders that honour MTA-STS will not deliver there",
            WHY_MTA_STS,
            policy_fix,
            detail,
        )
    if uncovered:
        return Finding(
            "mta_sts.policy",
            domain,
            "warn",
            f"mode {mode}; the policy does not list MX host " + ", ".join(uncovered),
            WHY_MTA_STS,
            policy_fix,
            detail,
        )
    if mode != "enforce":
        return Finding(
            "mta_sts.policy",
            domain,
            "warn",
            f"mode {mode}: failures are reported, not enforced (patterns {', '.join(patterns)})",
            WHY_MTA_STS,
            "Set mode: enforce in the policy once TLS reports are clean, and "
            f"publish a new id in {name}.",
            detail,
        )
    return Finding(
        "mta_sts.policy",
        domain,
        "pass",
        f"enforce mode, every MX host covered ({', '.join(patterns)})",
        WHY_MTA_STS,
        detail=detail,
    )
