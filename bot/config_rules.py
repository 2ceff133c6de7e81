"""One validation rule per configuration key, checked when the configuration loads.

A value that loads but later crashes or misleads (`internal_networks = ["lan"]`, a nameserver
"nonsense" that then shows up as "PTR: DNS timeout", `window = "forever"`) is refused at load with
one line naming the key. `RULES` holds a rule for every key (tests/bot/test_config_rules.py fails
for a key without one); `CROSS_RULES` check keys against each other.

A rule takes the (already type-checked) value and returns the reason it is wrong, or None.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

Rule = Callable[[Any], str | None]

_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*\.?$")
_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
# the log summary's own relative windows (handlers/logsummary/timefmt.py), ASCII digits only
_WINDOW = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.ASCII)
_WINDOW_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_LONGEST_WINDOW = 100 * 366 * 86400
_UNIT = re.compile(r"^[A-Za-z0-9:_.@\\-]+$")
_SYSLOG_NAME = re.compile(r"^[A-Za-z0-9._/-]+$")
_SLACK_USER = re.compile(r"^[UW][A-Z0-9]+$")
_SLACK_GROUP = re.compile(r"^S[A-Z0-9]+$")
_CHANNEL = re.compile(r"^#?[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# -- building blocks ---------------------------------------------------------------------------


def _no_control(value: str) -> str | None:
    if _CONTROL.search(value):
        return f"{value!r} contains control characters (a newline or tab?)"
    return None


def text_line(value: str) -> str | None:
    if not value.strip():
        return "must not be empty"
    return _no_control(value)


def optional_path(value: str) -> str | None:
    return _no_control(value) if value else None


def optional_absolute_path(value: str) -> str | None:
    """Empty, or an absolute path (so it can never be read as a command-line option)."""
    if value and not Path(value).is_absolute():
        return f"{value!r} is not an absolute path (e.g. /etc/exim4/exim4.conf)"
    return optional_path(value)


def log_path(value: str) -> str | None:
    if not value.strip():
        return "must not be empty"
    if not Path(value).is_absolute():
        return f"{value!r} is not an absolute path (e.g. /var/log/mail.log)"
    return _no_control(value)


def hostname(value: str) -> str | None:
    name = value.strip()
    if len(name) > 253 or not _HOSTNAME.match(name) or name.rstrip(".").split(".")[-1].isdigit():
        return f"{value!r} is not a host name (e.g. mail.example.com)"
    return None


def domain(value: str) -> str | None:
    if hostname(value) is not None or "." not in value.strip().rstrip("."):
        return f"{value!r} is not a domain (e.g. example.net)"
    return None


def optional_hostname(value: str) -> str | None:
    return hostname(value) if value else None


def host_pattern(value: str) -> str | None:
    """A name, or *.name for every name under it."""
    return hostname(value[2:] if value.startswith("*.") else value)


def local_part(value: str) -> str | None:
    if not _LOCAL_PART.match(value) or len(value) > 64:
        return f"{value!r} is not the part of an address before the @ (e.g. relaywatch)"
    return None


def network(value: str) -> str | None:
    try:
        ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        return f"{value!r} is not an IP network (e.g. 192.168.1.0/24, 10.0.0.0/8, fd00::/8)"
    return None


def address_or_network(value: str) -> str | None:
    return network(value)


def nameserver(value: str) -> str | None:
    from handlers.blacklist.engine import BlacklistSetupError, parse_nameserver

    try:
        parse_nameserver(value)
    except BlacklistSetupError as exc:
        return str(exc).removeprefix("nameserver ")
    return None


def mail_server(value: str) -> str | None:
    from handlers.relay.targets import TargetError, parse_target

    try:
        parse_target(value)
    except TargetError as exc:
        return str(exc)
    return None


def port(value: int) -> str | None:
    return None if 0 < value < 65536 else f"{value} is not a port (1 to 65535)"


def duration(value: str) -> str | None:
    found = _DURATION.match(value)
    if not found or int(found.group(1)) <= 0:
        return f"{value!r} is not a duration: use e.g. 90m, 24h, 7d"
    return None


def window(value: str) -> str | None:
    found = _WINDOW.match(value)
    if not found or int(found.group(1)) <= 0:
        return f"{value!r} is not a window: e.g. 90m, 24h, 7d, 2w"
    if int(found.group(1)) * _WINDOW_UNIT[found.group(2)] > _LONGEST_WINDOW:
        return f"{value!r} is longer than 100 years"
    return None


def http_url(value: str) -> str | None:
    if not re.match(r"^https?://[^\s/]+/\S*$", value):
        return f"{value!r} is not an http(s) URL ending in / (e.g. https://slack.com/api/)"
    return None


def listen_address(value: str) -> str | None:
    """Where the policy service listens: one or more of HOST:PORT, [IPv6]:PORT, unix:/path,
    separated by commas; port 0 lets the system choose (tests, a first try)."""
    if not value:
        return None
    for part in (p.strip() for p in value.split(",")):
        problem = _one_listen_address(part)
        if problem:
            return problem
    return None


def _one_listen_address(value: str) -> str | None:
    if value.startswith("unix:"):
        path = value[5:]
        if not Path(path).is_absolute():
            return f"{value!r}: a unix socket needs an absolute path (unix:/var/spool/…)"
        return _no_control(path)
    host, sep, port_text = value.rpartition(":")
    ascii_port = port_text.isascii() and port_text.isdigit()
    if not sep or not ascii_port or not 0 <= int(port_text) < 65536:
        return f"{value!r}: expected HOST:PORT, [IPv6]:PORT or unix:/path"
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if hostname(host) is not None:
            return f"{value!r}: {host!r} is not an address to listen on"
    return None


_REPLICA_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$")


def replica_name(value: str) -> str | None:
    """Empty (host name and process id) or a short label: it is stored with every counter row."""
    if value and not _REPLICA_NAME.match(value):
        return (
            f"{value!r} is not a replica name: up to 64 letters, digits and . _ : @ - "
            "(e.g. replica-a)"
        )
    return None


def clock_time(value: str) -> str | None:
    hour, sep, minute = value.partition(":")
    # ASCII digits only: "²³:00" passes str.isdigit and then breaks int()
    ascii_digits = hour.isascii() and minute.isascii() and hour.isdigit() and minute.isdigit()
    if sep and ascii_digits and int(hour) < 24 and int(minute) < 60:
        return None
    return f"expected HH:MM, got {value!r}"


def time_zone(value: str) -> str | None:
    try:
        ZoneInfo(value)
    except Exception:
        return f"unknown time zone {value!r}"
    return None


def tls_mode(value: str) -> str | None:
    return (
        None
        if value in ("auto", "require", "off")
        else f"expected auto, require or off, got {value!r}"
    )


def slack_user(value: str) -> str | None:
    return None if _SLACK_USER.fullmatch(value) else f"{value!r} is not a Slack user ID (U0123ABCD)"


def slack_group(value: str) -> str | None:
    if not value or _SLACK_GROUP.fullmatch(value):
        return None
    return f"{value!r} is not a Slack user group ID (S0123ABCD)"


def channel(value: str) -> str | None:
    if _CHANNEL.match(value):
        return None
    return f"{value!r} is not a channel ID (C0123ABCD) or name (#mail-alerts)"


_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$", re.ASCII)


def channel_id(value: str) -> str | None:
    """Where commands are allowed: by ID only (members choose and change channel names)."""
    if _CHANNEL_ID.fullmatch(value):
        return None
    return f"{value!r} is not a channel ID such as C0123ABCD (not a #name)"


def optional_channel(value: str) -> str | None:
    return channel(value) if value else None


def journal_unit(value: str) -> str | None:
    return None if _UNIT.match(value) else f"{value!r} is not a systemd unit name"


def syslog_name(value: str) -> str | None:
    if _SYSLOG_NAME.match(value):
        return None
    return f"{value!r} is not a syslog name (Postfix's syslog_name, e.g. postfix-out)"


def account(value: str) -> str | None:
    if not value.strip() or any(c.isspace() for c in value):
        return f"{value!r} is not an account name"
    return _no_control(value)


def extra_zone(value: dict) -> str | None:
    from handlers.blacklist.catalog import CatalogError, parse_entry

    try:
        parse_entry(value, "entry", "config")
    except CatalogError as exc:
        return str(exc)
    return None


def catalog_file(value: str) -> str | None:
    if not value:
        return None
    from handlers.blacklist.catalog import CatalogError, load_catalog

    try:
        load_catalog(value)
    except CatalogError as exc:
        return str(exc)
    except OSError as exc:
        return f"cannot read {value} ({exc.strerror})"
    return None


def auto_actions(value: dict) -> str | None:
    from handlers.policy.model import CONTAINMENT_ACTIONS

    for rule_name, action in value.items():
        rules = _alarm_rules()
        if rule_name not in rules:
            return f"{rule_name!r} is not an alarm rule (one of {', '.join(rules)})"
        if action not in CONTAINMENT_ACTIONS:
            return (
                f"{rule_name} = {action!r}: the action must be one of "
                f"{', '.join(CONTAINMENT_ACTIONS)}"
            )
    return None


def _alarm_rules() -> tuple[str, ...]:
    """The policy service's alarm rules, named after its threshold settings."""
    import dataclasses

    from handlers.policy.counters import Thresholds

    return tuple(f.name for f in dataclasses.fields(Thresholds))


