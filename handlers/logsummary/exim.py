"""Exim main-log lines → summary events.

Follows the main-log format in the Exim specification ("Log files"): after the timestamp (and the
optional `[pid]`) comes the message ID and a flag — `<=` arrival, `=>` delivery, `->` further
address in the same delivery, `*>` suppressed delivery, `**` failed (bounce), `==` deferred — then
fields: `H=` host (`name (helo) [ip]:port`), `A=` authenticator:user, `P=` protocol, `S=` size,
`R=` router, `T=` transport. Lines without a message ID carry rejections (`rejected RCPT …`),
authenticator failures and connection notes.
"""

from __future__ import annotations

import re

from handlers.logsummary.summary import Summary
from handlers.numbers import digits_or_zero

_MESSAGE_ID = re.compile(r"^[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4}$")
_HOST = re.compile(r"\bH=(\S+)?(?: \(([^)]*)\))? ?\[([0-9A-Fa-f:.]+)\](?::\d+)?")
_FIELD = re.compile(r"\b([A-Z])=(\"(?:[^\"\\]|\\.)*\"|\S+)")
_REJECTED = re.compile(
    r"\brejected (RCPT|MAIL|DATA|EHLO or HELO|EHLO|HELO|VRFY|after DATA|connection)\b ?(.*)$"
)
# Connections refused before any command (host_reject_connection, too many, load average)
_REFUSED = re.compile(
    r"^(?:refused connection from .*?\((.*)\)|[Cc]onnection from .*? refused:? ?(.*))$"
)
_ADDRESS = re.compile(r"\[([0-9A-Fa-f:.]+)\]")
# "SMTP call from H dropped: too many unrecognized commands (last was "X")": Exim hung up
_DROPPED = re.compile(
    r"^SMTP call from .*? dropped: (too many (?:nonmail commands|unrecognized commands|"
    r"syntax or protocol errors))"
)
# What a reason says once the addresses and the client are taken out, so that one reason is
# one line of the report however many senders or message sizes it hit
_REASON_NOISE = (
    re.compile(r"^FROM:<[^>]*>\s*"),  # rejected MAIL FROM:<sender> …
    re.compile(r"^<[^>]*>:?\s*"),  # rejected RCPT <recipient>: …
    re.compile(r"^(?:H=)?(?:\S+ )?(?:\([^)]*\) )?\[[0-9A-Fa-f:.]+\](?::\d+)?:?\s*"),  # H=…
    re.compile(r"^:\s*"),
)
_SIZE = re.compile(r"\s*\bsize=\d+")
# The flags after a message ID (see the module docstring); anything else there is a note about
# the message, such as a rejection after DATA
_FLAGS = frozenset(("<=", "=>", "->", "*>", "**", "==", "Completed"))
_AUTH_FAILED = re.compile(r"^(\S+) authenticator failed for (.*?)\[([0-9A-Fa-f:.]+)\]")
_SET_ID = re.compile(r"\(set_id=([^)]*)\)")
# Transport names that deliver into local mailboxes (Debian's exim4 config and the spec's examples)
_LOCAL_TRANSPORT_WORDS = ("local", "lmtp", "appendfile", "maildir", "mail_spool", "dovecot")


