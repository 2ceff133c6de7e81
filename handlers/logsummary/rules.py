"""pflogsumm's classification rules (Debian pflogsumm 1.1.5), restated as small pure functions.

The summary promises the same numbers and the same reason groups as pflogsumm, so the fiddly parts
(host/domain extraction, reason trimming, reject-reason grouping) live here, one function each, with
the rule they follow in the docstring.
"""

from __future__ import annotations

import re

_DOMAIN_IPV4 = re.compile(r"^([^\[]*)\[((?:\d{1,3}\.){3}\d{1,3})\]")
_DOMAIN_SLASH = re.compile(r"^([^/]*)/([0-9a-f.:]+)", re.IGNORECASE)
_DOMAIN_ANY = re.compile(r"^([^\[\(/]*)[\[\(/]([^\]\)]+)[\]\)]:?\d*$")
_DOMAIN_TAIL = re.compile(r"^(.*)\.([^.]+)\.([^.]{3}|[^.]{2,3}\.[^.]{2})$")


def host_domain(client: str) -> str:
    """The "host/domain" pflogsumm files a client under (its gimme_domain).

    `unknown[192.0.2.1]` → `192.0.2.1`; `mail.example.co.uk[…]` → `example.co.uk` (the last two
    labels, three when the top level is a two-letter country code under a short second level).
    """
    match = _DOMAIN_IPV4.match(client) or _DOMAIN_SLASH.match(client)
    if match is None:
        match = _DOMAIN_ANY.match(client)
        if match is None:
            return ""
    domain, address = match.group(1), match.group(2)
    if domain in ("", "unknown"):
        return address
    tail = _DOMAIN_TAIL.match(domain)
    if tail:
        return f"{tail.group(2)}.{tail.group(3)}".lower()
    return domain


def client_address(client: str) -> str:
    """The IP inside `name[ip]` (or `name[ip]:port`); empty when there is none."""
    start = client.find("[")
    if start < 0:
        return ""
    end = client.find("]", start)
    return client[start + 1 : end] if end > start else ""


def lower_domain(address: str) -> str:
    """pflogsumm lowercases everything from the first `@` on, and leaves the local part alone."""
    at = address.find("@")
    if at < 0 or at == len(address) - 1:
        return address
    return address[:at] + address[at:].lower()


def recipient_domain(address: str) -> str:
    """Domain of a recipient: what follows the first `@` when there is a local part, else all."""
    at = address.find("@")
    return address[at + 1 :] if at > 0 else address


def sender_domain(address: str) -> str | None:
    """Domain of a sender, or None when the address has no `local@domain` shape."""
    at = address.find("@")
    if at > 0 and at < len(address) - 1:
        return address[at + 1 :]
    return None


def trim(text: str, limit: int) -> str:
    """pflogsumm's string_trimmer: cut to limit-3 characters plus "..."."""
    return text[: limit - 3] + "..." if len(text) > limit else text


_SAID = re.compile(r"^.* said: ")
_UP_TO_COLON = re.compile(r"^.*?: *")


def trim_said(text: str, limit: int) -> str:
    """pflogsumm's said_string_trimmer: drop "host said:" and leading "x:" parts until it fits."""
    while len(text) > limit:
        if _SAID.match(text):
            text = _SAID.sub("", text, count=1)
        elif ":" in text:
            text = _UP_TO_COLON.sub("", text, count=1)
        else:
            return text[: limit - 3] + "..."
    return text


_LEADING_CODE = re.compile(r"^\d{3} ")


def deferral_reason(text: str) -> str:
    """Deferral reason as pflogsumm groups it (trimmed to 65, no SMTP code, no "connect to")."""
    text = _LEADING_CODE.sub("", trim_said(text, 65), count=1)
    return text[len("connect to ") :] if text.startswith("connect to ") else text


def bounce_reason(text: str) -> str:
    """Bounce reason as pflogsumm groups it (trimmed to 66, no SMTP code)."""
    return _LEADING_CODE.sub("", trim_said(text, 66), count=1)


