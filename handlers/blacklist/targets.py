"""What the user asked to check (IP, range, host name, MX domain) and how each becomes DNSBL names.

Query names follow RFC 5782: IPv4 octets reversed, IPv6 as 32 reversed nibbles, domains as is.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass

from handlers.numbers import is_ascii_digits

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


class TargetError(ValueError):
    """Input that is not a checkable target; the message is one line saying what to type instead."""


@dataclass(frozen=True)
class TargetSpec:
    """One target as the user gave it, validated.

    kind: "ip" (one address), "range" (a CIDR), "host" (a name: its A/AAAA and the name itself on
    domain lists) or "mx" (a mail domain: the domain on domain lists and each MX host's addresses).
    """

    text: str
    kind: str
    address: IPAddress | None = None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    name: str = ""

    def addresses(self) -> Iterator[IPAddress]:
        """Every address of an ip/range target, lazily (a /16 is never held as a list)."""
        if self.address is not None:
            yield self.address
        elif self.network is not None:
            yield from self.network


def parse_target(
    text: str, max_ipv4_prefix: int = 22, max_ipv6_prefix: int = 118, mx: bool = False
) -> TargetSpec:
    """Validates one target. `mx=True`: `text` is a mail domain whose MX hosts are checked."""
    raw = text.strip() if isinstance(text, str) else ""
    shown = _shown(text)
    if not raw:
        raise TargetError("give an IP address, a CIDR range, a host name or --mx DOMAIN")
    if mx:
        name = _hostname(raw)
        if name is None:
            raise TargetError(f"--mx {shown}: not a mail domain; e.g. --mx example.com")
        return TargetSpec(text=raw, kind="mx", name=name)
    if "/" in raw:
        try:
            network = ipaddress.ip_network(raw, strict=False)
        except ValueError:
            raise TargetError(f"{shown}: not a valid CIDR range; e.g. 192.0.2.0/24") from None
        limit = max_ipv4_prefix if network.version == 4 else max_ipv6_prefix
        if network.prefixlen < limit:
            biggest = 2 ** ((32 if network.version == 4 else 128) - limit)
            raise TargetError(
                f"{shown}: range too large; the limit is /{limit} ({biggest:,} addresses), "
                "set blacklist.max_ipv4_prefix to allow more"
            )
        if network.num_addresses == 1:
            return TargetSpec(text=raw, kind="ip", address=network.network_address)
        return TargetSpec(text=str(network), kind="range", network=network)
    try:
        address = ipaddress.ip_address(raw.strip("[]"))
    except ValueError:
        pass
    else:
        return TargetSpec(text=str(address), kind="ip", address=address)
    name = _hostname(raw)
    if name is None:
        raise TargetError(
            f"{shown}: not an IP address, CIDR range or host name; "
            "e.g. 192.0.2.10, 192.0.2.0/24, mail.example.com"
        )
    return TargetSpec(text=name, kind="host", name=name)


def _hostname(raw: str) -> str | None:
    name = raw.lower().rstrip(".")
    try:
        # internationalized names go on the wire (and on the lists) as their A-label form
        name = name.encode("idna").decode("ascii")
    except (UnicodeError, ValueError):
        return None
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or is_ascii_digits(labels[-1]):
        return None
    if not all(_LABEL.match(label) for label in labels):
        return None
    return name


def _shown(text: object) -> str:
    # a one-line error must stay one line whatever garbage came in
    shown = repr(text) if not isinstance(text, str) else repr(text.strip())
    return shown if len(shown) <= 80 else shown[:77] + "..."


def reverse_name(address: IPAddress) -> str:
    """RFC 5782 query prefix: 192.0.2.1 → '1.2.0.192'; IPv6 → 32 nibbles, lowest first."""
    if address.version == 4:
        return ".".join(reversed(str(address).split(".")))
    return ".".join(reversed(address.exploded.replace(":", "")))


def name_labels_wire(name: str) -> bytes:
    """A relative DNS name in wire form without the root label ('1.2.0.192' → b'\\x011\\x012…')."""
    out = bytearray()
    for label in name.split("."):
        encoded = label.encode("ascii")
        if not 0 < len(encoded) < 64:
            raise TargetError(f"{name!r}: a DNS label is empty or longer than 63 characters")
        out.append(len(encoded))
        out += encoded
    return bytes(out)
