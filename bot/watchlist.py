"""Validating and classifying what goes on the watch list (IPs, CIDRs, domains, mail servers)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from bot.store import WATCH_KINDS, Store
from handlers.numbers import NumberError, is_ascii_digits, parse_port

# what the blocklist check covers; watched servers are the relay check's
BLACKLIST_KINDS = ("ip", "cidr", "domain")

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class WatchValueError(ValueError):
    """A value that cannot go on the watch list; the message says why and what to type instead."""


@dataclass(frozen=True)
class WatchValue:
    kind: str
    value: str  # normalized: lower-case names, compressed IPs, networks with host bits cleared


def is_hostname(text: str) -> bool:
    name = text.rstrip(".").lower()
    if not name or len(name) > 253 or "." not in name:
        return False
    labels = name.split(".")
    return all(_LABEL.match(label) for label in labels) and not is_ascii_digits(labels[-1])


def split_host_port(text: str) -> tuple[str, int | None]:
    """'host', 'host:25', '192.0.2.1:25', '[2001:db8::1]:25' → (host, port or None)."""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise WatchValueError(f"{text!r}: missing ']' after the IPv6 address")
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise WatchValueError(f"{text!r}: expected [IPv6]:port")
        return host, _port(rest[1:], text)
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, _port(port, text)
    return text, None


def _port(text: str, whole: str) -> int:
    try:
        return parse_port(text)
    except NumberError:
        raise WatchValueError(f"{whole!r}: port must be a number from 1 to 65535") from None


def classify(text: str, kind: str | None = None) -> WatchValue:
    """Infers the kind (ip, cidr, domain, server) unless given; a name with a port is a server."""
    raw = text.strip()
    if not raw:
        raise WatchValueError("give an IP, a CIDR range, a domain or a mail server (host[:port])")
    if kind is not None and kind not in WATCH_KINDS:
        raise WatchValueError(f"kind must be one of {', '.join(WATCH_KINDS)}, not {kind!r}")
    if kind in (None, "ip", "cidr") and "/" in raw:
        try:
            network = ipaddress.ip_network(raw, strict=False)
        except ValueError:
            raise WatchValueError(
                f"{raw!r} is not a valid CIDR range (e.g. 192.0.2.0/24)"
            ) from None
        if network.num_addresses == 1:
            return WatchValue("ip", str(network.network_address))
        return WatchValue("cidr", str(network))
    if kind in (None, "ip", "server"):
        try:
            address = ipaddress.ip_address(raw)
        except ValueError:
            pass
        else:
            return WatchValue(kind or "ip", str(address))
    if kind in (None, "server"):
        host, port = split_host_port(raw)
        if port is not None or kind == "server":
            _check_host(host, raw)
            host = _normal_host(host)
            return WatchValue(
                "server",
                f"[{host}]:{port}" if ":" in host and port else f"{host}:{port}" if port else host,
            )
    if kind in (None, "domain") and is_hostname(raw):
        return WatchValue("domain", raw.rstrip(".").lower())
    raise WatchValueError(
        f"{raw!r} is not an IP, CIDR range, domain or host[:port]; e.g. 192.0.2.1, 192.0.2.0/24, "
        "example.com, mx.example.com:25"
    )


def _check_host(host: str, whole: str) -> None:
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    if not is_hostname(host):
        raise WatchValueError(f"{whole!r}: {host!r} is not a host name or IP address")


def _normal_host(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host.rstrip(".").lower()


def blacklist_targets(store: Store) -> list[str]:
    """The watch-list items the blocklist check covers: IPs, ranges and domains."""
    return [item.value for item in store.watch_list() if item.kind in BLACKLIST_KINDS]
