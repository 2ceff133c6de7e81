"""Which networks are "ours" (the LAN) when the configuration does not say.

The mail server already knows whom it trusts to relay: Postfix's `mynetworks`, Exim's
`relay_from_hosts`. When relaywatch runs on the mail server we ask the MTA (`postconf -h
mynetworks`, `exim -bP +relay_from_hosts`); otherwise we assume the private ranges
(RFC 1918, IPv6 ULA) and loopback. Every report says which networks were assumed and where they
came from, so a wrong guess is visible.

Everything the discovery touches is an explicit input (program names, a config directory, the
command runner), so it can be tested against a real Postfix configuration in a temp directory.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

# RFC 1918, loopback, IPv6 unique local addresses (RFC 4193) and loopback
DEFAULT_NETWORKS = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "127.0.0.0/8",
    "fc00::/7",
    "::1/128",
)
DEFAULT_SOURCE = "default: RFC 1918, loopback and IPv6 ULA/loopback (no MTA found on this machine)"
COMMAND_TIMEOUT = 5.0

# (argv) → (exit status, stdout); the default runs the program
Runner = Callable[[Sequence[str]], tuple[int, str]]


@dataclass(frozen=True)
class LanChoice:
    networks: tuple[str, ...]
    source: str  # where they came from, for the report header
    skipped: tuple[str, ...] = ()  # entries the MTA has that are not networks (tables, names)


def run_command(argv: Sequence[str]) -> tuple[int, str]:
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return 127, ""
    return done.returncode, done.stdout


def normalise_network(text: str) -> str | None:
    """'192.168.1.0/24', '[::1]/128', '10.1.2.3' → a CIDR string; anything else → None."""
    item = text.strip()
    if item.startswith("["):
        close = item.find("]")
        if close < 0:
            return None
        item = item[1:close] + item[close + 1 :]
    try:
        return str(ipaddress.ip_network(item, strict=False))
    except ValueError:
        return None


def parse_postfix_mynetworks(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """`postconf -h mynetworks` output → (networks, entries that are not networks).

    Postfix separates entries by whitespace or commas; `type:table` lookups and /file/names are
    legal there but name no network we can read, so they are reported as skipped."""
    networks: list[str] = []
    skipped: list[str] = []
    for item in text.replace(",", " ").split():
        network = normalise_network(item)
        if network is not None:
            if network not in networks:
                networks.append(network)
        else:
            skipped.append(item)
    return tuple(networks), tuple(skipped)


def parse_exim_hostlist(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """`exim -bP +relay_from_hosts` output (`hostlist relay_from_hosts = <; a ; b`) →
    (networks, items that are not networks: host names, lookups, `@[]`, negations)."""
    value = text.strip()
    if "=" in value.split("\n", 1)[0]:
        value = value.split("=", 1)[1].strip()
    separator = ":"
    if value.startswith("<") and len(value) > 1 and not value[1].isspace():
        separator, value = value[1], value[2:]
    if separator == ":":
        # in a colon-separated list a literal colon is doubled (IPv6: ::::1)
        items = [part.replace("\0", ":") for part in value.replace("::", "\0").split(":")]
    else:
        items = value.split(separator)
    networks: list[str] = []
    skipped: list[str] = []
    for item in (part.strip() for part in items):
        if not item:
            continue
        network = normalise_network(item)
        if network is not None:
            if network not in networks:
                networks.append(network)
        else:
            skipped.append(item)
    return tuple(networks), tuple(skipped)


def discover_internal_networks(
    configured: Sequence[str] = (),
    configured_source: str = "[logsummary] internal_networks",
    postconf: str | None = "postconf",
    postfix_config_dir: str | None = None,
    exim: Sequence[str] = ("exim4", "exim"),
    exim_config: str | None = None,
    run: Runner = run_command,
    which: Callable[[str], str | None] = shutil.which,
) -> LanChoice:
    """The internal networks: as configured; else the local MTA's trusted networks; else the
    private ranges and loopback."""
    if configured:
        return LanChoice(tuple(configured), configured_source)
    unanswered: list[str] = []  # MTAs present whose answer we could not use
    if postconf and which(postconf):
        argv = [postconf]
        if postfix_config_dir:
            argv += ["-c", postfix_config_dir]
        status, out = run([*argv, "-h", "mynetworks"])
        networks, skipped = parse_postfix_mynetworks(out) if status == 0 else ((), ())
        if networks:
            return LanChoice(networks, "Postfix mynetworks (postconf -h mynetworks)", skipped)
        unanswered.append("postconf")
    for program in exim:
        if not which(program):
            continue
        argv = [program] + (["-C", exim_config] if exim_config else [])
        status, out = run([*argv, "-bP", "+relay_from_hosts"])  # a named list: -bP +name
        networks, skipped = parse_exim_hostlist(out) if status == 0 else ((), ())
        if networks:
            return LanChoice(
                networks,
                f"Exim relay_from_hosts ({Path(program).name} -bP +relay_from_hosts)",
                skipped,
            )
        unanswered.append(program)
        break
    if unanswered:
        return LanChoice(
            DEFAULT_NETWORKS,
            "default: RFC 1918, loopback and IPv6 ULA/loopback "
            f"({' and '.join(unanswered)} gave no trusted networks)",
        )
    return LanChoice(DEFAULT_NETWORKS, DEFAULT_SOURCE)
