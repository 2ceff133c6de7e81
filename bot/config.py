"""Effective configuration: embedded defaults < TOML file < RELAYWATCH_* environment variables.

Secrets never come from the TOML file: only from the environment or from an owner-only secrets file.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import stat
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.secretlike import HIDDEN, SECRET_ADVICE, hide_secrets, looks_like_secret

ENV_PREFIX = "RELAYWATCH_"
SECRET_NAMES = (
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SPAMHAUS_DQS_KEY",
    "RELAYWATCH_STORE_PASSWORD",  # the PostgreSQL password for store.url
)


class ConfigError(Exception):
    """A configuration problem, phrased as one line naming the key and the reason."""


def _default_state_dir() -> Path:
    # systemd's StateDirectory= sets STATE_DIRECTORY; otherwise follow the XDG base-dir spec.
    if os.environ.get("STATE_DIRECTORY"):
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "relaywatch"


def setting(default: Any, doc: str) -> Any:
    """A config key and its documentation (the reference docs and man page are made from it)."""
    if isinstance(default, list | dict):
        return field(default_factory=lambda: copy.deepcopy(default), metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})


@dataclass
class StoreConfig:
    path: str = setting(
        "",
        "the SQLite file (watch list, check history, alerts, audit log); empty: "
        "$STATE_DIRECTORY/relaywatch.db under systemd, else "
        "$XDG_STATE_HOME/relaywatch/relaywatch.db (~/.local/state/relaywatch/relaywatch.db)",
    )
    busy_timeout: float = setting(
        10.0,
        "seconds a store write waits while another process holds the store's lock before the "
        "command gives up with 'could not complete' (exit 3)",
    )
    url: str = setting(
        "",
        "a postgresql://user@host[:port]/database URL: the store shared by several replicas "
        "(password from RELAYWATCH_STORE_PASSWORD or secrets_file, never in the URL); "
        "empty: the SQLite file at store.path",
    )


@dataclass
class LogsConfig:
    paths: list[str] = setting(
        ["/var/log/mail.log"],
        "the mail logs to read; each file's rotations (.1, .2.gz, -YYYYMMDD) are read too, "
        "oldest first",
    )
    journal: bool = setting(
        False, "also read the systemd journal (journalctl -o json) for journal_units"
    )
    journal_units: list[str] = setting(
        ["postfix@-.service", "exim4.service"], "the units passed to journalctl as -u"
    )
    window: str = setting(
        "24h",
        "the window of /mailsummary, of the CLI without FILEs and of scheduled runs "
        "(90m, 24h, 7d, 2w)",
    )
    syslog_names: list[str] = setting(
        [], "syslog names of Postfix instances besides postfix… (Postfix's syslog_name setting)"
    )
    journal_timeout: float = setting(600.0, "seconds before journalctl is killed")
    max_decompressed_mb: int = setting(
        2048,
        "the most a mailsummary reads from one .gz log once decompressed (MB); a file that "
        "inflates further (a gzip bomb) is cut there, with a warning in the report",
    )


@dataclass
class RelayConfig:
    default_target: str = setting("localhost:25", "the server tested when the CLI names no target")
    allow_networks: list[str] = setting(
        [], "CIDRs that non-admin chat users may test besides the servers on the watch list"
    )
    allow_hosts: list[str] = setting(
        [],
        "names that non-admin chat users may test besides the watch list; an exact name counts "
        "only if the target resolves to one of its addresses; *.example.com trusts a domain",
    )
    extra_ports: list[int] = setting([], "ports allowed from chat besides 25, 465, 587 and 2525")
    test_domain: str = setting("example.net", "the external recipient domain of the battery")
    local_part: str = setting("relaywatch-test", "the recipient's local part in the battery")
    tls: str = setting(
        "auto",
        "STARTTLS: auto (use it when offered), require (no clear-text testing) or off (never)",
    )
    connect_timeout: float = setting(10.0, "seconds to wait for the TCP connection")
    banner_timeout: float = setting(
        30.0, "seconds to wait for the greeting (also covers the TLS handshake on port 465)"
    )
    command_timeout: float = setting(30.0, "seconds to wait for the reply to each command")
    target_budget: float = setting(
        180.0, "seconds for one target, everything included; what is left clips every wait"
    )
    tarpit_reply: float = setting(
        5.0,
        "seconds: a greeting or reply this slow marks the server as a tarpit (it delays "
        "strangers on purpose); the target then gets relay.tarpit_budget in all",
    )
    tarpit_budget: float = setting(
        30.0,
        "seconds a tarpit may take in all before relaycheck stops and reports which tests ran",
    )
    concurrency: int = setting(10, "targets tested at once")
    sender_domain: str = setting(
        "example.org", "the external sender's domain in the battery (RFC 2606)"
    )
    sender_local_part: str = setting("relaywatch", "the sender's local part in the battery")
    helo_name: str = setting("", "the name sent in EHLO; empty: relaywatch-probe.<sender_domain>")
    nameservers: list[str] = setting(
        [],
        "DNS servers for reverse DNS, MX and name lookups, as IP or IP:PORT; "
        "empty: the system resolver",
    )
    dns_timeout: float = setting(3.0, "seconds per DNS lookup")


@dataclass
class BlacklistConfig:
    nameservers: list[str] = setting(
        [],
        "the resolvers to query, as IP, IP:PORT or [IPv6]:PORT; empty: the system resolver's. "
        "Use your own recursive resolver (e.g. unbound on localhost): several lists refuse "
        "public resolvers such as 8.8.8.8. --nameserver overrides it",
    )
    concurrency: int = setting(200, "DNSBL queries in flight")
    timeout: float = setting(2.0, "seconds per query attempt")
    retries: int = setting(
        2, "further attempts after a timeout, SERVFAIL or REFUSED (each on the next nameserver)"
    )
    max_ipv4_prefix: int = setting(
        22, "the largest IPv4 range accepted, as a prefix length (/22 = 1,024 addresses)"
    )
    max_ipv6_prefix: int = setting(118, "the largest IPv6 range accepted, as a prefix length")
    disabled_zones: list[str] = setting([], "zones never queried")
    extra_zones: list[dict] = setting(
        [],
        "extra lists, as tables with the catalog's keys, e.g. "
        '{ zone = "rbl.example.net", kind = "ipv4", severity = "minor" }; '
        "an entry with a catalogued zone replaces that list",
    )
    catalog_file: str = setting(
        "", "a DNSBL catalog TOML file used instead of the built-in handlers/data/dnsbl.toml"
    )


@dataclass
class LogSummaryConfig:
    internal_networks: list[str] = setting(
        [],
        "your LAN, as CIDRs: hosts here sending straight out are the compromised-gateway case, "
        "and logins from elsewhere count as from outside; empty: RFC 1918 + 100.64/10 + "
        "fc00::/7 (not loopback: content filters re-inject from 127.0.0.1)",
    )
    sasl_distinct_ips: int = setting(
        5, "sasl_many_ips: an account logs in from this many client IPs outside the LAN"
    )
    sasl_distinct_networks: int = setting(
        3, "sasl_many_ips: … or from this many networks (/24, IPv6 /48; the LAN counts as one)"
    )
    volume_spike_factor: float = setting(
        5.0, "volume_spike / volume_outlier: times the origin's baseline / the median origin"
    )
    volume_share: float = setting(0.25, "volume_outlier: share of all received mail")
    min_messages_for_ratio: int = setting(
        20, "the ratio and volume rules ignore origins with fewer messages"
    )
    bounce_ratio: float = setting(
        0.3, "bounce_ratio: bounced + deferred share of an origin's deliveries"
    )
    user_unknown_count: int = setting(
        20, "user_unknown: this many 'User unknown' bounces for one origin …"
    )
    user_unknown_ratio: float = setting(
        0.1, "user_unknown: … that are at least this share of its deliveries"
    )
    recipients_per_message: float = setting(10.0, "many_recipients: average recipients per message")
    internal_outbound_messages: int = setting(
        50, "internal_host_outbound: deliveries to outside domains from one LAN host"
    )
    relay_probe_count: int = setting(5, "relay_probe: 'Relay access denied' per client")
    sasl_failures_per_ip: int = setting(10, "sasl_bruteforce: failed logins per client IP")
    sasl_failures_per_account: int = setting(
        10, "sasl_bruteforce_account: failed logins per account"
    )
    local_domains: list[str] = setting(
        [],
        "your mail domains (also learned from local, virtual and lmtp deliveries); "
        "deliveries elsewhere are outbound",
    )
    workers: int = setting(0, "reader processes for large inputs; 0: one per CPU, at most 4")


@dataclass
class PolicyConfig:
    listen: str = setting(
        "",
        "where the policy service listens: '127.0.0.1:10040', '[::1]:10040' or "
        "'unix:/var/spool/postfix/private/relaywatch'; empty: no policy service",
    )
    default_expiry: str = setting("24h", "how long a containment entry lasts when none is given")
    max_expiry: str = setting("7d", "the longest expiry an admin may set")
    remind_before: str = setting(
        "1h", "post a reminder in the thread this long before an entry lapses"
    )
    refresh_seconds: float = setting(
        1.0, "how often each policy service rereads containment entries from the store"
    )
    flush_seconds: float = setting(10.0, "how often live counters are flushed to the store")
    replica_name: str = setting(
        "",
        "this replica's name in the shared counters (their `source`); empty: host name and "
        "process id. Counters are summed over every replica's name",
    )
    reject_text: str = setting(
        "5.7.1 Sending suspended by the mail administrators",
        "the text after REJECT for a blocked subject",
    )
    defer_text: str = setting(
        "4.7.1 Sending rate exceeded, try again later",
        "the text after DEFER for a throttled subject",
    )
    hold_text: str = setting("held for review by relaywatch", "the text after HOLD")
    account_messages_per_minute: int = setting(
        10, "alarm when one SASL account submits more messages than this in a minute (0: off)"
    )
    account_messages_per_day: int = setting(
        150, "alarm when one SASL account submits more messages than this in a day (0: off)"
    )
    account_client_ips_per_hour: int = setting(
        10, "alarm when one SASL account logs in from more client IPs than this in an hour (0: off)"
    )
    account_networks_per_hour: int = setting(
        3, "alarm when one SASL account is used from more /24 (/64) networks in an hour (0: off)"
    )
    host_outbound_per_hour: int = setting(
        100,
        "alarm when one internal host sends more messages to outside domains in an hour (0: off)",
    )
    host_domains_per_hour: int = setting(
        50, "alarm when one internal host writes to more outside domains than this in an hour"
    )
    exempt_accounts: list[str] = setting(
        [], "SASL accounts never alarmed on (list servers, webmail, forwarders)"
    )
    exempt_hosts: list[str] = setting([], "IPs or CIDRs never alarmed on (list servers, webmail)")
    local_domains: list[str] = setting(
        [],
        "recipient domains that are not 'outside' for the internal-host rules (your own domains); "
        "empty: every recipient domain counts as outside",
    )
    auto_action: dict = setting(
        {},
        "optional automatic containment per alarm rule, e.g. "
        '{ account_messages_per_minute = "hold" }; empty: alerts only',
    )
    throttle_rate: str = setting(
        "20/h", "the rate an alert's Throttle button sets (messages per hour, e.g. '20/h')"
    )


@dataclass
class QueueConfig:
    mta: str = setting("postfix", "whose queue /mailqueue reads and acts on: postfix or exim")
    postfix_config_dir: str = setting(
        "",
        "a Postfix config directory for postqueue/postsuper -c (a second instance); "
        "empty: the default",
    )
    exim_path: str = setting("exim", "the exim binary (Debian: exim4 is a link to it)")
    exim_config: str = setting(
        "",
        "an Exim configuration file for exim -C in every queue listing and action (a second "
        "instance; Exim allows -C only to root or for files in TRUSTED_CONFIG_LIST); empty: "
        "Exim's own",
    )
    privilege: list[str] = setting(
        ["sudo", "-n"],
        "what runs postsuper/exim as root for hold, release and delete (see "
        "deploy/sudoers.relaywatch); ignored when relaywatch already runs as root",
    )
    timeout: float = setting(120.0, "seconds one queue listing or one postsuper call may take")
    ids_per_call: int = setting(1000, "queue IDs handed to one postsuper/exim call")
    max_ids_per_action: int = setting(
        100000, "the most messages one hold, release or delete may touch"
    )


@dataclass
class DomainConfig:
    nameservers: list[str] = setting(
        [],
        "resolvers the domain check asks: 'IP' or 'IP:PORT'; empty: the system resolver",
    )
    timeout: float = setting(3.0, "seconds to wait for each DNS answer in the domain check")
    selectors: list[str] = setting(
        [],
        "your DKIM selectors (the s= of your DKIM-Signature headers); empty: a short list of "
        "common ones is tried, and a miss there proves nothing",
    )
    sending_ips: list[str] = setting(
        [],
        "addresses that send mail for your domains, checked for SPF and reverse DNS besides the "
        "watch list's IPs and the MX hosts",
    )
    helo_names: list[str] = setting(
        [],
        "the names your servers give in HELO/EHLO; the names seen by the relay check of watched "
        "servers are added",
    )
    mta_sts_timeout: float = setting(10.0, "seconds for the whole HTTPS fetch of an MTA-STS policy")
    mta_sts_max_bytes: int = setting(
        65536, "an MTA-STS policy larger than this is refused (and reported)"
    )


@dataclass
class SlackConfig:
    admins: list[str] = setting(
        [], "Slack user IDs allowed to check any target and edit the watch list"
    )
    admin_usergroup: str = setting(
        "",
        "a user group ID whose members are admins too; the Slack app then needs the "
        "usergroups:read scope (relaywatch manifest adds it)",
    )
    allowed_channels: list[str] = setting(
        [], "channel IDs or #names where commands are accepted; empty: every channel the bot is in"
    )
    digest_channel: str = setting("", "channel ID for the daily digest and change alerts")
    api_url: str = setting(
        "https://slack.com/api/",
        "Web API base URL (GovSlack: https://slack-gov.com/api/); env SLACK_API_URL also works",
    )
    commands_per_minute: int = setting(
        10, "per-user limit for commands and button clicks; 0: unlimited"
    )


@dataclass
class LimitsConfig:
    """What any workspace member can make the bot do from chat (admins may go further)."""

    mailsummary_max_days: float = setting(
        7.0, "the longest /mailsummary window a non-admin may ask for, in days"
    )
    admin_mailsummary_max_days: float = setting(
        400.0, "the longest /mailsummary window an admin may ask for, in days"
    )
    relaycheck_max_targets: int = setting(
        8, "the most servers (and --mx domains) one non-admin /relaycheck may name"
    )
    admin_relaycheck_max_targets: int = setting(
        256, "the most servers (and --mx domains) one admin /relaycheck may name"
    )
    heavy_jobs_per_user: int = setting(
        1,
        "checks (/blacklist, /relaycheck, /mailsummary) one non-admin may have running at once; "
        "more wait in a queue",
    )
    admin_heavy_jobs_per_user: int = setting(2, "checks one admin may have running at once")
    heavy_jobs_total: int = setting(
        4, "checks running at once from chat, everyone together; more wait in a queue"
    )


@dataclass
class ScheduleConfig:
    enabled: bool = setting(True, "run the digest and the monitors inside relaywatch serve")
    digest_time: str = setting("08:00", "the daily digest's time, HH:MM in schedule.timezone")
    timezone: str = setting(
        "UTC", "IANA time zone of digest_time and of the times shown in the digest"
    )
    digest_grace_minutes: int = setting(
        360,
        "a digest missed while the bot was down is still sent once if it is back within this "
        "many minutes",
    )
    blacklist_every_minutes: int = setting(
        60, "blocklist check of the watch list (alerts only on change); 0: off"
    )
    relay_every_hours: int = setting(
        6, "relay check of the watched servers (alerts only on change); 0: off"
    )
    logsummary_every_minutes: int = setting(
        60, "log summary over logs.window (alerts on new suspects); 0: off"
    )
    domain_every_hours: int = setting(
        6,
        "how often watched domains' SPF, DKIM, DMARC, reverse DNS and MTA-STS are checked (0: off)",
    )


@dataclass
class Secrets:
    slack_bot_token: str = setting(
        "", "the Bot User OAuth Token (xoxb-…): every mode but the shell"
    )
    slack_app_token: str = setting(
        "", "the app-level token (xapp-…) with connections:write: Socket Mode"
    )
    slack_signing_secret: str = setting(
        "", "the app's Signing Secret: HTTP mode (serve --http) checks every request with it"
    )
    spamhaus_dqs_key: str = setting(
        "", "a Spamhaus Data Query Service key: the blocklist check then asks the DQS zones"
    )
    relaywatch_store_password: str = setting(
        "", "the PostgreSQL password for store.url (never in the URL itself)"
    )

    def __repr__(self) -> str:  # never leak a secret through a debug print or a traceback
        return "Secrets(" + ", ".join(f"{k}={mask(v)}" for k, v in self.items()) + ")"

    def items(self) -> list[tuple[str, str]]:
        return [(f.name, getattr(self, f.name)) for f in dataclasses.fields(self)]


@dataclass
class Config:
    store: StoreConfig = field(default_factory=StoreConfig)
    logs: LogsConfig = field(default_factory=LogsConfig)
    relay: RelayConfig = field(default_factory=RelayConfig)
    blacklist: BlacklistConfig = field(default_factory=BlacklistConfig)
    logsummary: LogSummaryConfig = field(default_factory=LogSummaryConfig)
    slack: SlackConfig = field(default_factory=SlackConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    domain: DomainConfig = field(default_factory=DomainConfig)
    secrets_file: str = setting(
        "",
        "a NAME=value file with the secrets (SLACK_BOT_TOKEN, SLACK_APP_TOKEN, "
        "SLACK_SIGNING_SECRET, SPAMHAUS_DQS_KEY); must be readable by its owner only (chmod 600)",
    )
    secrets: Secrets = field(default_factory=Secrets, repr=False)
    # not a key: which file, if any, the values came from
    source: str = field(default="defaults", metadata={"internal": True})

    @property
    def store_path(self) -> Path:
        return Path(self.store.path) if self.store.path else _default_state_dir() / "relaywatch.db"

    @property
    def store_location(self) -> str:
        """What bot.store.Store opens: the PostgreSQL URL (with its password) or the SQLite file."""
        if self.store.url:
            from bot.store_pg import with_password

            return with_password(self.store.url, self.secrets.relaywatch_store_password)
        return str(self.store_path)

    @property
    def store_display(self) -> str:
        """Where the store is, for messages: never the password."""
        return self.store.url or str(self.store_path)


def mask(value: str) -> str:
    return "<set>" if value else "<not set>"


def default_config_path(env: dict[str, str]) -> Path | None:
    """The file used when neither --config nor RELAYWATCH_CONFIG names one (None: defaults only)."""
    xdg = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    for candidate in (
        Path(xdg) / "relaywatch" / "config.toml",
        Path("/etc/relaywatch/config.toml"),
    ):
        if candidate.is_file():
            return candidate
    return None


def load_config(path: str | None = None, env: dict[str, str] | None = None) -> Config:
    """Build the effective configuration; raises ConfigError with a one-line reason."""
    try:
        return _load_config(path, env)
    except ConfigError as exc:
        # a token pasted into a non-secret key must not be echoed back by the error about it
        raise ConfigError(hide_secrets(str(exc))) from None


def _load_config(path: str | None, env: dict[str, str] | None) -> Config:
    env = dict(os.environ) if env is None else env
    config = Config()
    explicit = path or env.get(ENV_PREFIX + "CONFIG")
    file_path = Path(explicit) if explicit else default_config_path(env)
    if file_path is not None:
        _apply_file(config, file_path)
        config.source = str(file_path)
    _apply_env(config, env)
    _validate(config)  # before the secrets: secrets_file is one of the values checked
    config.secrets = _load_secrets(config.secrets_file, env)
    return config


def _apply_file(config: Config, file_path: Path) -> None:
    try:
        raw = file_path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{file_path}: cannot read config file ({exc.strerror})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file_path}: not valid TOML ({exc})") from None
    for key, value in data.items():
        if key in ("secrets",) or key.upper() in SECRET_NAMES:
            raise ConfigError(
                f"{key}: secrets are not read from the config file; set them in the environment "
                "or in secrets_file (owner-only)"
            )
        if _is_section(config, key):
            if not isinstance(value, dict):
                raise ConfigError(f"{key}: expected a [{key}] table")
            section = getattr(config, key)
            for sub_key, sub_value in value.items():
                _set_field(section, sub_key, sub_value, f"{key}.{sub_key}")
        else:
            _set_field(config, key, value, key)


def _is_section(config: Config, key: str) -> bool:
    return key in _section_names(config)


def _section_names(config: Config) -> list[str]:
    return [
        f.name
        for f in dataclasses.fields(config)
        if dataclasses.is_dataclass(getattr(config, f.name)) and f.name != "secrets"
    ]


def _set_field(target: Any, key: str, value: Any, dotted: str) -> None:
    fields = {f.name: f for f in dataclasses.fields(target) if f.name not in ("secrets", "source")}
    if key not in fields or dataclasses.is_dataclass(getattr(target, key)):
        raise ConfigError(f"{dotted}: unknown key")
    hint = typing.get_type_hints(type(target))[key]
    setattr(target, key, _coerce(value, hint, dotted))


def _coerce(value: Any, hint: Any, dotted: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is list:
        (item_hint,) = typing.get_args(hint) or (Any,)
        if not isinstance(value, list):
            raise ConfigError(f"{dotted}: expected a list, got {type(value).__name__}")
        return [_coerce(item, item_hint, f"{dotted}[{i}]") for i, item in enumerate(value)]
    if hint is dict or origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{dotted}: expected a table, got {type(value).__name__}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{dotted}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{dotted}: expected a whole number, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{dotted}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{dotted}: expected a string, got {value!r}")
        return value
    if isinstance(hint, types.UnionType):
        return value
    raise ConfigError(f"{dotted}: unsupported type")  # pragma: no cover - schema bug


def _apply_env(config: Config, env: dict[str, str]) -> None:
    """RELAYWATCH_<SECTION>_<KEY> overrides [section] key; lists: TOML arrays or comma-separated."""
    targets: dict[str, tuple[Any, str, str]] = {}
    for section_name in _section_names(config):
        section = getattr(config, section_name)
        for f in dataclasses.fields(section):
            env_name = f"{ENV_PREFIX}{section_name}_{f.name}".upper()
            targets[env_name] = (section, f.name, f"{section_name}.{f.name}")
    targets[f"{ENV_PREFIX}SECRETS_FILE"] = (config, "secrets_file", "secrets_file")
    for env_name, (target, key, dotted) in targets.items():
        if env_name in env:
            hint = typing.get_type_hints(type(target))[key]
            setattr(target, key, _coerce(_parse_env(env[env_name], hint, env_name), hint, dotted))
    known = set(targets) | {ENV_PREFIX + "CONFIG"} | set(SECRET_NAMES)
    for env_name in env:
        if env_name.startswith(ENV_PREFIX) and env_name not in known:
            raise ConfigError(f"{env_name}: unknown environment setting")


def _parse_env(text: str, hint: Any, env_name: str) -> Any:
    origin = typing.get_origin(hint)
    try:
        if origin is list or hint is dict:
            stripped = text.strip()
            if stripped.startswith("[") or stripped.startswith("{"):
                return tomllib.loads(f"v = {stripped}")["v"]
            (item_hint,) = typing.get_args(hint) or (str,)
            items = [part.strip() for part in stripped.split(",") if part.strip()]
            return [_parse_env(item, item_hint, env_name) for item in items]
        if hint is bool:
            lowered = text.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if hint is int:
            if not text.strip().isascii():  # int() also takes other scripts' digits
                raise ValueError(text)
            return int(text)
        if hint is float:
            return float(text)
    except (ValueError, tomllib.TOMLDecodeError):
        raise ConfigError(f"{env_name}: cannot parse {text!r}") from None
    return text


def _load_secrets(secrets_file: str, env: dict[str, str]) -> Secrets:
    values: dict[str, str] = {}
    if secrets_file:
        values.update(read_secrets_file(Path(secrets_file)))
    for name in SECRET_NAMES:
        if env.get(name):
            values[name] = env[name]
    return Secrets(**{name.lower(): value for name, value in values.items()})


def read_secrets_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; refuses a file that group or others can read, as ssh does for keys."""
    try:
        info = path.stat()
    except OSError as exc:
        raise ConfigError(f"secrets_file: cannot read {path} ({exc.strerror})") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"secrets_file: {path} is readable by group or others; run chmod 600 {path}"
        )
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        name = name.strip().removeprefix("export ").strip()
        if not sep or name not in SECRET_NAMES:
            raise ConfigError(
                f"secrets_file: line {number} of {path}: expected one of "
                f"{', '.join(SECRET_NAMES)} as NAME=value"
            )
        values[name] = value.strip().strip("'\"")
    return values