# -- combinators -------------------------------------------------------------------------------


def ip_address(value: str) -> str | None:
    try:
        ipaddress.ip_address(value.strip())
    except ValueError:
        return f"{value!r} is not an IP address"
    return None


def dkim_selector(value: str) -> str | None:
    if not re.match(rf"^{_LABEL}(?:\.{_LABEL})*$", value.strip()):
        return f"{value!r} is not a DKIM selector (DNS labels, e.g. s2024 or google)"
    return None


def mta(value: str) -> str | None:
    return None if value in ("postfix", "exim") else f"expected postfix or exim, got {value!r}"


def command_word(value: str) -> str | None:
    if not value.strip() or any(c.isspace() for c in value):
        return f"{value!r} is not one program name or path"
    return _no_control(value)


def rate(value: str) -> str | None:
    if not re.match(r"^\s*\d+\s*/\s*[mhd]\s*$", value):
        return f"{value!r} is not a rate (e.g. 20/h)"
    return None


def store_url(value: str) -> str | None:
    """Empty (the SQLite file), or postgresql://user@host[:port]/database with no password."""
    if not value:
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
        return "expected postgresql://user@host/database"
    if parts.password is not None:
        return "the password does not belong in the URL; set RELAYWATCH_STORE_PASSWORD"
    return None


