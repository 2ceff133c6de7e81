"""`[policy] listen` values: TCP host:port (IPv6 in brackets) or unix:/path, comma-separated."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


class ListenError(ValueError):
    """A listen value that is not host:port or unix:/path (the message names it)."""


@dataclass(frozen=True)
class Endpoint:
    kind: str  # "tcp" | "unix"
    host: str = ""
    port: int = 0
    path: str = ""

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"unix:{self.path}"
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_endpoint(text: str) -> Endpoint:
    value = text.strip()
    if value.startswith("unix:"):
        path = value[5:]
        if not path.startswith("/"):
            raise ListenError(f"policy.listen: {value!r}: a unix socket needs an absolute path")
        return Endpoint("unix", path=path)
    if value.startswith("["):
        host, sep, port = value[1:].partition("]:")
        if not sep:
            raise ListenError(f"policy.listen: {value!r}: expected [IPv6]:port")
    else:
        host, sep, port = value.rpartition(":")
        if not sep:
            raise ListenError(f"policy.listen: {value!r}: expected host:port or unix:/path")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ListenError(f"policy.listen: {value!r}: {host!r} is not an IP address") from None
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ListenError(f"policy.listen: {value!r}: {port!r} is not a port")
    return Endpoint("tcp", host=host, port=int(port))


def parse_listen(text: str) -> list[Endpoint]:
    """Every endpoint in a listen value; empty text: none (no policy service)."""
    return [parse_endpoint(part) for part in text.replace(" ", ",").split(",") if part.strip()]