def config_values(config: Config) -> dict[str, Any]:
    """Every key's value by its dotted name ("logs.window", "secrets_file")."""
    values: dict[str, Any] = {"secrets_file": config.secrets_file}
    for section_name in _section_names(config):
        section = getattr(config, section_name)
        for f in dataclasses.fields(section):
            values[f"{section_name}.{f.name}"] = getattr(section, f.name)
    return values


def _validate(config: Config) -> None:
    """Every key's rule (bot/config_rules.py), then the rules across keys; the first problem
    found is raised as one line naming the key."""
    from bot.config_rules import CROSS_RULES, RULES

    values = config_values(config)
    for dotted, value in values.items():
        rule = RULES.get(dotted)
        problem = rule(value) if rule is not None else None
        if problem:
            # list rules name the item: "logs.paths[1]: …"
            separator = "" if problem.startswith("[") else ": "
            raise ConfigError(f"{dotted}{separator}{_one_line(problem)}")
    for cross in CROSS_RULES:
        found = cross(values)
        if found:
            raise ConfigError(f"{found[0]}: {_one_line(found[1])}")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def effective_config_toml(config: Config) -> str:
    """The effective configuration as TOML, secrets masked."""
    lines = [f"# effective configuration (from {config.source}; environment applied)"]
    lines.append(
        f"# store: {config.store_display}"
        if config.store.url
        else f"# store file: {config.store_path}"
    )
    lines.append(f"secrets_file = {toml_value(config.secrets_file)}")
    for section_name in _section_names(config):
        lines.append("")
        lines.append(f"[{section_name}]")
        for f in dataclasses.fields(getattr(config, section_name)):
            value = getattr(getattr(config, section_name), f.name)
            lines.append(f"{f.name} = {toml_value(value)}")
    lines.append("")
    lines.append("# secrets (environment or secrets_file only)")
    for name, value in config.secrets.items():
        lines.append(f"# {name.upper()} = {mask(value)}")
    return "\n".join(lines) + "\n"


def toml_value(value: Any, hide: bool = True) -> str:
    """A value written as TOML (the effective config, the docs made from it); a value that looks
    like a token pasted into a non-secret key is not shown, unless `hide` is off (a file
    relaywatch writes for the admin from values it chose itself)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        if hide and looks_like_secret(value):
            value = f"{HIDDEN} ({SECRET_ADVICE})"
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v, hide) for v in value) + "]"
    if isinstance(value, dict):
        items = (f"{k} = {toml_value(v, hide)}" for k, v in value.items())
        return "{ " + ", ".join(items) + " }"
    return repr(value)