def all_of(*rules: Rule) -> Rule:
    """The first problem any of `rules` finds."""

    def check(value: Any) -> str | None:
        for rule in rules:
            problem = rule(value)
            if problem:
                return problem
        return None

    return check


def accepted_by(parse: Callable[[Any], Any], *errors: type[Exception]) -> Rule:
    """The parser that will read the value at run time, as a rule: its error is the problem.
    (Imported lazily: loading the configuration must not load every engine.)"""

    def check(value: Any) -> str | None:
        try:
            parse()(value)
        except errors as exc:
            return str(exc)
        return None

    return check


def _domain_parser(name: str) -> Callable[[], Callable[[Any], Any]]:
    def load() -> Callable[[Any], Any]:
        import handlers.domain

        return getattr(handlers.domain, name)

    return load


def _containment_parser(name: str) -> Callable[[], Callable[[Any], Any]]:
    def load() -> Callable[[Any], Any]:
        import handlers.policy.containment

        return getattr(handlers.policy.containment, name)

    return load


def each(rule: Rule) -> Rule:
    def check(values: list) -> str | None:
        for index, item in enumerate(values):
            problem = rule(item)
            if problem:
                return f"[{index}]: {problem}"
        return None

    return check


def at_least(low: float) -> Rule:
    return lambda value: None if value >= low else f"must be at least {low:g}, got {value!r}"