def _fields(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for match in _FIELD.finditer(text):
        found.setdefault(match.group(1), match.group(2).strip('"'))
    return found


def _client(text: str) -> str:
    """`H=name (helo) [ip]` → `name[ip]` (`unknown[ip]` without a name), as Postfix writes it."""
    host = _HOST.search(text)
    if host is None:
        return ""
    name = host.group(1) or "unknown"
    if name.startswith("("):
        name = "unknown"
    return f"{name}[{host.group(3)}]"


def _reason(text: str) -> str:
    """`FROM:<a@b> H=(helo) [ip]:port: message too big: size=5062 max=2048` → `message too big:
    max=2048`: the reason without the addresses, the client and the message size."""
    reason = text
    for pattern in _REASON_NOISE:
        reason = pattern.sub("", reason, count=1)
    reason = _SIZE.sub("", reason.split(";", 1)[0]).strip()
    return reason or "rejected"


class EximParser:
    """Turns the text after an Exim timestamp into `Summary` events."""

    def __init__(self, summary: Summary) -> None:
        self.summary = summary
        self._recipients: dict[str, int] = {}

    def handle(self, body: str, hour: int, line: str) -> None:
        text = body.rstrip("\n")
        if text.startswith("["):  # "[pid] " when log_selector has +pid
            close = text.find("] ")
            if close > 0:
                text = text[close + 2 :]
        parts = text.split(" ", 2)
        if len(parts) >= 2 and _MESSAGE_ID.match(parts[0]):
            if parts[1] in _FLAGS:
                rest = parts[2] if len(parts) > 2 else ""
                self._message_line(parts[0], parts[1], rest, hour, line)
                return
            # "<id> H=… F=<…> rejected after DATA: …": a rejection that carries a message ID
            text = text[len(parts[0]) + 1 :]
        self._other_line(text, hour, line)

    def _message_line(self, qid: str, flag: str, rest: str, hour: int, line: str) -> None:
        summary = self.summary
        if flag == "<=":
            sender, _, fields_text = rest.partition(" ")
            fields = _fields(fields_text)
            size = digits_or_zero(fields.get("S", ""))
            client = _client(fields_text)
            user = ""
            auth = fields.get("A", "")
            if ":" in auth:
                user = auth.split(":", 1)[1]
            if client:
                summary.on_received(qid, hour, client, user, line)
            else:
                summary.on_pickup(qid, hour, line)
            summary.on_message(qid, "" if sender == "<>" else sender, size, 0, line)
        elif flag in ("=>", "->", "**", "=="):
            recipient = rest.split(" ", 1)[0]
            if recipient.startswith("<") and recipient.endswith(">"):
                recipient = recipient[1:-1]
            fields = _fields(rest)
            transport = fields.get("T", "")
            cmd = "smtp"
            if any(word in transport for word in _LOCAL_TRANSPORT_WORDS):
                cmd = "local"
            relay = _client(rest) or transport or fields.get("R", "")
            status, detail = "sent", ""
            if flag == "**":
                status = "bounced"
                detail = rest.partition(": ")[2] or rest
            elif flag == "==":
                status = "deferred"
                detail = rest.partition(" defer (")[2].partition("): ")[2] or rest
            if flag != "==":
                self._recipients[qid] = self._recipients.get(qid, 0) + 1
            summary.on_delivery(qid, hour, cmd, status, recipient, relay, 0.0, detail, False, line)
        elif flag == "Completed":
            count = self._recipients.pop(qid, 0)
            if count:
                summary.on_recipients_counted(qid, count, line)
            summary.on_removed(qid)

    def _other_line(self, text: str, hour: int, line: str) -> None:
        summary = self.summary
        rejected = _REJECTED.search(text)
        if rejected is not None:
            stage = rejected.group(1).split(" ")[-1]  # "after DATA" → DATA
            client = _client(text)
            summary.on_reject(
                "reject", hour, stage, _reason(rejected.group(2)), client or "unknown", client, line
            )
            return
        refused = _REFUSED.match(text)
        if refused is not None:
            detail = refused.group(1) or refused.group(2) or ""
            address = _ADDRESS.search(text)
            client = f"unknown[{address.group(1)}]" if address else ""
            reason = "connection refused" + (f": {_SIZE.sub('', detail).strip()}" if detail else "")
            summary.on_reject("reject", hour, "CONNECT", reason, client or "unknown", client, line)
            return
        dropped = _DROPPED.match(text)
        if dropped is not None:
            client = _client(text.replace("SMTP call from ", "H=", 1))
            summary.on_reject(
                "reject",
                hour,
                "CONNECT",
                "dropped: " + dropped.group(1),
                client or "unknown",
                client,
                line,
            )
            return
        failed = _AUTH_FAILED.match(text)
        if failed is not None:
            set_id = _SET_ID.search(text)
            summary.on_sasl_failure(
                f"unknown[{failed.group(3)}]",
                failed.group(1),
                set_id.group(1) if set_id else "",
                line,
            )
            return
        if text.startswith(("SMTP connection from", "SMTP call from", "Start queue run")) or (
            text.startswith("End queue run")
        ):
            return
        if "panic" in text.lower():
            summary.on_panic("exim", text[:66])
