"""Every configuration key is validated at load: a bad value for any key is refused with one line
naming the key (exit 2 from the CLI). The keys come from the config dataclasses, so a new key
without a rule (and a bad value here) fails this test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.config import Config, ConfigError, config_values, load_config, toml_value
from bot.config_rules import RULES

# one value per key that loads (right type, or a type error for booleans) but must be refused
BAD_VALUES: dict[str, Any] = {
    "secrets_file": "secrets\n.env",
    "store.path": "relaywatch\t.db",
    "logs.paths": ["mail.log"],
    "logs.journal": "yes",
    "logs.journal_units": ["postfix; rm -rf /"],
    "logs.window": "forever",
    "logs.syslog_names": ["post fix"],
    "logs.journal_timeout": -1.0,
    "logs.max_decompressed_mb": 0,
    "store.busy_timeout": 0.0,
    "policy.local_domains": ["not a domain"],
    "store.url": "mysql://db/relaywatch",
    "schedule.domain_every_hours": -1,
    "policy.throttle_rate": "fast",
    "queue.mta": "sendmail",
    "queue.postfix_config_dir": "/etc/post\nfix",
    "queue.exim_path": "exim -be",
    "queue.exim_config": "-be",
    "queue.privilege": ["sudo -n"],
    "queue.timeout": 0.0,
    "queue.ids_per_call": 0,
    "queue.max_ids_per_action": 0,
    "domain.nameservers": ["nonsense"],
    "domain.timeout": 0.0,
    "domain.selectors": ["bad selector"],
    "domain.sending_ips": ["192.0.2.0/24"],
    "domain.helo_names": ["bad_helo!"],
    "domain.mta_sts_timeout": -1.0,
    "domain.mta_sts_max_bytes": 10,
    "limits.mailsummary_max_days": 0.0,
    "limits.admin_mailsummary_max_days": -1.0,
    "limits.relaycheck_max_targets": 0,
    "limits.admin_relaycheck_max_targets": 0,
    "limits.heavy_jobs_per_user": 0,
    "limits.admin_heavy_jobs_per_user": 0,
    "limits.heavy_jobs_total": 0,
    "relay.default_target": "localhost:99999",
    "relay.allow_networks": ["lan"],
    "relay.allow_hosts": ["bad host!"],
    "relay.extra_ports": [70000],
    "relay.test_domain": "localhost",
    "relay.local_part": "relay watch",
    "relay.tls": "maybe",
    "relay.connect_timeout": 0.0,
    "relay.banner_timeout": -5.0,
    "relay.command_timeout": 0.0,
    "relay.target_budget": -1.0,
    "relay.tarpit_reply": 0.0,
    "relay.tarpit_budget": -3.0,
    "relay.concurrency": 0,
    "relay.sender_domain": "exa mple.org",
    "relay.sender_local_part": "",
    "relay.helo_name": "bad_helo!",
    "relay.nameservers": ["nonsense"],
    "relay.dns_timeout": 0.0,
    "blacklist.nameservers": ["bad"],
    "blacklist.concurrency": 0,
    "blacklist.timeout": -2.0,
    "blacklist.retries": -1,
    "blacklist.max_ipv4_prefix": 40,
    "blacklist.max_ipv6_prefix": 200,
    "blacklist.disabled_zones": ["not a zone"],
    "blacklist.extra_zones": [{"zone": "bl.example.org", "kind": "ipv5"}],
    "blacklist.catalog_file": "/nonexistent/catalog.toml",
    "logsummary.internal_networks": ["lan"],
    "logsummary.sasl_distinct_ips": -1,
    "logsummary.sasl_distinct_networks": -1,
    "logsummary.volume_spike_factor": 0.5,
    "logsummary.volume_share": 1.5,
    "logsummary.min_messages_for_ratio": 0,
    "logsummary.bounce_ratio": 0.0,
    "logsummary.user_unknown_count": -3,
    "logsummary.user_unknown_ratio": 2.0,
    "logsummary.recipients_per_message": 0.0,
    "logsummary.internal_outbound_messages": -1,
    "logsummary.relay_probe_count": 0,
    "logsummary.sasl_failures_per_ip": -1,
    "logsummary.sasl_failures_per_account": 0,
    "logsummary.local_domains": ["our domain"],
    "logsummary.workers": -1,
    "policy.listen": "0.0.0.0",
    "policy.default_expiry": "forever",
    "policy.max_expiry": "0h",
    "policy.remind_before": "soon",
    "policy.refresh_seconds": 0.0,
    "policy.flush_seconds": -1.0,
    "policy.replica_name": "replica a; drop",
    "policy.reject_text": "",
    "policy.defer_text": "two\nlines",
    "policy.hold_text": "  ",
    "policy.account_messages_per_minute": -1,
    "policy.account_messages_per_day": -1,
    "policy.account_client_ips_per_hour": -1,
    "policy.account_networks_per_hour": -1,
    "policy.host_outbound_per_hour": -1,
    "policy.host_domains_per_hour": -1,
    "policy.exempt_accounts": ["two words"],
    "policy.exempt_hosts": ["not-an-ip"],
    "policy.auto_action": {"account_messages_per_minute": "explode"},
    "slack.admins": ["alice"],
    "slack.admin_usergroup": "admins",
    "slack.allowed_channels": ["#bad channel!"],
    "slack.digest_channel": "#no spaces",
    "slack.api_url": "ftp://slack.com/api/",
    "slack.commands_per_minute": -1,
    "schedule.enabled": "yes",
    "schedule.digest_time": "25:00",
    "schedule.timezone": "Mars/Olympus",
    "schedule.digest_grace_minutes": -1,
    "schedule.blacklist_every_minutes": -1,
    "schedule.relay_every_hours": -1,
    "schedule.logsummary_every_minutes": -5,
}
KEYS = sorted(config_values(Config()))


def _toml(dotted: str, value: Any) -> str:
    section, _, key = dotted.rpartition(".")
    rendered = toml_value(value).replace("\n", "\\n").replace("\t", "\\t")  # TOML escapes
    line = f"{key} = {rendered}\n"
    return f"[{section}]\n{line}" if section else line


def _refusal(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), env={"HOME": str(tmp_path)})
    return str(caught.value)


def test_every_key_has_a_rule_and_a_bad_value() -> None:
    assert [k for k in KEYS if k not in RULES] == [], "keys without a validation rule"
    assert [k for k in KEYS if k not in BAD_VALUES] == [], "keys without a bad value in this test"
    assert sorted(set(RULES) - set(KEYS)) == [], "rules for keys that do not exist"


def test_the_defaults_pass(tmp_path: Path) -> None:
    load_config(env={"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)})


@pytest.mark.parametrize("dotted", KEYS)
def test_a_bad_value_is_refused_naming_the_key(tmp_path: Path, dotted: str) -> None:
    if dotted not in BAD_VALUES:
        pytest.fail(f"{dotted}: add a bad value to BAD_VALUES (and a rule to bot/config_rules)")
    message = _refusal(tmp_path, _toml(dotted, BAD_VALUES[dotted]))
    assert message.startswith(dotted), message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("dotted", "value", "reason"),
    [
        ("logsummary.internal_networks", ["lan"], "'lan' is not an IP network"),
        ("logsummary.internal_networks", ["127.0.0.0/33"], "'127.0.0.0/33' is not an IP network"),
        ("blacklist.nameservers", ["bad"], "'bad': expected an IP address"),
        ("relay.nameservers", ["nonsense"], "'nonsense': expected an IP address"),
        ("logs.window", "forever", "'forever' is not a window"),
        ("relay.extra_ports", [25, 0], "relay.extra_ports[1]: 0 is not a port"),
        ("relay.allow_networks", ["10.0.0.0/8", "lan"], "relay.allow_networks[1]: 'lan'"),
        ("logsummary.bounce_ratio", -0.5, "must be a share above 0"),
        ("policy.default_expiry", "1 day", "is not a duration"),
    ],
)
def test_the_reported_cases(tmp_path: Path, dotted: str, value: Any, reason: str) -> None:
    assert reason in _refusal(tmp_path, _toml(dotted, value))


def test_keys_are_checked_against_each_other(tmp_path: Path) -> None:
    message = _refusal(tmp_path, '[policy]\ndefault_expiry = "8d"\nmax_expiry = "7d"\n')
    assert message == "policy.default_expiry: 8d is longer than policy.max_expiry (7d)"


def test_environment_values_are_checked_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^relay.nameservers\[0\]: 'nonsense'"):
        load_config(env={"HOME": str(tmp_path), "RELAYWATCH_RELAY_NAMESERVERS": "nonsense"})


def test_good_values_of_every_shape_load(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[logs]\nwindow = "7d"\npaths = ["/var/log/mail.log"]\n'
        '[relay]\nnameservers = ["127.0.0.1:5353", "[::1]:53"]\nallow_hosts = ["*.example.com"]\n'
        'allow_networks = ["192.0.2.0/24", "2001:db8::/32"]\nextra_ports = [2526]\n'
        'default_target = "[2001:db8::1]:25"\n'
        '[logsummary]\ninternal_networks = ["10.0.0.0/8", "fd00::/8", "192.168.1.7"]\n'
        '[policy]\nlisten = "unix:/var/spool/postfix/private/relaywatch"\n'
        'auto_action = { account_messages_per_minute = "hold" }\n'
        '[slack]\nadmins = ["U012AB3CD"]\nallowed_channels = ["C0123ABCD", "G0456EFGH"]\n'
    )
    config = load_config(str(path), env={"HOME": str(tmp_path)})
    assert config.relay.nameservers == ["127.0.0.1:5353", "[::1]:53"]


@pytest.mark.parametrize("dotted", ["logsummary.internal_networks", "relay.nameservers"])
def test_config_check_exits_2_with_one_line(tmp_path: Path, capsys, dotted: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(_toml(dotted, BAD_VALUES[dotted]))
    assert main(["--config", str(path), "config", "check"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and dotted in captured.err
