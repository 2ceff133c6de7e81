"""Postfix log lines → summary events, classified the way pflogsumm classifies them.

The framing (timestamp, host, syslog tag) is stripped by `scan.py`; this module sees the program
(`smtpd`, `qmgr`, …, the last part of `postfix/submission/smtpd`), the pid and the message text.
Cheap string tests decide what a line is before any regular expression runs: most lines are
`connect`, `client=`, `from=<…>, size=`, `to=<…>, status=` or `removed`, handled with `find`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from handlers.logsummary.rules import (
    bounce_reason,
    cleanup_action,
    deferral_reason,
    smtpd_reject,
    trim,
)
from handlers.logsummary.summary import Summary
from handlers.numbers import digits_or_zero

_DELIVERY = re.compile(
    r"to=<([^>]*)>, (?:orig_to=<[^>]*>, )?relay=([^,]+), (?:conn_use=[^,]+, )?delay=([^,]+), "
    r"(?:delays=[^,]+, )?(?:dsn=[^,]+, )?status=(\S+)(.*)$"
)
_FROM_SIZE = re.compile(r"from=<([^>]*)>, size=(\d+)", re.ASCII)
_DEFERRED = re.compile(r", status=deferred \(([^\)]+)")
_BOUNCED = re.compile(r", status=bounced \((.+)\)")
_SMTP_CONNECT_1 = re.compile(r".* connect to (\S+?): ([^;]+); address \S+ port.*$")
_SMTP_CONNECT_2 = re.compile(r".* connect to ([^[]+)\[\S+?\]: (.+?) \(port \d+\)$")
_SASL_FAILED = re.compile(r"^(\S+): SASL (\S+) authentication failed: ?(.*)$")
_WORD = re.compile(r"\w+$")
_SMTPD_ACTIONS = ("reject: ", "reject_warning: ", "hold: ", "discard: ")
# "queue IDs" that are really pflogsumm keywords; a fast path never handles these
_KEYWORDS = frozenset(("warning", "fatal", "panic", "reject", "reject_warning", "hold", "discard"))
_DELIVERY_AT = re.compile(
    r"to=<([^>]*)>, (?:orig_to=<[^>]*>, )?relay=([^,]+), (?:conn_use=[^,]+, )?delay=([^,]+), "
    r"(?:delays=[^,]+, )?(?:dsn=[^,]+, )?status=(\S+)"
)
# A message refused or dropped once it has a queue ID is deleted by cleanup(8) and the queue
# manager never sees it, so no `removed` line follows: the reject itself ends the queue ID's life.
# Only a reject at the end of the SMTP transaction (DATA, END-OF-MESSAGE) or in cleanup's header/
# body checks ends the message; a rejected RCPT with a queue ID leaves the other recipients going.
# "hold" keeps the message (in the hold queue), so its state stays.
_MESSAGE_ENDING = frozenset(("reject", "discard"))
_LAST_STAGES = frozenset(("DATA", "END-OF-MESSAGE"))
# How long after a chunk's start a message-id line proves the message began in the chunk (the
# longest plausible gap between smtpd's client= line and cleanup's message-id line)
BIRTH_GRACE_SECONDS = 3600
# Programs whose lines are mostly one or two shapes get a fast path (see PostfixParser.handler_for)
DELIVERY_AGENTS = frozenset(
    ("smtp", "lmtp", "local", "virtual", "error", "retry", "pipe", "discard")
)


class PostfixParser:
    """Turns the message part of Postfix log lines into `Summary` events."""

    def __init__(self, summary: Summary, seconds_of: Callable[[str], int]) -> None:
        self.summary = summary
        # time of a line in seconds (for smtpd connection durations); depends on the framing
        self.seconds_of = seconds_of
        self.chunk_start: int | None = None  # time of the first message-id line (partial runs)

    def handler_for(self, cmd: str) -> Callable[[str, str, str, int, str], None]:
        """The fastest correct handler for a program: a fast path for its common lines that hands
        anything unusual to `handle`, which applies every rule in pflogsumm's order."""
        if cmd == "qmgr":
            return self.handle_qmgr
        if cmd in DELIVERY_AGENTS:
            return self.handle_delivery_agent
        if cmd == "smtpd":
            return self.handle_smtpd
        if cmd == "cleanup":
            return self.handle_cleanup
        return self.handle

    def handle_qmgr(self, cmd: str, pid: str, body: str, hour: int, line: str) -> None:
        colon = body.find(": ")
        if colon > 0 and body.find(" ") == colon + 1:
            if body.startswith("removed", colon + 2):
                self.summary.on_removed(body[:colon])
                return
            if body.startswith("from=<", colon + 2):
                end = body.find(">", colon + 8)
                if end > 0 and body.startswith(", size=", end + 1):
                    size_end = body.find(",", end + 8)
                    size = body[end + 8 : size_end]
                    qid = body[:colon]
                    # ASCII only: int() refuses superscript digits that isdigit() accepts
                    if size.isascii() and size.isdigit() and qid not in _KEYWORDS:
                        nrcpt = 0
                        if body.startswith(" nrcpt=", size_end + 1):
                            digits = body[size_end + 8 : body.find(" ", size_end + 8)]
                            nrcpt = digits_or_zero(digits)
                        self.summary.on_message(qid, body[colon + 8 : end], int(size), nrcpt, line)
                        return
        self.handle(cmd, pid, body, hour, line)

    def handle_delivery_agent(self, cmd: str, pid: str, body: str, hour: int, line: str) -> None:
        colon = body.find(": ")
        if colon > 0 and body.find(" ") == colon + 1 and body.startswith("to=<", colon + 2):
            found = _DELIVERY_AT.match(body, colon + 2)
            qid = body[:colon]
            if found is not None and qid not in _KEYWORDS:
                recipient, relay, delay_text, status = found.groups()
                if status == "sent":
                    try:
                        delay = float(delay_text)
                    except ValueError:
                        delay = 0.0
                    self.summary.on_delivery(
                        qid,
                        hour,
                        cmd,
                        status,
                        recipient,
                        relay,
                        delay,
                        "",
                        "forwarded as " in body,
                        line,
                    )
                    return
        self.handle(cmd, pid, body, hour, line)

    def handle_smtpd(self, cmd: str, pid: str, body: str, hour: int, line: str) -> None:
        first = body[:1]
        if first == "c" and body.startswith("connect from "):
            self.summary.on_connect(pid, self.seconds_of(line))
            return
        if first == "d" and body.startswith("disconnect from "):
            tail = body[16:].rstrip("\n")
            auth = ""
            at = tail.find(" auth=")
            if at >= 0:
                auth = tail[at + 6 :].split(" ", 1)[0]
            self.summary.on_disconnect(pid, hour, self.seconds_of(line), tail, auth)
            return
        colon = body.find(": ")
        if colon > 0 and body.startswith("client=", colon + 2) and body.find(" ") == colon + 1:
            qid = body[:colon]
            if qid.isalnum() and qid not in _KEYWORDS:
                end = body.find(",", colon + 9)
                user = ""
                if end < 0:
                    client = body[colon + 9 :].rstrip("\n")
                else:
                    client = body[colon + 9 : end]
                    at = body.find("sasl_username=", end)
                    if at >= 0:
                        user = body[at + 14 :].split(",", 1)[0].rstrip("\n")
                self.summary.on_received(qid, hour, client, user, line)
                return
        self.handle(cmd, pid, body, hour, line)

    def handle_cleanup(self, cmd: str, pid: str, body: str, hour: int, line: str) -> None:
        colon = body.find(": ")
        if colon > 0 and body.startswith("message-id=", colon + 2) and body.find(" ") == colon + 1:
            if self.summary.partial:
                self._queue_file_created(body[:colon], line)
            return  # nothing pflogsumm counts
        self.handle(cmd, pid, body, hour, line)

    def _queue_file_created(self, qid: str, line: str) -> None:
        """In a chunk that starts mid-log, cleanup's message-id line marks a message as new once we
        are well past the chunk's start: its client= line (if any) precedes it by at most one SMTP
        exchange, so it is in this chunk too. Without this, every bounce notification (no client=
        line) would wait for the merge, and the wait list would grow with the log."""
        moment = self.seconds_of(line)
        if self.chunk_start is None:
            self.chunk_start = moment
        elif moment - self.chunk_start > BIRTH_GRACE_SECONDS:
            self.summary.on_created(qid)

    def handle(self, cmd: str, pid: str, body: str, hour: int, line: str) -> None:
        summary = self.summary
        # pflogsumm's "queue ID": the text up to the first colon or space ("NOQUEUE", "warning",
        # "connect", "4E86920C11A"); `rest` is what follows "QUEUEID: ".
        colon = body.find(":")
        if colon < 0:
            colon = len(body)
        space = body.find(" ", 0, colon)
        if space < 0:
            qid = body[:colon]
            rest = body[colon + 2 :] if body.startswith(" ", colon + 1) else ""
        else:
            qid = body[:space]
            rest = ""

        if cmd == "cleanup" and (
            ": header " in body or ": body " in body or ": END-OF-MESSAGE " in body
        ):
            found = cleanup_action(body)
            if found is not None:
                action, part, text, client, _sender = found
                summary.on_reject(
                    "reject_warning" if action == "warning" else action,
                    hour,
                    "cleanup",
                    part,
                    text,
                    client,
                    line,
                )
                if action in _MESSAGE_ENDING and qid.isalnum() and qid != "NOQUEUE":
                    summary.on_removed(qid)
                return
        if cmd == "bounce" and " notification: " in body:
            # "OLDQID: sender non-delivery notification: NEWQID": the bounce daemon created a
            # new message (it has no client= or pickup line). Knowing it was born here keeps a
            # chunk of a parallel run from treating it as a leftover from the previous chunk.
            summary.on_created(body.rsplit(" ", 1)[-1])
            return
        if qid == "warning":
            text = body[body.rfind("warning: ") + 9 :].rstrip("\n")
            summary.on_warning(cmd, trim(text, 66))
            if "authentication failed" in text:
                sasl = _SASL_FAILED.match(text)
                if sasl is not None:
                    user = ""
                    at = text.find("sasl_username=")
                    if at >= 0:
                        user = text[at + 14 :].split(",", 1)[0].strip()
                    summary.on_sasl_failure(sasl.group(1), sasl.group(2), user, line)
            return
        if qid == "fatal":
            summary.on_fatal(cmd, trim(body[body.rfind("fatal: ") + 7 :].rstrip("\n"), 66))
            return
        if qid == "panic":
            summary.on_panic(cmd, trim(body[body.rfind("panic: ") + 7 :].rstrip("\n"), 66))
            return
        if qid in ("reject", "reject_warning", "hold", "discard"):
            self._smtpd_reject(qid, hour, line)
            return
        if cmd == "master":
            at = body.rfind(": ")
            summary.on_master_message((body[at + 2 :] if at >= 0 else body).rstrip("\n"))
            return
        if cmd == "smtpd" or cmd == "postscreen":
            if rest.startswith("client=") and _WORD.match(qid):
                end = rest.find(",")
                client = rest[7:end] if end >= 0 else rest[7:].rstrip("\n")
                user = ""
                if end >= 0:
                    at = rest.find("sasl_username=", end)
                    if at >= 0:
                        user = rest[at + 14 :].split(",", 1)[0].rstrip("\n")
                summary.on_received(qid, hour, client, user, line)
                return
            if rest.startswith(_SMTPD_ACTIONS) and _WORD.match(qid):
                action = rest[: rest.find(":")]
                stage = self._smtpd_reject(action, hour, line)
                if action in _MESSAGE_ENDING and stage in _LAST_STAGES and qid != "NOQUEUE":
                    summary.on_removed(qid)
                return
            if cmd != "smtpd":
                return
            if body.startswith("connect from "):
                summary.on_connect(pid, self.seconds_of(line))
            elif body.startswith("disconnect from "):
                tail = body[16:].rstrip("\n")
                auth = ""
                at = tail.find(" auth=")
                if at >= 0:
                    auth = tail[at + 6 :].split(" ", 1)[0]
                summary.on_disconnect(pid, hour, self.seconds_of(line), tail, auth)
            return
        # postsuper logs `removed` for a message the administrator deleted (e.g. a held one)
        if (cmd == "qmgr" or cmd == "postsuper") and rest.startswith("removed"):
            summary.on_removed(qid)
            return
        if "from=<" in body and ", size=" in body:
            found = _FROM_SIZE.search(line)
            if found is not None:
                nrcpt = 0
                at = body.find("nrcpt=")
                if at >= 0:
                    digits = body[at + 6 :].split(" ", 1)[0]
                    nrcpt = digits_or_zero(digits)
                summary.on_message(qid, found.group(1), int(found.group(2)), nrcpt, line)
                return
        if "to=<" in body and "status=" in body:
            found = _DELIVERY.search(line)
            if found is not None:
                self._delivery(qid, cmd, hour, found, line)
                return
        if cmd == "pickup" and (": sender=" in body or ": uid=" in body):
            summary.on_pickup(qid, hour, line)
            return
        if cmd == "smtp" and " connect to " in body:
            text = line.rstrip("\n")
            found = _SMTP_CONNECT_1.match(text) or _SMTP_CONNECT_2.match(text)
            if found is not None:
                summary.on_smtp_failure(found.group(2).lower(), found.group(1))

    def _delivery(self, qid: str, cmd: str, hour: int, found: re.Match[str], line: str) -> None:
        recipient, relay, delay_text, status, tail = found.groups()
        try:
            delay = float(delay_text)
        except ValueError:
            delay = 0.0
        detail = ""
        forwarded = False
        if status == "sent":
            forwarded = "forwarded as " in tail
        elif status == "deferred":
            reason = _DEFERRED.search(line)
            detail = deferral_reason(reason.group(1)) if reason else ""
        elif status == "bounced":
            reason = _BOUNCED.search(line)
            detail = bounce_reason(reason.group(1)) if reason else ""
        else:
            return  # other statuses (e.g. "expired") are not counted by pflogsumm
        self.summary.on_delivery(
            qid, hour, cmd, status, recipient, relay, delay, detail, forwarded, line
        )

    def _smtpd_reject(self, action: str, hour: int, line: str) -> str:
        """Counts the reject; returns its SMTP stage (RCPT, DATA, END-OF-MESSAGE, …)."""
        stage, reason, key, client, _sender, _recipient = smtpd_reject(line.rstrip("\n"))
        self.summary.on_reject(action, hour, stage, reason, key, client, line)
        return stage
