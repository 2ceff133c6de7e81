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

ENV_PREFIX = "RELAYWATCH_"
SECRET_NAMES = ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "SPAMHAUS_DQS_KEY")


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
    path: str = ""  # empty: <state dir>/relaywatch.db


@dataclass
class LogsConfig:
    paths: list[str] = field(default_factory=lambda: ["/var/log/mail.log"])
    # read the systemd journal (journalctl -o json) instead of / besides files
    journal: bool = False
    journal_units: list[str] = field(default_factory=lambda: ["postfix@-.service", "exim4.service"])
    window: str = "24h"
    # syslog names of Postfix instances besides "postfix…" (Postfix's syslog_name setting)
    syslog_names: list[str] = field(default_factory=list)
    journal_timeout: float = 600.0


@dataclass
class RelayConfig:
    default_target: str = "localhost:25"
    # who non-admin Slack users may test besides watch-list servers
    allow_networks: list[str] = field(default_factory=list)
    allow_hosts: list[str] = field(default_factory=list)
    extra_ports: list[int] = field(default_factory=list)
    test_domain: str = "example.net"
    local_part: str = "relaywatch-test"
    tls: str = "auto"
    connect_timeout: float = 10.0
    banner_timeout: float = 30.0
    command_timeout: float = 30.0
    target_budget: float = 180.0
    concurrency: int = 10
    sender_domain: str = "example.org"  # the external sender's domain (RFC 2606)
    sender_local_part: str = "relaywatch"
    helo_name: str = ""  # empty: relaywatch-probe.<sender_domain>
    # reverse DNS / MX / name lookups: "IP" or "IP:PORT"; empty: the system resolver
    nameservers: list[str] = field(default_factory=list)
    dns_timeout: float = 3.0


@dataclass
class BlacklistConfig:
    # "IP" or "IP:PORT"; empty: the system resolver's nameservers
    nameservers: list[str] = field(default_factory=list)
    concurrency: int = 200
    timeout: float = 2.0
    retries: int = 2
    # largest IPv4 range accepted, as a prefix length (/22 = 1,024 addresses)
    max_ipv4_prefix: int = 22
    max_ipv6_prefix: int = 118
    disabled_zones: list[str] = field(default_factory=list)
    # extra lists: [{zone = "...", kind = "ipv4", severity = "minor", delist_url = "..."}]
    extra_zones: list[dict] = field(default_factory=list)
    # a DNSBL catalog TOML file used instead of the built-in handlers/data/dnsbl.toml
    catalog_file: str = ""


@dataclass
class LogSummaryConfig:
    # the LAN: hosts here sending straight out are the "compromised gateway" case
    internal_networks: list[str] = field(default_factory=list)
    sasl_distinct_ips: int = 5
    sasl_distinct_networks: int = 3
    volume_spike_factor: float = 5.0
    volume_share: float = 0.25
    min_messages_for_ratio: int = 20
    bounce_ratio: float = 0.3
    user_unknown_count: int = 20
    user_unknown_ratio: float = 0.1
    recipients_per_message: float = 10.0
    internal_outbound_messages: int = 50
    relay_probe_count: int = 5
    sasl_failures_per_ip: int = 10
    sasl_failures_per_account: int = 10
    # our own mail domains (deliveries elsewhere are "outbound"); also learned from local delivery
    local_domains: list[str] = field(default_factory=list)
    # reader processes for large inputs; 0: one per CPU, at most 4
    workers: int = 0


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


@dataclass
class SlackConfig:
    admins: list[str] = field(default_factory=list)
    admin_usergroup: str = ""
    # empty: every channel the bot is in
    allowed_channels: list[str] = field(default_factory=list)
    digest_channel: str = ""
    api_url: str = "https://slack.com/api/"
    commands_per_minute: int = 10


@dataclass
class ScheduleConfig:
    enabled: bool = True
    digest_time: str = "08:00"
    timezone: str = "UTC"
    # a digest missed while the bot was down is still sent if we come back within this many minutes
    digest_grace_minutes: int = 360
    blacklist_every_minutes: int = 60
    relay_every_hours: int = 6
    logsummary_every_minutes: int = 60


@dataclass
class Secrets:
    slack_bot_token: str = ""
    slack_app_token: str = ""
    slack_signing_secret: str = ""
    spamhaus_dqs_key: str = ""

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
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    # a KEY=VALUE file holding secrets; must be readable by its owner only
    secrets_file: str = ""
    secrets: Secrets = field(default_factory=Secrets, repr=False)
    source: str = "defaults"  # which file, if any, the values came from

    @property
    def store_path(self) -> Path:
        return Path(self.store.path) if self.store.path else _default_state_dir() / "relaywatch.db"


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
    env = dict(os.environ) if env is None else env
    config = Config()
    explicit = path or env.get(ENV_PREFIX + "CONFIG")
    file_path = Path(explicit) if explicit else default_config_path(env)
    if file_path is not None:
        _apply_file(config, file_path)
        config.source = str(file_path)
    _apply_env(config, env)
    config.secrets = _load_secrets(config.secrets_file, env)
    _validate(config)
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
    known = set(targets) | {ENV_PREFIX + "CONFIG"}
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


def _validate(config: Config) -> None:
    if config.relay.tls not in ("auto", "require", "off"):
        raise ConfigError(f"relay.tls: expected auto, require or off, got {config.relay.tls!r}")
    if config.blacklist.concurrency < 1:
        raise ConfigError("blacklist.concurrency: must be at least 1")
    if config.relay.concurrency < 1:
        raise ConfigError("relay.concurrency: must be at least 1")
    if not 8 <= config.blacklist.max_ipv4_prefix <= 32:
        raise ConfigError("blacklist.max_ipv4_prefix: must be between 8 and 32")
    hour, sep, minute = config.schedule.digest_time.partition(":")
    if not (sep and hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60):
        raise ConfigError(
            f"schedule.digest_time: expected HH:MM, got {config.schedule.digest_time!r}"
        )
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(config.schedule.timezone)
    except Exception:
        raise ConfigError(
            f"schedule.timezone: unknown time zone {config.schedule.timezone!r}"
        ) from None


def effective_config_toml(config: Config) -> str:
    """The effective configuration as TOML, secrets masked."""
    lines = [f"# effective configuration (from {config.source}; environment applied)"]
    lines.append(f"# store file: {config.store_path}")
    lines.append(f"secrets_file = {_toml_value(config.secrets_file)}")
    for section_name in _section_names(config):
        lines.append("")
        lines.append(f"[{section_name}]")
        for f in dataclasses.fields(getattr(config, section_name)):
            value = getattr(getattr(config, section_name), f.name)
            lines.append(f"{f.name} = {_toml_value(value)}")
    lines.append("")
    lines.append("# secrets (environment or secrets_file only)")
    for name, value in config.secrets.items():
        lines.append(f"# {name.upper()} = {mask(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return repr(value)
