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
    return raw.decode("utf-8", "replace") if raw else ""


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


_PAIR = re.compile(rb"([^=\n]+)=([^\n]*)\n")


class RequestReader:
    """Incremental, bounded parser: feed() bytes as they arrive, get whole requests back.

    Accepts LF or CRLF line ends (Exim's readsocket users type either). Raises MalformedRequest on a
    line over MAX_LINE, a request over MAX_REQUEST or MAX_ATTRIBUTES, a line without '=' or with an
    empty name, or a request without request=smtpd_access_policy; the reader is then unusable
    (close the peer). Whole requests are cut and split with C-level bytes and regex operations:
    this is the service's hot path.
    """

    __slots__ = ("_buffer", "_checked")

    def __init__(self) -> None:
        self._buffer = b""
        self._checked = 0  # how much of an unfinished request's lines is already validated

    @property
    def pending(self) -> bool:
        """A request has begun but not ended (a half request when the peer goes away)."""
        return bool(self._buffer)

    def feed(self, data: bytes) -> list[PolicyRequest]:
        buffer = self._buffer + data if self._buffer else data
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n")
        requests: list[PolicyRequest] = []
        while True:
            if buffer.startswith(b"\n"):
                buffer = buffer.lstrip(b"\n")  # stray empty lines between requests carry nothing
            end = buffer.find(b"\n\n")
            if end < 0:
                break
            block = buffer[: end + 1]
            buffer = buffer[end + 2 :]
            self._checked = 0
            requests.append(parse_block(block))
        if len(buffer) > MAX_REQUEST or len(buffer) - buffer.rfind(b"\n") - 1 > MAX_LINE:
            raise MalformedRequest("line or request too long")
        # an unfinished request: reject garbage now, not when (if ever) its empty line comes;
        # only the lines completed since the last call are looked at
        complete = buffer.rfind(b"\n") + 1
        if complete > self._checked:
            lines = buffer[self._checked : complete]
            if len(_PAIR.findall(lines)) != lines.count(b"\n"):
                raise MalformedRequest("a line that is not name=value")
            self._checked = complete
        self._buffer = buffer
        return requests


def parse_block(block: bytes) -> PolicyRequest:
    """One request's lines, each ending in a newline, without the empty line."""
    if len(block) > MAX_REQUEST:
        raise MalformedRequest("request too large")
    pairs = _PAIR.findall(block)
    if len(pairs) != block.count(b"\n"):
        raise MalformedRequest("a line that is not name=value")
    if len(pairs) > MAX_ATTRIBUTES:
        raise MalformedRequest("too many attributes")
    if len(block) > MAX_LINE and max(len(n) + len(v) + 1 for n, v in pairs) > MAX_LINE:
        raise MalformedRequest(f"line longer than {MAX_LINE} bytes")
    return build_request(dict(pairs))


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
