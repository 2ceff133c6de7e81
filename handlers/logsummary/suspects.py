"""Compromise detection: which accounts, hosts or local senders look hijacked, and why.

Every rule compares a figure from the summary with a threshold (config `[logsummary]`, defaults
in `SuspectThresholds`). A rule that fires gives a score between its floor and its ceiling, growing
with how far past the threshold the figure is (log scale: 16× the threshold reaches the ceiling).
Findings about one subject are combined (1 - Π(1 - score)), so an account that both logs in from a
botnet and sends ten times its usual volume ranks above one that only does one of those.

Traffic is attributed to its origin: the SASL account when the message was authenticated, else the
client IP, else (pickup) the local sender address.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import median

from handlers.logsummary.summary import (
    O_BAD_LINES,
    O_BOUNCED,
    O_DEFERRALS,
    O_DOMAINS,
    O_LINES,
    O_MAX_RCPTS,
    O_MESSAGES,
    O_RCPTS,
    O_SENT,
    O_UNKNOWN,
    O_WIDE,
    Summary,
)

MAX_EVIDENCE = 10
# The machine itself: content filters hand mail back from here (the message was counted for
# its real origin on the way in), and no stranger can connect from it. Loopback is internal by
# default, so without this every filtered message would look like a LAN host sending out.
_THIS_MACHINE = frozenset(("127.0.0.1", "::1"))


@dataclass(frozen=True)
class SuspectThresholds:
    """When each rule fires. Mirrors `[logsummary]` in the config; these are the defaults."""

    sasl_distinct_ips: int = 5  # account logs in from ≥ this many IPs outside internal networks
    sasl_distinct_networks: int = 3  # … or from ≥ this many /24 (IPv6 /48) networks
    volume_spike_factor: float = 5.0  # ≥ this × its own baseline rate (or × the median origin)
    volume_share: float = 0.25  # … and ≥ this share of all received mail (outlier rule)
    min_messages_for_ratio: int = 20  # ignore origins with fewer messages for ratio rules
    bounce_ratio: float = 0.3  # (bounced + deferred) / delivery attempts
    user_unknown_count: int = 20  # "User unknown" replies to one origin's mail …
    user_unknown_ratio: float = 0.1  # … that are at least this share of its deliveries
    recipients_per_message: float = 10.0  # average recipients per message (or 3+ such messages)
    internal_outbound_messages: int = 50  # deliveries to outside domains from an internal host
    relay_probe_count: int = 5  # "Relay access denied" rejections per client
    sasl_failures_per_ip: int = 10  # failed AUTH from one client IP
    sasl_failures_per_account: int = 10  # failed AUTH for one account


@dataclass
class Suspect:
    """One subject (account, client IP or local sender) and everything that points at it."""

    kind: str  # the strongest finding: sasl_many_ips, internal_host_outbound, …
    subject: str  # the account name, IP address or sender address
    subject_type: str  # "account" | "client" | "local_sender" | "server"
    score: int  # 0–100
    reasons: list[str]
    evidence: list[str]  # log lines
    kinds: list[str] = field(default_factory=list)  # every finding, strongest first
    action: str = ""  # what to do next


@dataclass
class _Finding:
    kind: str
    score: float
    reason: str
    evidence: list[str]
    action: str


def _score(floor: float, ceiling: float, ratio: float) -> float:
    if ratio <= 1:
        return floor
    return floor + (ceiling - floor) * min(1.0, math.log2(ratio) / 4)


def network_of(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def detect_suspects(
    summary: Summary,
    thresholds: SuspectThresholds,
    is_internal: Callable[[str], bool],
    window_hours: float,
    baseline: dict[str, float] | None = None,
    local_domains: frozenset[str] = frozenset(),
) -> list[Suspect]:
    """Runs every rule; returns suspects, highest score first."""
    findings: dict[str, list[_Finding]] = {}

    def add(subject_key: str, finding: _Finding) -> None:
        findings.setdefault(subject_key, []).append(finding)

    ours = set(local_domains) | summary.local_domains
    _sasl_rules(summary, thresholds, is_internal, add)
    _origin_rules(summary, thresholds, window_hours, baseline or {}, ours, add)
    _open_relay_rule(summary, is_internal, ours, add)
    _probe_rules(summary, thresholds, add)

    suspects = [_combine(key, items) for key, items in findings.items()]
    suspects.sort(key=lambda s: (-s.score, s.subject))
    return suspects


def outbound_deliveries(stats: list, ours: set[str]) -> int:
    return sum(count for domain, count in stats[O_DOMAINS].items() if domain not in ours)


def _sasl_rules(summary: Summary, t: SuspectThresholds, is_internal, add) -> None:
    for user, addresses in summary.sasl_ips.items():
        external = [a for a in addresses if not is_internal(a)]
        networks = {network_of(a) for a in external}
        if len(external) < len(addresses):
            networks.add("internal")
        ratio = max(
            len(external) / t.sasl_distinct_ips if t.sasl_distinct_ips else 0,
            len(networks) / t.sasl_distinct_networks if t.sasl_distinct_networks else 0,
        )
        if ratio < 1:
            continue
        sample = ", ".join(sorted(external)[:5]) + (" …" if len(external) > 5 else "")
        messages = summary.sasl_messages_by_user.get(user, 0)
        reason = (
            f"logged in from {len(addresses)} client addresses, {len(external)} of them outside "
            f"the internal networks ({sample or 'none'}), in {len(networks)} "
            f"network{'' if len(networks) == 1 else 's'}, and sent "
            f"{messages} messages: a password in the hands of several machines (a botnet) looks "
            "like this"
        )
        evidence = [addresses[a] for a in sorted(external)] + [
            addresses[a] for a in addresses if a not in external
        ]
        score = _score(55, 90, ratio)
        if messages >= t.min_messages_for_ratio and external:
            score = min(95.0, score + 10)
        add(
            "account\0" + user,
            _Finding(
                "sasl_many_ips",
                score,
                reason,
                evidence,
                f"reset the password of {user}, end its sessions, and check what it sent",
            ),
        )
    for user, failures in summary.sasl_failures_by_user.items():
        if failures < t.sasl_failures_per_account:
            continue
        score = _score(30, 60, failures / t.sasl_failures_per_account)
        reason = f"{failures} failed logins for this account (password guessing)"
        # The guessing worked if the account then logged in from an address that had failed,
        # or from outside the internal networks.
        logged_in = set(summary.sasl_ips.get(user, {}))
        guessed = logged_in & summary.sasl_failure_ips.get(user, set())
        outside = {a for a in logged_in if not is_internal(a)}
        kind = "sasl_bruteforce_account"
        if guessed or outside:
            kind = "sasl_password_guessed"  # no longer just an attack: a likely compromise
            score += 20
            where = sorted(guessed or outside)
            reason += (
                f", and it then logged in successfully from {', '.join(where[:3])}"
                f"{' …' if len(where) > 3 else ''}"
            )
        add(
            "account\0" + user,
            _Finding(
                kind,
                score,
                reason,
                summary.failure_lines_by_user.get(user, []),
                "make sure the password is strong; consider fail2ban on the submission port",
            ),
        )
    for address, failures in summary.sasl_failures_by_ip.items():
        if failures < t.sasl_failures_per_ip:
            continue
        add(
            "client\0" + address,
            _Finding(
                "sasl_bruteforce",
                _score(25, 60, failures / t.sasl_failures_per_ip),
                f"{failures} failed logins from this address (password guessing)",
                summary.failure_lines_by_ip.get(address, []),
                f"block {address} (fail2ban / firewall)",
            ),
        )


def _origin_rules(
    summary: Summary,
    t: SuspectThresholds,
    window_hours: float,
    baseline: dict[str, float],
    ours: set[str],
    add,
) -> None:
    total = sum(stats[O_MESSAGES] for stats in summary.origins.values()) or 1
    counts = [stats[O_MESSAGES] for stats in summary.origins.values() if stats[O_MESSAGES]]
    typical = median(counts) if counts else 0
    for origin, stats in summary.origins.items():
        kind, _, name = origin.partition(":")
        subject_type = {"sasl": "account", "client": "client", "local": "local_sender"}[kind]
        key = f"{subject_type}\0{name}"
        messages = stats[O_MESSAGES]
        outbound = outbound_deliveries(stats, ours)
        internal = summary.origin_internal.get(origin, False)
        sends_out = outbound > 0 or kind != "client"
        if (
            kind == "client"
            and internal
            and name not in _THIS_MACHINE  # content filters hand mail back from here
            and outbound >= t.internal_outbound_messages
        ):
            domains = sorted(
                (d for d in stats[O_DOMAINS] if d not in ours),
                key=lambda d: -stats[O_DOMAINS][d],
            )
            add(
                key,
                _Finding(
                    "internal_host_outbound",
                    _score(60, 95, outbound / t.internal_outbound_messages),
                    f"a host on the internal network sent {messages} messages without logging in, "
                    f"{outbound} deliveries to {len(domains)} outside domains "
                    f"({', '.join(domains[:4])}{' …' if len(domains) > 4 else ''}): malware on "
                    "that machine, or a device relaying through us",
                    stats[O_LINES],
                    f"find and clean the machine at {name}; stop it relaying (mynetworks) until "
                    "then",
                ),
            )
        if not sends_out or messages < t.min_messages_for_ratio:
            continue
        rate = messages / max(window_hours, 1.0)
        usual = baseline.get(origin)
        if usual is not None and rate >= t.volume_spike_factor * max(usual, 1.0):
            add(
                key,
                _Finding(
                    "volume_spike",
                    _score(50, 85, rate / (t.volume_spike_factor * max(usual, 1.0))),
                    f"sent {rate:.0f} messages per hour against its usual {usual:.1f}",
                    stats[O_LINES],
                    "check what it sent; if it was not the owner, treat it as compromised",
                ),
            )
        share = messages / total
        if share >= t.volume_share and messages >= t.volume_spike_factor * typical:
            add(
                key,
                _Finding(
                    "volume_outlier",
                    _score(45, 80, share / t.volume_share),
                    f"sent {messages} of {total} messages ({share:.0%}), far above the typical "
                    f"sender ({typical:g})",
                    stats[O_LINES],
                    "check whether this volume is expected",
                ),
            )
        # per recipient: sent or bounced; plus messages deferred at least once
        attempts = stats[O_SENT] + stats[O_BOUNCED] + stats[O_DEFERRALS]
        failed = stats[O_BOUNCED] + stats[O_DEFERRALS]
        if attempts >= t.min_messages_for_ratio and failed / attempts >= t.bounce_ratio:
            add(
                key,
                _Finding(
                    "bounce_ratio",
                    _score(40, 75, (failed / attempts) / t.bounce_ratio),
                    f"{failed} of {attempts} deliveries bounced or were deferred "
                    f"({failed / attempts:.0%}): typical of mail to bought or harvested lists",
                    stats[O_BAD_LINES],
                    "look at the recipients; spam runs to old lists bounce a lot",
                ),
            )
        unknown_share = stats[O_UNKNOWN] / attempts if attempts else 0.0
        if stats[O_UNKNOWN] >= t.user_unknown_count and unknown_share >= t.user_unknown_ratio:
            add(
                key,
                _Finding(
                    "user_unknown",
                    _score(45, 80, stats[O_UNKNOWN] / t.user_unknown_count),
                    f"{stats[O_UNKNOWN]} recipients ({unknown_share:.0%} of its deliveries) were "
                    "rejected as unknown users: typical of harvested address lists",
                    stats[O_BAD_LINES],
                    "look at the recipients; spam runs to harvested lists hit many unknown users",
                ),
            )
        average = stats[O_RCPTS] / messages if messages else 0
        if average >= t.recipients_per_message or stats[O_WIDE] >= 3:
            add(
                key,
                _Finding(
                    "many_recipients",
                    _score(
                        35,
                        70,
                        max(average / t.recipients_per_message, stats[O_WIDE] / 3),
                    ),
                    f"{stats[O_WIDE]} messages had {t.recipients_per_message:g} or more "
                    f"recipients (largest {stats[O_MAX_RCPTS]}, average {average:.1f})",
                    stats[O_BAD_LINES] or stats[O_LINES],
                    "check whether these were legitimate mailings",
                ),
            )


def _open_relay_rule(summary: Summary, is_internal, ours: set[str], add) -> None:
    """Unauthenticated clients outside the internal networks whose mail went to outside domains:
    the server relayed for strangers. One such delivery is already the proof. The fix is one
    setting on the server, so every such client goes into one finding about the server."""
    strangers: list[tuple[int, str, list]] = []
    for origin, stats in summary.origins.items():
        kind, _, name = origin.partition(":")
        if kind != "client" or name in _THIS_MACHINE or is_internal(name):
            continue
        outbound = outbound_deliveries(stats, ours)
        if outbound > 0:
            strangers.append((outbound, name, stats))
    if not strangers:
        return
    strangers.sort(key=lambda item: (-item[0], item[1]))
    deliveries = sum(item[0] for item in strangers)
    messages = sum(item[2][O_MESSAGES] for item in strangers)
    domains = {d for _, _, stats in strangers for d in stats[O_DOMAINS] if d not in ours}
    clients = ", ".join(f"{name} ({outbound})" for outbound, name, _ in strangers[:5]) + (
        " …" if len(strangers) > 5 else ""
    )
    evidence: list[str] = []
    for _, _, stats in strangers[:4]:  # a few lines from each of the busiest strangers
        evidence.extend(stats[O_LINES][:3])
    add(
        "server\0this server",
        _Finding(
            "open_relay",
            _score(92, 99, deliveries / 10),
            f"{len(strangers)} client{'' if len(strangers) == 1 else 's'} outside the internal "
            f"networks, without logging in, had {messages} message{'' if messages == 1 else 's'} "
            f"delivered to {len(domains)} outside domain{'' if len(domains) == 1 else 's'} "
            f"({', '.join(sorted(domains)[:4])}{' …' if len(domains) > 4 else ''}; "
            f"{deliveries} deliver{'y' if deliveries == 1 else 'ies'}; clients: {clients}): this "
            "server relayed mail for strangers — an open relay, or mynetworks wider than your "
            "own networks",
            evidence,
            "close the relay now: Postfix smtpd_relay_restrictions = permit_mynetworks, "
            "permit_sasl_authenticated, reject_unauth_destination; check that mynetworks "
            "(postconf mynetworks) holds only your own networks (Exim: relay_from_hosts and the "
            "RCPT ACL); then run relaycheck against this server",
        ),
    )


def _probe_rules(summary: Summary, t: SuspectThresholds, add) -> None:
    for address, (count, lines) in summary.relay_denied.items():
        if count < t.relay_probe_count:
            continue
        add(
            "client\0" + address,
            _Finding(
                "relay_probe",
                _score(20, 50, count / t.relay_probe_count),
                f"tried to relay through us {count} times and was refused (Relay access denied): "
                "a scanner looking for open relays",
                lines,
                f"nothing was relayed; block {address} if it keeps trying",
            ),
        )


def _combine(key: str, items: list[_Finding]) -> Suspect:
    subject_type, _, subject = key.partition("\0")
    items.sort(key=lambda f: -f.score)
    remaining = 1.0
    for item in items:
        remaining *= 1 - min(item.score, 99.0) / 100
    evidence: list[str] = []
    for item in items:
        for line in item.evidence:
            if line not in evidence and len(evidence) < MAX_EVIDENCE:
                evidence.append(line)
    return Suspect(
        kind=items[0].kind,
        subject=subject,
        subject_type=subject_type,
        score=round(100 * (1 - remaining)),
        reasons=[item.reason for item in items],
        evidence=evidence,
        kinds=[item.kind for item in items],
        action=items[0].action,
    )
