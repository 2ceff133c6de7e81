"""Identity: the MX hosts (and null MX, RFC 7505), PTR and forward-confirmed reverse DNS of each
sending IP, and the HELO/banner names of watched servers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from handlers.domain.lookup import AsyncDns
from handlers.domain.model import Finding

WHY_MX = (
    "Receivers check that the sender's domain can receive mail (bounces, replies); Gmail and "
    "Microsoft score mail from domains whose MX hosts do not resolve as suspicious. A null MX "
    "(RFC 7505) says the domain takes no mail, and receivers may refuse mail sent from it."
)
WHY_PTR = (
    "Gmail and Yahoo (2024) and Microsoft (2025) require every sending IP to have a PTR record "
    "whose name resolves back to the same IP (forward-confirmed reverse DNS); without it mail is "
    "rejected (Gmail 550 5.7.25) or junked."
)
WHY_HELO = (
    "Receivers compare the HELO/EHLO name with DNS: a name that does not resolve, or resolves to "
    "another address, adds spam score and some receivers reject it outright."
)
UNCHECKED = "A lookup that failed says nothing; run the check again."


@dataclass
class MxResult:
    finding: Finding
    hosts: list[str] = field(default_factory=list)
    addresses: dict[str, list[str]] = field(default_factory=dict)  # host → A/AAAA


async def check_mx(domain: str, resolver: AsyncDns) -> MxResult:
    answer = await resolver.query(domain, "MX")
    if answer.failed:
        return MxResult(
            Finding("mx.hosts", domain, "error", f"could not look up MX: {answer.error}", UNCHECKED)
        )
    if answer.state == "nxdomain":
        return MxResult(
            Finding(
                "mx.hosts",
                domain,
                "fail",
                f"{domain} does not exist in DNS (NXDOMAIN)",
                WHY_MX,
                f"Create the zone for {domain}, with e.g. {domain}. IN MX 10 mail.{domain}.",
            )
        )
    records = sorted((int(p), host) for p, host in (v.split(" ", 1) for v in answer.values))
    if not records:
        return MxResult(
            Finding(
                "mx.hosts",
                domain,
                "warn",
                f"{domain} has no MX record: senders fall back to its A/AAAA address",
                WHY_MX,
                f"{domain}. IN MX 10 mail.{domain}.   (or, if it takes no mail, the null MX "
                f"{domain}. IN MX 0 .)",
            )
        )
    if len(records) == 1 and records[0][1] in (".", ""):
        return MxResult(
            Finding(
                "mx.hosts",
                domain,
                "warn",
                f"null MX (RFC 7505): {domain} declares it receives no mail; receivers may "
                "refuse mail whose envelope sender is in this domain",
                WHY_MX,
                f"If {domain} sends mail, publish a real MX ({domain}. IN MX 10 mail.{domain}.) "
                "instead of the null MX.",
                {"null_mx": True, "records": list(answer.values)},
            )
        )
    hosts = [host for _, host in records if host not in (".", "")]
    looked_up = await asyncio.gather(*(resolver.addresses(h) for h in hosts))
    addresses = {h: found for h, (found, _) in zip(hosts, looked_up, strict=True)}
    errors = [f"{h}: {err}" for h, (found, err) in zip(hosts, looked_up, strict=True) if err]
    missing = [h for h in hosts if not addresses[h]]
    detail = {"records": [f"{p} {h}" for p, h in records], "addresses": addresses}
    if any(p == 0 and h in (".", "") for p, h in records):
        return MxResult(
            Finding(
                "mx.hosts",
                domain,
                "fail",
                "a null MX (0 .) next to other MX records is invalid (RFC 7505 §3)",
                WHY_MX,
                f"Remove the record {domain}. IN MX 0 .",
                detail,
            ),
            hosts,
            addresses,
        )
    if missing and errors:
        return MxResult(
            Finding(
                "mx.hosts",
                domain,
                "error",
                "could not resolve MX hosts: " + "; ".join(errors),
                UNCHECKED,
                detail=detail,
            ),
            hosts,
            addresses,
        )
    if missing:
        return MxResult(
            Finding(
                "mx.hosts",
                domain,
                "fail",
                "MX hosts without an address: " + ", ".join(missing),
                WHY_MX,
                "; ".join(f"{h}. IN A <address of the server>" for h in missing),
                detail,
            ),
            hosts,
            addresses,
        )
    return MxResult(
        Finding(
            "mx.hosts",
            domain,
            "pass",
            "MX: " + ", ".join(f"{h} ({', '.join(addresses[h])})" for h in hosts),
            WHY_MX,
            detail=detail,
        ),
        hosts,
        addresses,
    )


async def check_ptr(address: str, origin: str, resolver: AsyncDns) -> Finding:
    finding = await _ptr_verdict(address, origin, resolver)
    if finding.status == "fail" and origin.startswith("mx "):
        # an MX host only receives, as far as we know: its reverse DNS matters if it also sends
        return Finding(
            finding.id,
            finding.subject,
            "warn",
            finding.summary + " (an MX host: this matters only if it also sends mail)",
            finding.why,
            finding.fix,
            finding.detail,
        )
    return finding


async def _ptr_verdict(address: str, origin: str, resolver: AsyncDns) -> Finding:
    detail: dict[str, object] = {"origin": origin}
    answer = await resolver.ptr(address)
    if answer.failed:
        return Finding(
            "ptr.fcrdns",
            address,
            "error",
            f"could not look up the PTR of {address}: {answer.error}",
            UNCHECKED,
            detail=detail,
        )
    names = list(answer.values)
    detail["ptr"] = names
    if not names:
        return Finding(
            "ptr.fcrdns",
            address,
            "fail",
            f"{address} ({origin}) has no PTR record",
            WHY_PTR,
            f"Ask whoever owns {address} (your hosting provider or ISP) for the PTR "
            f"{_reverse(address)} IN PTR mail.example.com. — a name that itself has an A/AAAA "
            f"record pointing to {address}.",
            detail,
        )
    forward = await asyncio.gather(*(resolver.addresses(n) for n in names))
    detail["forward"] = {n: found for n, (found, _) in zip(names, forward, strict=True)}
    for name, (found, _) in zip(names, forward, strict=True):
        if address in found:
            return Finding(
                "ptr.fcrdns",
                address,
                "pass",
                f"{address} → {name} → {address} (forward-confirmed)",
                WHY_PTR,
                detail=detail,
            )
    errors = [f"{n}: {err}" for n, (_, err) in zip(names, forward, strict=True) if err]
    if errors:
        return Finding(
            "ptr.fcrdns",
            address,
            "error",
            f"could not confirm the PTR name of {address}: " + "; ".join(errors),
            UNCHECKED,
            detail=detail,
        )
    shown = ", ".join(
        f"{n} → {', '.join(found) or 'no address'}"
        for n, (found, _) in zip(names, forward, strict=True)
    )
    return Finding(
        "ptr.fcrdns",
        address,
        "fail",
        f"{address} ({origin}) has PTR {', '.join(names)}, which does not resolve back ({shown})",
        WHY_PTR,
        f"{names[0]}. IN {'AAAA' if ':' in address else 'A'} {address}   (or change the PTR to "
        "a name that resolves to this address)",
        detail,
    )


async def check_helo(name: str, resolver: AsyncDns) -> Finding:
    found, error = await resolver.addresses(name)
    detail: dict[str, object] = {"addresses": found}
    if error and not found:
        return Finding(
            "helo.name",
            name,
            "error",
            f"could not resolve {name}: {error}",
            UNCHECKED,
            detail=detail,
        )
    if not found:
        return Finding(
            "helo.name",
            name,
            "fail",
            f"the HELO name {name} has no A/AAAA record",
            WHY_HELO,
            f"{name}. IN A <the server's public address>  (or set the server's HELO name, e.g. "
            "Postfix smtp_helo_name, to its PTR name)",
            detail,
        )
    ptrs = await asyncio.gather(*(resolver.ptr(a) for a in found))
    back = {a: list(p.values) for a, p in zip(found, ptrs, strict=True)}
    detail["ptr"] = back
    if any(name.lower() in names for names in back.values()):
        return Finding(
            "helo.name",
            name,
            "pass",
            f"{name} resolves to {', '.join(found)} and back",
            WHY_HELO,
            detail=detail,
        )
    if any(p.failed for p in ptrs):
        return Finding(
            "helo.name",
            name,
            "error",
            f"could not look up the PTR of {', '.join(found)}",
            UNCHECKED,
            detail=detail,
        )
    return Finding(
        "helo.name",
        name,
        "warn",
        f"{name} resolves to {', '.join(found)}, but no PTR of those points back to it",
        WHY_HELO,
        f"Set the PTR of {found[0]} to {name}., or the HELO name to the existing PTR name.",
        detail,
    )


def _reverse(address: str) -> str:
    import dns.reversename

    return dns.reversename.from_address(address).to_text()