def between(low: float, high: float) -> Rule:
    def check(value: float) -> str | None:
        if low <= value <= high:
            return None
        return f"must be between {low:g} and {high:g}, got {value!r}"

    return check


def positive(value: float) -> str | None:
    return None if value > 0 else f"must be more than 0, got {value!r}"


def share(value: float) -> str | None:
    return None if 0 < value <= 1 else f"must be a share above 0 and at most 1, got {value!r}"


def any_bool(value: bool) -> str | None:
    return None  # the type is the whole rule: load refuses anything but true / false


# -- the rules ---------------------------------------------------------------------------------

_policy_duration = all_of(duration, accepted_by(_containment_parser("parse_duration"), ValueError))

RULES: dict[str, Rule] = {
    "secrets_file": optional_path,
    "store.path": optional_path,
    "logs.paths": each(log_path),
    "logs.journal": any_bool,
    "logs.journal_units": each(journal_unit),
    "logs.window": window,
    "logs.syslog_names": each(syslog_name),
    "logs.journal_timeout": positive,
    "logs.max_decompressed_mb": between(1, 1 << 20),
    "store.busy_timeout": between(0.001, 600),
    "store.url": store_url,
    "relay.default_target": mail_server,
    "relay.allow_networks": each(network),
    "relay.allow_hosts": each(host_pattern),
    "relay.extra_ports": each(port),
    "relay.test_domain": domain,
    "relay.local_part": local_part,
    "relay.tls": tls_mode,
    "relay.connect_timeout": positive,
    "relay.banner_timeout": positive,
    "relay.command_timeout": positive,
    "relay.target_budget": positive,
    "relay.tarpit_reply": positive,
    "limits.mailsummary_max_days": positive,
    "limits.admin_mailsummary_max_days": positive,
    "limits.relaycheck_max_targets": at_least(1),
    "limits.admin_relaycheck_max_targets": at_least(1),
    "limits.heavy_jobs_per_user": at_least(1),
    "limits.admin_heavy_jobs_per_user": at_least(1),
    "limits.heavy_jobs_total": at_least(1),
    "relay.tarpit_budget": positive,
    "relay.concurrency": between(1, 1000),
    "relay.sender_domain": domain,
    "relay.sender_local_part": local_part,
    "relay.helo_name": optional_hostname,
    "relay.nameservers": each(nameserver),
    "relay.dns_timeout": positive,
    "blacklist.nameservers": each(nameserver),
    "blacklist.concurrency": between(1, 10_000),
    "blacklist.timeout": positive,
    "blacklist.retries": between(0, 10),
    "blacklist.max_ipv4_prefix": between(8, 32),
    "blacklist.max_ipv6_prefix": between(64, 128),
    "blacklist.disabled_zones": each(domain),
    "blacklist.extra_zones": each(extra_zone),
    "blacklist.catalog_file": catalog_file,
    "logsummary.internal_networks": each(network),
    "logsummary.sasl_distinct_ips": at_least(0),  # 0: off
    "logsummary.sasl_distinct_networks": at_least(0),  # 0: off
    "logsummary.volume_spike_factor": at_least(1),
    "logsummary.volume_share": share,
    "logsummary.min_messages_for_ratio": at_least(1),
    "logsummary.bounce_ratio": share,
    "logsummary.user_unknown_count": at_least(1),
    "logsummary.user_unknown_ratio": share,
    "logsummary.recipients_per_message": at_least(1),
    "logsummary.internal_outbound_messages": at_least(1),
    "logsummary.relay_probe_count": at_least(1),
    "logsummary.sasl_failures_per_ip": at_least(1),
    "logsummary.sasl_failures_per_account": at_least(1),
    "logsummary.local_domains": each(domain),
    "logsummary.workers": between(0, 64),
    "policy.listen": listen_address,
    # the containment commands read these with their own parser: both must accept a value
    "policy.default_expiry": _policy_duration,
    "policy.max_expiry": _policy_duration,
    "policy.remind_before": _policy_duration,
    "policy.refresh_seconds": positive,
    "policy.flush_seconds": positive,
    "policy.replica_name": replica_name,
    "policy.reject_text": text_line,
    "policy.defer_text": text_line,
    "policy.hold_text": text_line,
    "policy.account_messages_per_minute": at_least(0),
    "policy.account_messages_per_day": at_least(0),
    "policy.account_client_ips_per_hour": at_least(0),
    "policy.account_networks_per_hour": at_least(0),
    "policy.host_outbound_per_hour": at_least(0),
    "policy.host_domains_per_hour": at_least(0),
    "policy.exempt_accounts": each(account),
    "policy.exempt_hosts": each(address_or_network),
    "policy.auto_action": auto_actions,
    "policy.local_domains": each(domain),
    "slack.admins": each(slack_user),
    "slack.admin_usergroup": slack_group,
    "slack.allowed_channels": each(channel_id),
    "slack.digest_channel": optional_channel,
    "slack.api_url": http_url,
    "slack.commands_per_minute": at_least(0),  # 0: unlimited
    "schedule.enabled": any_bool,
    "schedule.digest_time": clock_time,
    "schedule.timezone": time_zone,
    "schedule.digest_grace_minutes": at_least(0),
    # 0 turns a monitor off (documented, and the scheduler honours it)
    "schedule.blacklist_every_minutes": at_least(0),
    "schedule.relay_every_hours": at_least(0),
    "schedule.logsummary_every_minutes": at_least(0),
    "schedule.domain_every_hours": at_least(0),
    "policy.throttle_rate": all_of(
        rate, accepted_by(_containment_parser("parse_rate"), ValueError)
    ),
    "queue.mta": mta,
    "queue.postfix_config_dir": optional_path,
    "queue.exim_path": command_word,
    "queue.exim_config": optional_absolute_path,
    "queue.privilege": each(command_word),
    "queue.timeout": between(0.1, 3600),
    "queue.ids_per_call": between(1, 1_000_000),
    "queue.max_ids_per_action": between(1, 1_000_000),
    # the domain engine reads these with its own parsers: both must accept a value
    "domain.nameservers": each(
        all_of(nameserver, accepted_by(_domain_parser("parse_nameserver"), ValueError))
    ),
    "domain.timeout": positive,
    "domain.selectors": each(
        all_of(dkim_selector, accepted_by(_domain_parser("normalize_selector"), ValueError))
    ),
    "domain.sending_ips": each(
        all_of(ip_address, accepted_by(_domain_parser("normalize_ip"), ValueError))
    ),
    "domain.helo_names": each(
        all_of(hostname, accepted_by(_domain_parser("normalize_domain"), ValueError))
    ),
    "domain.mta_sts_timeout": positive,
    "domain.mta_sts_max_bytes": at_least(1024),
}


def _seconds(text: str) -> int:
    found = _DURATION.match(text)
    assert found is not None  # checked by its own rule first
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[found.group(2)]
    return int(found.group(1)) * unit


def _expiry_order(values: dict[str, Any]) -> tuple[str, str] | None:
    if _seconds(values["policy.default_expiry"]) > _seconds(values["policy.max_expiry"]):
        return (
            "policy.default_expiry",
            f"{values['policy.default_expiry']} is longer than policy.max_expiry "
            f"({values['policy.max_expiry']})",
        )
    return None


def _admin_limits(values: dict[str, Any]) -> tuple[str, str] | None:
    for name in ("mailsummary_max_days", "relaycheck_max_targets", "heavy_jobs_per_user"):
        if values[f"limits.admin_{name}"] < values[f"limits.{name}"]:
            return (f"limits.admin_{name}", f"must not be less than limits.{name}")
    return None


# checks across keys, after every key passed its own rule: (key, reason) or None
CROSS_RULES: tuple[Callable[[dict[str, Any]], tuple[str, str] | None], ...] = (
    _expiry_order,
    _admin_limits,
)
