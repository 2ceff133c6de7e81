"""SPF: one record, valid syntax, RFC 7208 §4.6.4 lookup limits, the `all` term, `ptr`, and
whether each sending IP passes.

The record is found, parsed and its lookups counted by checkdmarc. checkdmarc does not evaluate an
IP against a record, and pyspf (the library that does) has had no release since 2020 and resolves
through a module-wide DNS setting that cannot be pointed at a nameserver per call. So the IP
verdict walks the tree checkdmarc already parsed (ip4/ip6, a, mx, include, redirect, all) with the
same recording resolver; terms whose result depends on the connecting host (`exists`, `ptr`,
macros) are reported as undecidable here, never as a pass.

Runs synchronously, inside `fresh_checkdmarc()`, in a worker thread.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from handlers.domain.lookup import RecordingResolver
from handlers.domain.model import Finding, SendingIp

WHY_RECORD = (
    "Gmail and Yahoo (since February 2024) and Microsoft's consumer mail (since May 2025) require "
    "SPF or DKIM from every sender and both from bulk senders; with no SPF record, or two, "
    "receivers get SPF none or permerror and junk or reject the mail."
)
WHY_SYNTAX = (
    "A record receivers cannot parse is an SPF permerror: Gmail, Yahoo and Microsoft treat the "
    "mail as unauthenticated."
)
WHY_LOOKUPS = (
    "RFC 7208 §4.6.4: past 10 DNS-querying terms (include, a, mx, ptr, exists, redirect) or 2 "
    "void lookups, receivers stop with permerror, so SPF fails for every sender."
)
WHY_ALL = (
    "The `all` term says what happens to everyone else: `+all` lets the whole internet pass SPF "
    "for this domain; `?all` or no `all` gives no protection. Receivers score such domains as "
    "spoofable."
)
WHY_PTR = (
    "RFC 7208 §5.5: `ptr` is slow and unreliable and SHOULD NOT be used; some receivers skip it, "
    "so mail that relied on it fails SPF."
)
WHY_IP = (
    "A sending IP that SPF does not authorise fails the Gmail/Yahoo/Microsoft sender rules unless "
    "DKIM passes and aligns; the mail lands in spam or is rejected."
)


def check_spf(
    domain: str,
    ips: list[SendingIp],
    servers: list[tuple[str, int]],
    timeout: float,
) -> list[Finding]:
    from checkdmarc.spf import (
        MultipleSPFRTXTRecords,
        SPFError,
        SPFRecordNotFound,
        SPFTooManyDNSLookups,
        SPFTooManyVoidDNSLookups,
        parse_spf_record,
        query_spf_record,
    )

    resolver = RecordingResolver(servers, timeout)
    findings: list[Finding] = []
    try:
        found = query_spf_record(domain, resolver=resolver, timeout=timeout)
    except MultipleSPFRTXTRecords:
        findings.append(
            Finding(
                "spf.record",
                domain,
                "fail",
                f"{domain} publishes more than one SPF record; receivers return permerror",
                WHY_RECORD,
                f"Merge them into one TXT record at {domain}, e.g. {_suggested(domain, ips)}, "
                "and delete the others.",
            )
        )
        return findings + _ip_findings_without_record(domain, ips, "permerror (two SPF records)")
    except SPFRecordNotFound as exc:
        if resolver.failures or not isinstance(exc.error, str):
            error = _lookup_error("spf.record", domain, resolver, exc)
            return [error] + [
                Finding(**{**error.to_dict(), "id": "spf.ip", "subject": ip.address}) for ip in ips
            ]
        findings.append(
            Finding(
                "spf.record",
                domain,
                "fail",
                f"{domain} has no SPF record ({exc})",
                WHY_RECORD,
                f"Publish {_suggested(domain, ips)}",
            )
        )
        return findings + _ip_findings_without_record(domain, ips, "none (no SPF record)")
    record = found["record"]
    findings.append(
        Finding(
            "spf.record",
            domain,
            "pass",
            f"one SPF record: {record}",
            WHY_RECORD,
            detail={"record": record, "warnings": list(found.get("warnings") or [])},
        )
    )
    failures_before = len(resolver.failures)
    try:
        parsed = parse_spf_record(
            record, domain, ignore_too_many_lookups=True, resolver=resolver, timeout=timeout
        )
    except SPFRecordNotFound as exc:  # an include target without a record
        if len(resolver.failures) > failures_before:
            findings.append(_lookup_error("spf.syntax", domain, resolver, exc))
        else:
            findings.append(_syntax_fail(domain, str(exc), ips))
        return findings
    except (SPFTooManyDNSLookups, SPFTooManyVoidDNSLookups) as exc:
        # checkdmarc raises the void-lookup limit from its warning handler, past the
        # ignore_too_many_lookups switch: the record parsed, its evaluation is a permerror
        if len(resolver.failures) > failures_before:
            findings.append(_lookup_error("spf.lookups", domain, resolver, exc))
            return findings
        counts = {"dns_lookups": 0, "void_dns_lookups": 0, **(exc.data or {})}
        findings.append(
            Finding("spf.syntax", domain, "pass", "the record parses", WHY_SYNTAX, detail={})
        )
        findings.append(_lookups(domain, counts, resolver, failures_before))
        findings += _ip_findings_without_record(domain, ips, "permerror (lookup limit)")
        return findings
    except SPFError as exc:
        findings.append(_syntax_fail(domain, str(exc), ips))
        return findings
    warnings = list(parsed.get("warnings") or [])
    findings.append(
        Finding(
            "spf.syntax",
            domain,
            "pass",
            "the record parses" + (f" ({len(warnings)} notes)" if warnings else ""),
            WHY_SYNTAX,
            detail={"warnings": warnings},
        )
    )
    findings.append(_lookups(domain, parsed, resolver, failures_before))
    findings.append(_all_term(domain, record, parsed["parsed"], ips))
    ptr_in = _ptr_users(domain, parsed["parsed"])
    if ptr_in:
        findings.append(
            Finding(
                "spf.ptr",
                domain,
                "warn",
                "the deprecated ptr mechanism is used in " + ", ".join(ptr_in),
                WHY_PTR,
                "Replace `ptr` with the ip4:/ip6: ranges (or `a:`/`mx` names) of your senders.",
            )
        )
    counted_failed = len(resolver.failures) > failures_before
    over_limit = (
        int(parsed.get("dns_lookups") or 0) > 10 or int(parsed.get("void_dns_lookups") or 0) > 2
    )
    mx_cache: dict[str, list[str]] = {}
    for ip in ips:
        if over_limit and not counted_failed:
            # RFC 7208 §4.6.4: the receiver stops with permerror before any verdict
            findings += _ip_findings_without_record(domain, [ip], "permerror (lookup limit)")
            continue
        findings.append(
            _ip_verdict(domain, ip, parsed["parsed"], resolver, timeout, counted_failed, mx_cache)
        )
    return findings


def _suggested(domain: str, ips: list[SendingIp]) -> str:
    terms = ["v=spf1"]
    for ip in ips:
        if ip.origin.startswith("mx "):
            continue
        version = ipaddress.ip_address(ip.address).version
        terms.append(f"ip{version}:{ip.address}")
    terms += ["mx", "-all"]
    return f'{domain}. IN TXT "{" ".join(terms)}"'


def _lookup_error(check_id: str, subject: str, resolver: RecordingResolver, exc: Any) -> Finding:
    reason = resolver.failure_text() or str(exc)
    return Finding(
        check_id,
        subject,
        "error",
        f"could not check: a DNS lookup failed ({reason})",
        "A lookup that failed says nothing about the record; run the check again.",
    )


def _syntax_fail(domain: str, message: str, ips: list[SendingIp]) -> Finding:
    return Finding(
        "spf.syntax",
        domain,
        "fail",
        f"the SPF record is invalid: {message}",
        WHY_SYNTAX,
        f"Correct the record, e.g. {_suggested(domain, ips)}",
    )


def _ip_findings_without_record(domain: str, ips: list[SendingIp], result: str) -> list[Finding]:
    return [
        Finding(
            "spf.ip",
            ip.address,
            "fail",
            f"{ip.address} ({ip.origin}) gets SPF {result} for {domain}",
            WHY_IP,
            f"Publish one valid SPF record that lists {ip.address}.",
            detail={"origin": ip.origin, "result": result.split(" ")[0]},
        )
        for ip in ips
    ]


def _lookups(
    domain: str, parsed: dict[str, Any], resolver: RecordingResolver, failures_before: int
) -> Finding:
    lookups = int(parsed.get("dns_lookups") or 0)
    void = int(parsed.get("void_dns_lookups") or 0)
    detail = {"dns_lookups": lookups, "void_lookups": void, "limit": 10, "void_limit": 2}
    if len(resolver.failures) > failures_before:
        finding = _lookup_error("spf.lookups", domain, resolver, None)
        return Finding(**{**finding.to_dict(), "detail": detail})
    fix = (
        "Flatten includes: replace include:s you do not need, or list your senders' ip4:/ip6: "
        "ranges directly, until evaluation needs at most 10 lookups."
    )
    if lookups > 10 or void > 2:
        what = []
        if lookups > 10:
            what.append(f"{lookups} DNS lookups (limit 10)")
        if void > 2:
            what.append(f"{void} void lookups (limit 2)")
        return Finding(
            "spf.lookups",
            domain,
            "fail",
            "evaluation needs " + " and ".join(what),
            WHY_LOOKUPS,
            fix if lookups > 10 else "Remove terms that point at names without records.",
            detail,
        )
    if lookups >= 9:
        return Finding(
            "spf.lookups",
            domain,
            "warn",
            f"{lookups} of 10 DNS lookups used: one more include breaks SPF",
            WHY_LOOKUPS,
            fix,
            detail,
        )
    return Finding(
        "spf.lookups",
        domain,
        "pass",
        f"{lookups} of 10 DNS lookups, {void} of 2 void",
        WHY_LOOKUPS,
        detail=detail,
    )


def _all_term(domain: str, record: str, parsed: dict[str, Any], ips: list[SendingIp]) -> Finding:
    qualifier = None
    for term in record.split()[1:]:
        lowered = term.lower()
        if lowered in ("all", "+all", "-all", "~all", "?all"):
            qualifier = lowered[0] if lowered != "all" else "+"
            break
    detail = {"all": parsed.get("all"), "term": f"{qualifier}all" if qualifier else None}
    better = record
    if qualifier is None:
        if parsed.get("redirect"):
            return Finding(
                "spf.all",
                domain,
                "pass",
                f"the policy comes from redirect= ({parsed['all']} for other senders)",
                WHY_ALL,
                detail=detail,
            )
        better = f"{record} -all"
        return Finding(
            "spf.all",
            domain,
            "warn",
            "no `all` term: everyone else gets neutral, the same as no protection",
            WHY_ALL,
            f'{domain}. IN TXT "{better}"',
            detail,
        )
    if qualifier == "+":
        better = _with_all(record, "-all")
        return Finding(
            "spf.all",
            domain,
            "fail",
            "`+all` authorises every host on the internet to send as this domain",
            WHY_ALL,
            f'{domain}. IN TXT "{better}"',
            detail,
        )
    if qualifier == "?":
        better = _with_all(record, "~all")
        return Finding(
            "spf.all",
            domain,
            "warn",
            "`?all` (neutral) gives no protection against spoofing",
            WHY_ALL,
            f'{domain}. IN TXT "{better}"',
            detail,
        )
    strength = "fail" if qualifier == "-" else "softfail"
    return Finding(
        "spf.all",
        domain,
        "pass",
        f"`{qualifier}all`: other senders get {strength}",
        WHY_ALL,
        detail=detail,
    )


def _with_all(record: str, replacement: str) -> str:
    terms = record.split()
    return " ".join(
        replacement if t.lower() in ("all", "+all", "?all", "~all", "-all") else t for t in terms
    )


def _ptr_users(domain: str, parsed: dict[str, Any] | None, where: str = "") -> list[str]:
    if not parsed:
        return []
    found: list[str] = []
    for mechanism in parsed.get("mechanisms") or []:
        if mechanism.get("mechanism") == "ptr" and (where or domain) not in found:
            found.append(where or domain)
        if mechanism.get("mechanism") == "include":
            found += _ptr_users(domain, mechanism.get("parsed"), mechanism.get("value", ""))
    redirect = parsed.get("redirect") or {}
    found += _ptr_users(domain, redirect.get("parsed"), redirect.get("domain", ""))
    return found


# -- one IP against the parsed record ----------------------------------------------------------

_UNDECIDED = "undecided"


def _ip_verdict(
    domain: str,
    ip: SendingIp,
    parsed: dict[str, Any],
    resolver: RecordingResolver,
    timeout: float,
    counted_failed: bool,
    mx_cache: dict[str, list[str]],
) -> Finding:
    address = ipaddress.ip_address(ip.address)
    failures_before = len(resolver.failures)
    result, via = _evaluate(parsed, address, resolver, timeout, mx_cache, depth=0)
    detail = {"origin": ip.origin, "result": result, "matched": via}
    if counted_failed or len(resolver.failures) > failures_before:
        finding = _lookup_error("spf.ip", ip.address, resolver, None)
        return Finding(**{**finding.to_dict(), "detail": detail})
    from_mx = ip.origin.startswith("mx ")
    if result == "pass":
        return Finding(
            "spf.ip",
            ip.address,
            "pass",
            f"{ip.address} ({ip.origin}) passes SPF for {domain} via {via}",
            WHY_IP,
            detail=detail,
        )
    if result == _UNDECIDED:
        return Finding(
            "spf.ip",
            ip.address,
            "warn",
            f"{ip.address} ({ip.origin}): the result depends on {via}, which is only known when "
            "mail arrives",
            WHY_IP,
            f"List {ip.address} explicitly (ip{address.version}:{ip.address}) before {via}.",
            detail,
        )
    status = "warn" if from_mx else "fail"
    note = " (an MX host: this matters only if it also sends mail)" if from_mx else ""
    return Finding(
        "spf.ip",
        ip.address,
        status,
        f"{ip.address} ({ip.origin}) gets SPF {result} for {domain}{note}",
        WHY_IP,
        f"Add ip{address.version}:{ip.address} to the SPF record of {domain}, before its all term.",
        detail,
    )


def _evaluate(
    parsed: dict[str, Any] | None,
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
    resolver: RecordingResolver,
    timeout: float,
    mx_cache: dict[str, list[str]],
    depth: int,
) -> tuple[str, str]:
    """RFC 7208 §4.6: the first matching mechanism decides; include matches on an inner pass."""
    if not parsed or depth > 10:
        return "permerror", "an unusable record"
    for mechanism in parsed.get("mechanisms") or []:
        kind = mechanism.get("mechanism")
        value = str(mechanism.get("value") or "")
        action = mechanism.get("action", "pass")
        label = f"{kind}:{value}" if value else str(kind)
        if "%" in value or kind in ("exists", "ptr"):
            return _UNDECIDED, label
        if kind in ("ip4", "ip6"):
            if _in(address, value):
                return action, label
        elif kind == "a":
            if any(_in(address, a) for a in mechanism.get("addresses") or []):
                return action, label
        elif kind == "mx":
            for host in mechanism.get("hosts") or []:
                if any(_in(address, a) for a in _host_addresses(host, resolver, timeout, mx_cache)):
                    return action, label
        elif kind == "include":
            inner, _ = _evaluate(
                mechanism.get("parsed"), address, resolver, timeout, mx_cache, depth + 1
            )
            if inner == "pass":
                return action, label
            if inner in (_UNDECIDED, "permerror"):
                return inner, label
    redirect = parsed.get("redirect") or None
    if redirect and not any(m.get("mechanism") == "all" for m in parsed.get("mechanisms") or []):
        if redirect.get("parsed"):
            return _evaluate(redirect["parsed"], address, resolver, timeout, mx_cache, depth + 1)
    return str(parsed.get("all") or "neutral"), "all"


def _in(address: ipaddress.IPv4Address | ipaddress.IPv6Address, network: str) -> bool:
    try:
        net = ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False
    return address.version == net.version and address in net


def _host_addresses(
    host: dict[str, Any], resolver: RecordingResolver, timeout: float, cache: dict[str, list[str]]
) -> list[str]:
    # checkdmarc keeps only the MX host names of an mx term, not their addresses
    from checkdmarc.utils import DNSException, get_a_records

    name = str(host.get("hostname") or "")
    if name not in cache:
        try:
            cache[name] = list(get_a_records(name, resolver=resolver, timeout=timeout))
        except DNSException:
            cache[name] = []
    return cache[name]
