"""The relay test battery: named MAIL FROM / RCPT TO pairs, built for one target.

Every form nmap's smtp-open-relay tries, plus extra senders and plain external→external pairs.
`plain` tests put a normal external address in RCPT TO: accepting one is relaying. `trick` tests
use an address form (percent hack, quoting, source route, bang path) that a server may rewrite to a
local user or may route outward; accepting one is suspect, not proof.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TestKind = Literal["plain", "trick"]

# RFC 5737 TEST-NET-1: an external address literal that is never anyone's mail server.
EXTERNAL_IP_LITERAL = "[192.0.2.1]"


@dataclass(frozen=True)
class BatteryNames:
    """The names and local parts the battery is built from (all configurable)."""

    test_domain: str = "example.net"  # the external recipient domain (RFC 2606)
    sender_domain: str = "example.org"  # the external sender domain (RFC 2606)
    local_part: str = "relaywatch-test"  # recipient local part
    sender_local_part: str = "relaywatch"  # sender local part


@dataclass(frozen=True)
class RelayTestSpec:
    """A battery entry as a template: SERVER, IP and the names are filled in per target."""

    name: str
    kind: TestKind
    mail_from: str  # template, angle brackets included
    rcpt_to: str
    description: str
    origin: str  # "nmap" or "relaywatch"


@dataclass(frozen=True)
class RelayTest:
    """A battery entry filled in for one target: the exact addresses sent."""

    name: str
    kind: TestKind
    mail_from: str
    rcpt_to: str
    description: str
    origin: str


# Templates: {lp} recipient local part, {slp} sender local part, {ext} test domain,
# {sdom} sender domain, {server} the server's own name, {ip} its address literal ("[192.0.2.7]").
BATTERY: tuple[RelayTestSpec, ...] = (
    RelayTestSpec(
        "null-sender",
        "plain",
        "<>",
        "<{lp}@{ext}>",
        "null (bounce) sender to an external recipient",
        "nmap",
    ),
    RelayTestSpec(
        "external-sender",
        "plain",
        "<{slp}@{ext}>",
        "<{lp}@{ext}>",
        "sender and recipient in the external test domain",
        "nmap",
    ),
    RelayTestSpec(
        "server-sender",
        "plain",
        "<{slp}@{server}>",
        "<{lp}@{ext}>",
        "forged sender at the server's own name to an external recipient",
        "nmap",
    ),
    RelayTestSpec(
        "ip-literal-sender",
        "plain",
        "<{slp}@{ip}>",
        "<{lp}@{ext}>",
        "forged sender at the server's address literal to an external recipient",
        "nmap",
    ),
    RelayTestSpec(
        "percent-hack-ip",
        "trick",
        "<{slp}@{ip}>",
        "<{lp}%{ext}@{ip}>",
        "percent hack routed through the address literal",
        "nmap",
    ),
    RelayTestSpec(
        "percent-hack-server",
        "trick",
        "<{slp}@{ip}>",
        "<{lp}%{ext}@{server}>",
        "percent hack routed through the server's name",
        "nmap",
    ),
    RelayTestSpec(
        "quoted-address",
        "trick",
        "<{slp}@{ip}>",
        '<"{lp}@{ext}">',
        "whole external address quoted as a local part",
        "nmap",
    ),
    RelayTestSpec(
        "quoted-percent",
        "trick",
        "<{slp}@{ip}>",
        '<"{lp}%{ext}">',
        "quoted percent-hack local part",
        "nmap",
    ),
    RelayTestSpec(
        "double-at-ip",
        "trick",
        "<{slp}@{ip}>",
        "<{lp}@{ext}@{ip}>",
        "external address followed by @ the address literal",
        "nmap",
    ),
    RelayTestSpec(
        "quoted-at-ip",
        "trick",
        "<{slp}@{ip}>",
        '<"{lp}@{ext}"@{ip}>',
        "quoted external address @ the address literal",
        "nmap",
    ),
    RelayTestSpec(
        "double-at-server",
        "trick",
        "<{slp}@{ip}>",
        "<{lp}@{ext}@{server}>",
        "external address followed by @ the server's name",
        "nmap",
    ),
    RelayTestSpec(
        "source-route-ip",
        "trick",
        "<{slp}@{ip}>",
        "<@{ip}:{lp}@{ext}>",
        "RFC 821 source route through the address literal",
        "nmap",
    ),
    RelayTestSpec(
        "source-route-server",
        "trick",
        "<{slp}@{ip}>",
        "<@{server}:{lp}@{ext}>",
        "RFC 821 source route through the server's name",
        "nmap",
    ),
    RelayTestSpec(
        "bang-path",
        "trick",
        "<{slp}@{ip}>",
        "<{ext}!{lp}>",
        "UUCP bang path",
        "nmap",
    ),
    RelayTestSpec(
        "bang-path-ip",
        "trick",
        "<{slp}@{ip}>",
        "<{ext}!{lp}@{ip}>",
        "UUCP bang path @ the address literal",
        "nmap",
    ),
    RelayTestSpec(
        "bang-path-server",
        "trick",
        "<{slp}@{ip}>",
        "<{ext}!{lp}@{server}>",
        "UUCP bang path @ the server's name",
        "nmap",
    ),
    RelayTestSpec(
        "localhost-sender",
        "plain",
        "<{slp}@localhost>",
        "<{lp}@{ext}>",
        "forged sender at localhost to an external recipient",
        "relaywatch",
    ),
    RelayTestSpec(
        "bare-sender",
        "plain",
        "<{slp}>",
        "<{lp}@{ext}>",
        "sender without a domain (completed with the server's own) to an external recipient",
        "relaywatch",
    ),
    RelayTestSpec(
        "postmaster-sender",
        "plain",
        "<postmaster@{server}>",
        "<{lp}@{ext}>",
        "forged postmaster@server to an external recipient",
        "relaywatch",
    ),
    RelayTestSpec(
        "external-to-external",
        "plain",
        "<{slp}@{sdom}>",
        "<{lp}@{ext}>",
        "a stranger's domain to another external domain: the spammer's case",
        "relaywatch",
    ),
    RelayTestSpec(
        "ip-literal-recipient",
        "plain",
        "<{slp}@{sdom}>",
        "<{lp}@" + EXTERNAL_IP_LITERAL + ">",
        "external sender to an external address literal (RFC 5737 192.0.2.1)",
        "relaywatch",
    ),
    RelayTestSpec(
        "trailing-dot-recipient",
        "plain",
        "<{slp}@{sdom}>",
        "<{lp}@{ext}.>",
        "external recipient domain written with a trailing dot (slips past naive domain lists)",
        "relaywatch",
    ),
    RelayTestSpec(
        "uppercase-recipient",
        "plain",
        "<{slp}@{sdom}>",
        "<{LP}@{EXT}>",
        "external recipient in upper case (slips past case-sensitive domain lists)",
        "relaywatch",
    ),
)


def battery_names() -> list[str]:
    return [spec.name for spec in BATTERY]


def build_battery(
    names: BatteryNames,
    server_name: str,
    address_literal: str,
    only: list[str] | None = None,
) -> list[RelayTest]:
    """Fills the templates for one target; `only` keeps just the named tests (battery order)."""
    values = {
        "lp": names.local_part,
        "LP": names.local_part.upper(),
        "slp": names.sender_local_part,
        "ext": names.test_domain,
        "EXT": names.test_domain.upper(),
        "sdom": names.sender_domain,
        "server": server_name,
        "ip": address_literal,
    }
    wanted = set(only) if only else None
    return [
        RelayTest(
            name=spec.name,
            kind=spec.kind,
            mail_from=spec.mail_from.format(**values),
            rcpt_to=spec.rcpt_to.format(**values),
            description=spec.description,
            origin=spec.origin,
        )
        for spec in BATTERY
        if wanted is None or spec.name in wanted
    ]


def address_literal(address: str) -> str:
    """'192.0.2.7' → '[192.0.2.7]'; '2001:db8::1' → '[IPv6:2001:db8::1]' (RFC 5321 4.1.3)."""
    return f"[IPv6:{address}]" if ":" in address else f"[{address}]"
