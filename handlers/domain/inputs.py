"""Checking what a user typed: domains, IPs, DKIM selectors, nameservers (cheap to import: the
config loader validates with these)."""

from __future__ import annotations

import ipaddress
import re

from handlers.domain.model import DomainInputError

_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


def normalize_domain(text: str) -> str:
    name = text.strip().rstrip(".").lower()
    labels = name.split(".")
    if (
        not name
        or len(name) > 253
        or len(labels) < 2
        or not all(_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise DomainInputError(f"{text!r} is not a domain name (e.g. example.com)")
    return name


def normalize_ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise DomainInputError(
            f"{text!r} is not an IP address (e.g. 192.0.2.10 or 2001:db8::25)"
        ) from None


def normalize_selector(text: str) -> str:
    name = text.strip().lower()
    if not name or not all(_LABEL.match(label) for label in name.split(".")):
        raise DomainInputError(f"{text!r} is not a DKIM selector (e.g. default or s2048)")
    return name


def parse_nameserver(text: str) -> tuple[str, int]:
    """'192.0.2.53', '192.0.2.53:5353', '[2001:db8::53]:5353' → (ip, port); ValueError if not."""
    raw = text.strip()
    host, port = raw, 53
    if raw.startswith("["):
        host, _, rest = raw[1:].partition("]")
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise ValueError(f"nameserver {raw!r}: expected [IPv6]:PORT")
            port = int(rest[1:])
    elif raw.count(":") == 1:
        host, _, port_text = raw.partition(":")
        if not port_text.isdigit():
            raise ValueError(f"nameserver {raw!r}: the port must be a number")
        port = int(port_text)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"nameserver {raw!r}: expected an IP address, optionally with :PORT "
            "(e.g. 127.0.0.1:5353 or [::1]:53)"
        ) from None
    if not 0 < port < 65536:
        raise ValueError(f"nameserver {raw!r}: port must be 1 to 65535")
    return str(address), port
