"""Postfix SMTP access policy delegation: requests in, answers out (SMTPD_POLICY_README).

A request is `name=value` lines ending with an empty line; an answer is `action=...` and an empty
line. The reader is incremental (bytes in, whole requests out) and bounded, so a peer cannot make
us buffer more than one request's worth; anything that is not that shape is `MalformedRequest`.

Answers come only from a fixed allow-list (`Answers`): DUNNO, REJECT with a 5.7.1 text, DEFER with
a 4.7.1 text, HOLD and 421 (end the session). Never OK: an OK placed before
reject_unauth_destination would make the server an open relay.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Postfix's own attribute values are bounded by line_length_limit (2048) and SMTP line sizes; a
# generous line bound still rejects a 1 MB line long before it is buffered whole.
MAX_LINE = 8192
MAX_REQUEST = 65536
MAX_ATTRIBUTES = 256

# The attributes the decision and the counters read; everything else is checked for shape and
# dropped without decoding (unknown attributes are ignored, as the protocol requires).
WANTED = {
    b"request": "request",
    b"protocol_state": "state",
    b"protocol_name": "protocol_name",
    b"sasl_username": "sasl_username",
    b"client_address": "client_address",
    b"client_name": "client_name",
    b"sender": "sender",
    b"recipient": "recipient",
    b"recipient_count": "recipient_count",
    b"size": "size",
    b"instance": "instance",
    b"policy_context": "policy_context",
}


class MalformedRequest(Exception):
    """The peer sent something that is not a policy request; the connection should be closed."""


@dataclass(slots=True)
class PolicyRequest:
    """The attributes we use, decoded; absent, empty and `0` values are "" or 0."""

    state: str = ""  # CONNECT, EHLO, HELO, MAIL, RCPT, DATA, END-OF-MESSAGE, VRFY, ETRN
    sasl_username: str = ""  # lower-cased
    client_address: str = ""  # "" also for Postfix's "unknown"
    client_name: str = ""
    sender: str = ""  # lower-cased; "" for the null sender <>
    recipient: str = ""  # lower-cased
    recipient_count: int = 0
    size: int = 0
    instance: str = ""
    policy_context: str = ""
    protocol_name: str = ""

    @property
    def sender_domain(self) -> str:
        return self.sender.rpartition("@")[2] if "@" in self.sender else ""

    @property
    def recipient_domain(self) -> str:
        return self.recipient.rpartition("@")[2] if "@" in self.recipient else ""


def _number(raw: bytes) -> int:
    # absent, empty, "0" and anything not a plain non-negative number all count as 0
    return int(raw) if raw.isdigit() and len(raw) < 19 else 0


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def build_request(attributes: dict[bytes, bytes]) -> PolicyRequest:
    """A PolicyRequest from raw attributes; MalformedRequest when it is not an access request."""
    if attributes.get(b"request") != b"smtpd_access_policy":
        raise MalformedRequest("missing request=smtpd_access_policy")
    get = attributes.get
    client = get(b"client_address", b"")
    return PolicyRequest(
        state=_text(get(b"protocol_state", b"")).upper(),
        sasl_username=_text(get(b"sasl_username", b"")).strip().lower(),
        client_address="" if client == b"unknown" else _text(client).strip().lower(),
        client_name=_text(get(b"client_name", b"")),
        sender=_text(get(b"sender", b"")).strip().lower(),
        recipient=_text(get(b"recipient", b"")).strip().lower(),
        recipient_count=_number(get(b"recipient_count", b"")),
        size=_number(get(b"size", b"")),
        instance=_text(get(b"instance", b"")),
        policy_context=_text(get(b"policy_context", b"")),
        protocol_name=_text(get(b"protocol_name", b"")),
    )


class RequestReader:
    """Incremental, bounded parser: feed() bytes as they arrive, get whole requests back.

    Accepts LF or CRLF line ends (Exim's readsocket users type either). Raises MalformedRequest on a
    line over MAX_LINE, a request over MAX_REQUEST or MAX_ATTRIBUTES, a line without '=', or a
    request without request=smtpd_access_policy; the reader is then unusable (close the peer).
    """

    __slots__ = ("_attributes", "_buffer", "_count", "_size")

    def __init__(self) -> None:
        self._buffer = b""
        self._attributes: dict[bytes, bytes] = {}
        self._size = 0  # bytes of the current request so far
        self._count = 0  # its lines so far

    @property
    def pending(self) -> bool:
        """A request has begun but not ended (a half request when the peer goes away)."""
        return bool(self._buffer or self._count)

    def feed(self, data: bytes) -> list[PolicyRequest]:
        buffer = self._buffer + data if self._buffer else data
        requests: list[PolicyRequest] = []
        start = 0
        attributes = self._attributes
        wanted = WANTED
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            line = buffer[start:end]
            self._size += end + 1 - start
            start = end + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            if len(line) > MAX_LINE:
                raise MalformedRequest(f"line longer than {MAX_LINE} bytes")
            if not line:
                if self._count:
                    requests.append(build_request(attributes))
                    attributes = self._attributes = {}
                    self._count = 0
                # else: a stray empty line between requests carries nothing
                self._size = 0
                continue
            name, sep, value = line.partition(b"=")
            if not sep or not name:
                raise MalformedRequest("a line that is not name=value")
            self._count += 1
            if self._size > MAX_REQUEST or self._count > MAX_ATTRIBUTES:
                raise MalformedRequest("request too large")
            if name in wanted:
                attributes[name] = value
        rest = buffer[start:]
        if len(rest) > MAX_LINE:
            raise MalformedRequest(f"line longer than {MAX_LINE} bytes")
        if self._size + len(rest) > MAX_REQUEST:
            raise MalformedRequest("request too large")
        self._buffer = rest
        return requests


# -- answers ---------------------------------------------------------------------------------

_UNSAFE = re.compile(r"[^\x20-\x7e]+")
_SPACES = re.compile(r"\s+")
MAX_TEXT = 200


def safe_text(text: str) -> str:
    """One printable-ASCII line: control characters, newlines and non-ASCII become spaces."""
    cleaned = _SPACES.sub(" ", _UNSAFE.sub(" ", text)).strip()
    return cleaned[:MAX_TEXT].rstrip()


def _with_code(text: str, klass: str, default_code: str, fallback: str) -> str:
    """text led by an enhanced status code of the right class (5.x.x for REJECT, 4.x.x DEFER)."""
    cleaned = safe_text(text) or fallback
    code, _, rest = cleaned.partition(" ")
    if re.fullmatch(r"[245]\.\d{1,3}\.\d{1,3}", code):
        cleaned = rest.strip() or fallback
        if code.startswith(klass):
            return f"{code} {cleaned}"
    return f"{default_code} {cleaned}"


def _strip_code(text: str) -> str:
    code, _, rest = text.partition(" ")
    return rest if re.fullmatch(r"[245]\.\d{1,3}\.\d{1,3}", code) else text


@dataclass(frozen=True)
class Answers:
    """The only answers the service can give, each a ready-to-send byte string."""

    dunno: bytes
    reject: bytes
    defer: bytes
    hold: bytes
    disconnect: bytes

    @classmethod
    def from_texts(cls, reject_text: str, defer_text: str, hold_text: str) -> Answers:
        reject = _with_code(reject_text, "5", "5.7.1", "Sending suspended")
        defer = _with_code(defer_text, "4", "4.7.1", "Sending rate exceeded, try again later")
        hold = safe_text(hold_text) or "held for review"
        return cls(
            dunno=b"action=DUNNO\n\n",
            reject=f"action=REJECT {reject}\n\n".encode("ascii"),
            defer=f"action=DEFER {defer}\n\n".encode("ascii"),
            hold=f"action=HOLD {hold}\n\n".encode("ascii"),
            disconnect=f"action=421 4.7.1 {_strip_code(reject)}\n\n".encode("ascii"),
        )

    def all(self) -> tuple[bytes, ...]:
        return (self.dunno, self.reject, self.defer, self.hold, self.disconnect)
