"""Parsing and validating containment requests: who (subject), what (action), how long, how fast.

Pure: words in, typed requests out, or a ContainmentError whose message is one line saying what to
type instead. The chat command and the CLI both parse here, so `/contain` and `relaywatch contain`
accept exactly the same things and store subjects in the same canonical form the policy service
compares against (lower-case names and addresses, compressed IPs, networks with host bits cleared).
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from handlers.policy.model import CONTAINMENT_ACTIONS, SUBJECT_KINDS

# What an admin may type for each subject kind.
KIND_WORDS: dict[str, str] = {
    "account": "account",
    "user": "account",
    "login": "account",
    "sasl": "account",
    "host": "host",
    "ip": "host",
    "client": "host",
    "network": "host",
    "sender": "sender",
    "from": "sender",
    "sender_domain": "sender_domain",
    "domain": "sender_domain",
}

# Networks wider than this are refused: a /15 of IPv4 is 131,072 addresses, far more than any
# compromised LAN; a /48 of IPv6 is one whole site. Wider blocks are typos or panics.
MIN_IPV4_PREFIX = 16
MIN_IPV6_PREFIX = 48
MAX_REASON_CHARS = 300
MAX_SUBJECT_CHARS = 254

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^(?:\d{1,6}[smhdw])+$")
_DURATION_PART = re.compile(r"(\d{1,6})([smhdw])")
_RATE = re.compile(r"^(\d{1,7})/(m|min|h|hr|hour|d|day)$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class ContainmentError(ValueError):
    """Input that cannot become a containment entry; the message is one line."""


@dataclass(frozen=True)
class Subject:
    kind: str  # one of SUBJECT_KINDS
    value: str  # canonical form, as stored and as the policy service compares it
    guessed: bool = False  # the kind was inferred from the value, not typed

    @property
    def label(self) -> str:
        return f"{self.kind.replace('_', ' ')} {self.value}"


@dataclass(frozen=True)
class ContainRequest:
    action: str  # one of CONTAINMENT_ACTIONS
    subject: Subject
    duration: timedelta
    limit_per_hour: int = 0  # throttle only
    cut_sessions: bool = False  # block only
    reason: str = ""
    duration_given: bool = False


@dataclass(frozen=True)
class ReleaseRequest:
    subject: Subject


@dataclass(frozen=True)
class ListRequest:
    include_history: bool = False


Request = ContainRequest | ReleaseRequest | ListRequest


@dataclass(frozen=True)
class Limits:
    """The [policy] settings a request is checked against."""

    default_expiry: timedelta = timedelta(hours=24)
    max_expiry: timedelta = timedelta(days=7)


# -- durations and rates ------------------------------------------------------------------------


def is_duration(word: str) -> bool:
    return bool(_DURATION.match(word.lower()))


def parse_duration(text: str) -> timedelta:
    """'90m', '24h', '7d', '1w', '1h30m' → timedelta; at least one minute."""
    word = text.strip().lower()
    if not _DURATION.match(word):
        raise ContainmentError(f"{text!r} is not a duration; write e.g. 90m, 24h, 7d or 1h30m")
    seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(word))
    if seconds < 60:
        raise ContainmentError(f"{text!r} is too short; the shortest duration is 1m")
    return timedelta(seconds=seconds)


def format_duration(span: timedelta) -> str:
    """timedelta → '1d 2h', '90m' → '1h 30m': the largest two units, for replies."""
    seconds = int(span.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return " ".join(parts[:2]) or f"{seconds}s"


def is_rate(word: str) -> bool:
    return bool(_RATE.match(word.lower()))


def parse_rate(text: str) -> int:
    """'20/h', '5/m', '480/d' → messages per hour (a per-day rate rounds up to whole per-hour)."""
    match = _RATE.match(text.strip().lower())
    if not match:
        raise ContainmentError(f"{text!r} is not a rate; write messages per hour, e.g. 20/h")
    count, unit = int(match.group(1)), match.group(2)
    if unit in ("m", "min"):
        per_hour = count * 60
    elif unit in ("d", "day"):
        per_hour = math.ceil(count / 24)
    else:
        per_hour = count
    if per_hour < 1:
        raise ContainmentError(f"{text!r}: a throttle must allow at least 1 message per hour")
    return per_hour


# -- subjects -----------------------------------------------------------------------------------


def kind_of_word(word: str) -> str | None:
    return KIND_WORDS.get(word.lower())


def guess_kind(text: str) -> str:
    """The kind a bare subject most likely means: an address or network is a host; anything
    else (an address-like login or a plain name) is a SASL account. A domain is never guessed:
    blocking every sender of a domain must be asked for by name (`sender_domain`)."""
    value = text.strip()
    if _as_network(value) is not None:
        return "host"
    if "@" not in value and is_domain(value):
        raise ContainmentError(
            f"{value!r}: say what it is, e.g. `account {value}` or `sender_domain {value}`"
        )
    return "account"


def parse_subject(kind: str | None, text: str) -> Subject:
    """Validates `text` as a subject of `kind` (None: guessed) and returns its canonical form."""
    raw = text.strip()
    if not raw:
        raise ContainmentError("name whom to contain: an account, a host, a sender or a domain")
    if len(raw) > MAX_SUBJECT_CHARS:
        raise ContainmentError(f"subject longer than {MAX_SUBJECT_CHARS} characters")
    if _CONTROL.search(raw) or any(c.isspace() for c in raw):
        raise ContainmentError("a subject cannot contain spaces or control characters")
    guessed = kind is None
    resolved = guess_kind(raw) if kind is None else kind
    if resolved not in SUBJECT_KINDS:
        raise ContainmentError(f"unknown subject kind {kind!r}; use {', '.join(SUBJECT_KINDS)}")
    value = {
        "account": _account,
        "host": _host,
        "sender": _sender,
        "sender_domain": _sender_domain,
    }[resolved](raw)
    return Subject(resolved, value, guessed)


def _account(raw: str) -> str:
    if any(c in raw for c in "<>\"'`,;"):
        raise ContainmentError(f"{raw!r} is not a SASL login name")
    # Postfix reports sasl_username as the client typed it; the usual back ends (Dovecot,
    # Cyrus with LDAP/SQL) treat logins case-insensitively, so case must not dodge a block.
    return raw.lower()


def _as_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    candidate = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        network = ipaddress.ip_network(candidate, strict=False)
    except ValueError:
        return None
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:  # ::ffff:192.0.2.1: Postfix reports the IPv4 form
            return ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}", strict=False)
    return network


def _host(raw: str) -> str:
    network = _as_network(raw)
    if network is None:
        raise ContainmentError(f"{raw!r} is not an IP address or CIDR range")
    minimum = MIN_IPV4_PREFIX if network.version == 4 else MIN_IPV6_PREFIX
    if network.prefixlen < minimum:
        raise ContainmentError(
            f"{network} is too wide (/{network.prefixlen}); the widest range is /{minimum}"
        )
    if network.is_loopback or network.overlaps(_LOOPBACK[network.version]):
        raise ContainmentError(
            f"{network} is loopback: local content filters and webmail submit from there, so "
            "blocking it stops the server's own mail; contain the account instead"
        )
    address = network.network_address
    if address.is_unspecified or address.is_multicast or _is_broadcast(network):
        raise ContainmentError(f"{network} is not a client address that can send mail")
    full = 32 if network.version == 4 else 128
    return str(address) if network.prefixlen == full else str(network)


_LOOPBACK = {
    4: ipaddress.ip_network("127.0.0.0/8"),
    6: ipaddress.ip_network("::1/128"),
}


def _is_broadcast(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    return network.version == 4 and network.network_address == ipaddress.ip_address(
        "255.255.255.255"
    )


def is_domain(text: str) -> bool:
    name = text.strip().rstrip(".").lower()
    try:
        name = name.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    if not name or len(name) > 253 or "." not in name:
        return False
    labels = name.split(".")
    return all(_LABEL.match(label) for label in labels) and not labels[-1].isdigit()


def _domain(text: str, whole: str) -> str:
    name = text.strip().rstrip(".").lower()
    if not is_domain(name):
        raise ContainmentError(f"{whole!r}: {text!r} is not a domain name")
    return name.encode("idna").decode("ascii")


def _sender(raw: str) -> str:
    address = raw[1:-1] if raw.startswith("<") and raw.endswith(">") else raw
    if not address:
        raise ContainmentError(
            "the null sender <> is used by every bounce; contain the account or host instead"
        )
    local, at, domain = address.rpartition("@")
    if not at or not local or any(c in local for c in "<>\"'`,;"):
        raise ContainmentError(f"{raw!r} is not an envelope sender address (local@domain)")
    return f"{local.lower()}@{_domain(domain, raw)}"


def _sender_domain(raw: str) -> str:
    return _domain(raw.removeprefix("@"), raw)


# -- whole requests -----------------------------------------------------------------------------


def parse_request(words: Sequence[str], limits: Limits) -> Request:
    """'block account carol@example.com 24h compromised password' and friends → a request.

    <action> [kind] <subject> [duration] [N/h] [--cut] [reason ...]
    release [kind] <subject>
    list [--all]
    """
    if not words:
        raise ContainmentError("say what to do: block, hold, throttle, release or list")
    verb = words[0].lower()
    if verb == "list":
        extra = [w for w in words[1:] if w.lower() not in ("--all", "all")]
        if extra:
            raise ContainmentError(f"list takes no subject (got {extra[0]!r}); try `list --all`")
        return ListRequest(include_history=len(words) > 1)
    if verb == "release":
        subject, rest = _subject_words(words[1:])
        if rest:
            raise ContainmentError(f"release takes only a subject (unexpected {rest[0]!r})")
        return ReleaseRequest(subject)
    if verb not in CONTAINMENT_ACTIONS:
        raise ContainmentError(
            f"unknown action {words[0]!r}; use block, hold, throttle, release or list"
        )
    subject, rest = _subject_words(words[1:])
    duration: timedelta | None = None
    limit = 0
    cut = False
    index = 0
    # options come first, in any order; the first word that is none of them starts the reason
    while index < len(rest):
        word = rest[index]
        if is_duration(word):
            if duration is not None:
                raise ContainmentError(f"two durations given ({word!r}); give one")
            duration = parse_duration(word)
        elif is_rate(word):
            if limit:
                raise ContainmentError(f"two rates given ({word!r}); give one")
            limit = parse_rate(word)
        elif word.lower() == "--cut":
            cut = True
        elif word.startswith("--"):
            raise ContainmentError(f"unknown option {word!r} (only --cut, for block)")
        else:
            break
        index += 1
    reason = clean_reason(" ".join(rest[index:]))
    if verb == "throttle" and not limit:
        raise ContainmentError(
            "throttle needs a rate, e.g. `throttle account bob@example.com 20/h`"
        )
    if verb != "throttle" and limit:
        raise ContainmentError(f"a rate applies only to throttle, not to {verb}")
    if cut and verb != "block":
        raise ContainmentError("--cut (end live sessions with 421) applies only to block")
    given = duration is not None
    span = limits.default_expiry if duration is None else duration
    if span > limits.max_expiry:
        raise ContainmentError(
            f"{format_duration(span)} is longer than the allowed maximum "
            f"{format_duration(limits.max_expiry)} (policy.max_expiry); set it again before "
            "it lapses if you need longer"
        )
    return ContainRequest(verb, subject, span, limit, cut, reason, given)


def _subject_words(words: Sequence[str]) -> tuple[Subject, list[str]]:
    if not words:
        raise ContainmentError("name whom to contain, e.g. `account carol@example.com`")
    kind = kind_of_word(words[0])
    if kind is not None:
        if len(words) < 2:
            raise ContainmentError(f"`{words[0]}` needs a subject after it")
        return parse_subject(kind, words[1]), list(words[2:])
    return parse_subject(None, words[0]), list(words[1:])


def clean_reason(text: str) -> str:
    """Free text, kept as typed but with control characters made into spaces and bounded."""
    reason = " ".join(_CONTROL.sub(" ", text).split())
    if len(reason) > MAX_REASON_CHARS:
        raise ContainmentError(f"the reason is longer than {MAX_REASON_CHARS} characters")
    return reason


def limits_from(default_expiry: str, max_expiry: str) -> Limits:
    """The [policy] expiry settings as Limits (config load has validated them already)."""
    return Limits(parse_duration(default_expiry), parse_duration(max_expiry))
