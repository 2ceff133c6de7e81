"""Target forms (host, host:port, IPv4, [IPv6]:port, a domain's MX), resolution, safety policy.

A name is resolved exactly once; the address it resolved to is what the policy checks and what the
session connects to, so a DNS answer that changes between check and connect cannot redirect a probe.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from handlers.numbers import NumberError, is_ascii_digits, parse_port
from handlers.relay.diagnostics import DnsLookup

DEFAULT_PORT = 25
STANDARD_PORTS = (25, 465, 587, 2525)
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


class TargetError(ValueError):
    """A target that cannot be checked; the message says why and what to type instead."""


class TargetNotAllowed(TargetError):
    """The safety policy refuses this target (not watched/allowlisted, or a port not permitted)."""


@dataclass(frozen=True)
class TargetSpec:
    host: str  # a host name (lower-case, no trailing dot) or an IP address
    port: int

    @property
    def is_address(self) -> bool:
        return _ip(self.host) is not None

    @property
    def label(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class ResolvedTarget:
    spec: TargetSpec
    address: str  # what we connect to
    via_mx: str = ""  # the domain whose MX named this host, if any

    @property
    def label(self) -> str:
        return self.spec.label


def parse_target(text: str, default_port: int = DEFAULT_PORT) -> TargetSpec:
    """'mx.example.com', 'mx.example.com:587', '192.0.2.1', '[2001:db8::1]:25', '2001:db8::1'."""
    raw = text.strip()
    if not raw:
        raise TargetError("give a mail server as host, host:port, an IP or [IPv6]:port")
    port = default_port
    if raw.startswith("["):
        host, sep, rest = raw[1:].partition("]")
        if not sep:
            raise TargetError(f"{raw!r}: missing ']' after the IPv6 address, e.g. [2001:db8::1]:25")
        if rest:
            if not rest.startswith(":"):
                raise TargetError(f"{raw!r}: expected [IPv6]:port, e.g. [2001:db8::1]:25")
            port = _port(rest[1:], raw)
    elif raw.count(":") == 1:
        host, _, port_text = raw.partition(":")
        port = _port(port_text, raw)
    else:
        host = raw  # a name, an IPv4 address, or a bare IPv6 address
    host = host.strip().rstrip(".").lower()
    address = _ip(host)
    if address is not None:
        return TargetSpec(str(address), port)
    if not _is_hostname(host):
        raise TargetError(
            f"{raw!r} is not a host name or IP address; e.g. mx.example.com:25, 192.0.2.1, "
            "[2001:db8::1]:25"
        )
    return TargetSpec(host, port)


def _port(text: str, whole: str) -> int:
    try:
        return parse_port(text)
    except NumberError:
        raise TargetError(f"{whole!r}: the port must be a number from 1 to 65535") from None


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _is_hostname(name: str) -> bool:
    if not name or len(name) > 253:
        return False
    labels = name.split(".")
    return all(_LABEL.match(label) for label in labels) and not is_ascii_digits(labels[-1])


async def resolve_target(spec: TargetSpec, lookup: DnsLookup, via_mx: str = "") -> ResolvedTarget:
    """Resolves a name once (first address wins: IPv4 before IPv6, as most MTAs try)."""
    if spec.is_address:
        return ResolvedTarget(spec, spec.host, via_mx)
    addresses = await lookup.addresses(spec.host)
    if not addresses:
        raise LookupError(f"{spec.host}: no address")
    ordered = sorted(addresses, key=lambda a: ":" in a)
    return ResolvedTarget(spec, ordered[0], via_mx)


async def mx_targets(domain: str, lookup: DnsLookup, port: int = DEFAULT_PORT) -> list[TargetSpec]:
    """The domain's MX hosts in preference order; a null MX ("0 .") means it takes no mail."""
    name = domain.strip().rstrip(".").lower()
    if not _is_hostname(name):
        raise TargetError(f"--mx {domain!r}: expected a domain name such as example.com")
    records = await lookup.mx(name)
    hosts: list[str] = []
    for _, exchange in records:
        if exchange in ("", ".") or exchange in hosts:
            continue
        hosts.append(exchange)
    if not hosts:
        raise TargetError(f"--mx {name}: the domain publishes a null MX (it receives no mail)")
    return [TargetSpec(host, port) for host in hosts]


@dataclass(frozen=True)
class TargetPolicy:
    """Who may probe what. The CLI uses `unrestricted()`; chat uses the configured allowlist."""

    allowed_ports: frozenset[int] | None = frozenset(STANDARD_PORTS)  # None: any port
    allow_networks: tuple[str, ...] = ()
    allow_hosts: tuple[str, ...] = ()  # names; "*.example.com" allows every name under it
    # is the name or address on the watch list (None: no watch list applies, e.g. admins)
    watched: Callable[[str], bool] | None = None
    restricted: bool = True  # False: any host (an admin, or the CLI)
    allow_host_addresses: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def unrestricted(cls) -> TargetPolicy:
        return cls(allowed_ports=None, restricted=False)

    def check_port(self, spec: TargetSpec) -> None:
        if self.allowed_ports is not None and spec.port not in self.allowed_ports:
            ports = ", ".join(str(p) for p in sorted(self.allowed_ports))
            raise TargetNotAllowed(
                f"{spec.label}: port {spec.port} is not an SMTP port relaywatch probes from chat "
                f"(allowed: {ports}; admins can add relay.extra_ports)"
            )

    def check(self, target: ResolvedTarget) -> None:
        """Raises TargetNotAllowed unless the resolved address (or watched name) is permitted."""
        self.check_port(target.spec)
        if not self.restricted:
            return
        address = ipaddress.ip_address(target.address)
        for network in self.allow_networks:
            if address in ipaddress.ip_network(network, strict=False):
                return
        if target.address in self.allow_host_addresses:
            return
        if self.watched is not None:
            # the address the name resolved to, or the name/domain the user (or MX) gave
            candidates = [target.address, target.spec.label, target.spec.host]
            if target.via_mx:
                candidates.append(target.via_mx)
            if any(self.watched(candidate) for candidate in candidates):
                return
        # "*.example.com" trusts the DNS under a domain the admin controls; exact names were
        # resolved up front and only count through `allow_host_addresses` above
        wildcards = [p for p in self.allow_hosts if p.startswith("*.")]
        if not target.spec.is_address and any(
            _host_matches(target.spec.host, pattern) for pattern in wildcards
        ):
            return
        # Only what the user gave: the address a name resolves to may be internal, and a refusal
        # must not turn the bot into a resolver for names the user may not test.
        raise TargetNotAllowed(
            f"{target.label} is not on the watch list or the relay allowlist; "
            "only admins may test other servers"
        )


def _host_matches(host: str, pattern: str) -> bool:
    pattern = pattern.lower().rstrip(".")
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern


async def allowlist_addresses(hosts: list[str], lookup: DnsLookup) -> frozenset[str]:
    """The addresses the allowlisted names resolve to (wildcards cannot be resolved; skipped)."""
    found: set[str] = set()
    for host in hosts:
        if host.startswith("*."):
            continue
        try:
            found.update(await lookup.addresses(host.rstrip(".")))
        except LookupError:
            continue
    return frozenset(found)
