"""Which queued messages an admin means: all mail of a sender, a SASL account or a client."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from handlers.queue.model import Origin, QueuedMessage

SELECTION_KINDS = ("sender", "account", "client")


class SelectionError(ValueError):
    """The selection cannot be understood (one line saying why)."""


@dataclass(frozen=True)
class Selection:
    kind: str
    value: str  # lower-case sender/account; a network for client

    def matches(self, message: QueuedMessage, origin: Origin | None) -> bool:
        if self.kind == "sender":
            return message.sender.lower() == self.value
        if origin is None:
            return False
        if self.kind == "account":
            return origin.sasl_username.lower() == self.value
        try:
            return ipaddress.ip_address(origin.client_address) in ipaddress.ip_network(self.value)
        except ValueError:
            return False

    @property
    def needs_origins(self) -> bool:
        return self.kind != "sender"

    def __str__(self) -> str:
        return f"{self.kind} {self.value}"


def parse_selection(kind: str, value: str) -> Selection:
    kind = kind.lower()
    if kind not in SELECTION_KINDS:
        raise SelectionError(f"select by {', '.join(SELECTION_KINDS)}, not {kind!r}")
    value = value.strip()
    if not value or any(c.isspace() or not c.isprintable() for c in value) or len(value) > 320:
        raise SelectionError(f"{kind}: give one address, account or IP/CIDR")
    if kind == "client":
        try:
            network = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise SelectionError(f"client: {value!r} is not an IP address or CIDR") from None
        return Selection(kind, str(network))
    if kind == "sender" and value in ("<>", '""'):
        return Selection(kind, "")
    return Selection(kind, value.lower())