_REJECT_PARTS = re.compile(r"^.* \b(?:reject(?:_warning)?|hold|discard): (\S+) from (\S+?): (.*)$")
_R_ANGLE = re.compile(r"^(\d{3} <).*?(>:)")
_R_PROTOCOL = re.compile(r"^(?:\d{3} \d\.\d\.\d )(Protocol error);.*$")
_R_FIRST = re.compile(r"^(?:.*?[:;] )(?:\[[^\]]+\] )?([^;,]+)[;,].*$")
_R_ADDRESS = re.compile(r"^((?:Sender|Recipient) address rejected: [^:]+):.*$")
_R_BLOCKED = re.compile(r"(client|Client host|Sender address) .+? blocked")
_R_MAIL = re.compile(r"^\d{3} (?:<.+>: )?([^;:]+)[;:]?.*$")
_R_OTHER = re.compile(r"^(?:.*[:;] )?([^,]+).*$")
_R_TO = (
    re.compile(r"to=<([^>]+)>"),
    re.compile(r"\d{3} <([^>]+)>: User unknown "),
    re.compile(r"to=<(.*?)(?:[, ]|$)"),
)
_R_FROM = re.compile(r"from=<([^>]+)>")
_R_PIPELINING = re.compile(r"^.*?\d{3} (Improper use of SMTP command pipelining);.*$")
_R_SIZE = re.compile(r"^.*?\d{3} (Message size exceeds fixed limit);.*$")
_R_CONFIG = re.compile(r"^.*?\d{3} (Server configuration (?:error|problem));.*$")
_R_SOURCE = re.compile(r"^.+? from (\S+?):.*$")


def smtpd_reject(text: str) -> tuple[str, str, str, str, str, str]:
    """Splits an smtpd reject/reject_warning/hold/discard line the way pflogsumm reports it.

    Returns (stage, reason, key, client, sender, recipient): stage is RCPT/MAIL/DATA/CONNECT/…,
    reason the grouped reason ("Relay access denied", "Recipient address rejected: User unknown in
    local recipient table", …), key what pflogsumm lists under it (client host/domain, recipient or
    sender), client the raw `name[ip]` text.
    """
    parts = _REJECT_PARTS.match(text)
    if parts is None:
        return "", "", "", "", "", ""
    stage, client, rest = parts.group(1), parts.group(2), parts.group(3)
    reason = rest
    if stage in ("RCPT", "DATA", "CONNECT"):
        reason = _R_ANGLE.sub(r"\1\2", reason, count=1)
        reason = _R_PROTOCOL.sub(r"\1", reason, count=1)
        reason = _R_FIRST.sub(r"\1", reason, count=1)
        reason = _R_ADDRESS.sub(r"\1", reason, count=1)
        reason = _R_BLOCKED.sub("blocked", reason, count=1)
    elif stage == "MAIL":
        reason = _R_MAIL.sub(r"\1", reason, count=1)
    else:
        reason = _R_OTHER.sub(r"\1", reason, count=1)
    recipient = "<>"
    for pattern in _R_TO:
        found = pattern.search(rest)
        if found and found.group(1):
            recipient = found.group(1)
            break
    found = _R_FROM.search(rest)
    sender = found.group(1) if found else "<>"
    if reason.startswith("Sender address rejected:"):
        key = sender
    elif reason.startswith("Recipient address rejected:") or re.match(
        r"^User unknown( |$)", reason
    ):
        key = recipient
    elif _R_PIPELINING.match(reason):
        reason = _R_PIPELINING.sub(r"\1", reason, count=1)
        source = _R_SOURCE.match(text)
        key = source.group(1) if source else ""
    elif _R_SIZE.match(reason):
        reason = _R_SIZE.sub(r"\1", reason, count=1)
        key = host_domain(client)
    elif _R_CONFIG.match(reason):
        reason = _R_CONFIG.sub(r"(Local) \1", reason, count=1)
        key = host_domain(client)
    else:
        key = host_domain(client)
    return stage, reason, key, client, sender, recipient


_CLEANUP = re.compile(
    r"\b((?:milter-)?reject|warning|hold|discard): (header|body|END-OF-MESSAGE) (.*)$"
)
_CLEANUP_TAIL = re.compile(r"( from \S+?)?; from=<.*$")


def cleanup_action(body: str) -> tuple[str, str, str, str, str] | None:
    """A cleanup(8) header/body check action: (action, part, text, client, sender), or None.

    action is reject/warning/hold/discard (milter-reject counts as reject), part header/body/
    END-OF-MESSAGE, text the matched header or body trimmed as pflogsumm shows it.
    """
    found = _CLEANUP.search(body)
    if found is None:
        return None
    action, part, rest = found.group(1), found.group(2), found.group(3)
    client_match = re.search(r" from (\S+?); from=<([^>]*)>", rest)
    text = trim(_CLEANUP_TAIL.sub("", rest, count=1), 64)
    if action == "milter-reject":
        action = "reject"
    client = client_match.group(1) if client_match else ""
    sender = client_match.group(2) if client_match else ""
    return action, part, text, client, sender
