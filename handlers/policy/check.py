"""`relaywatch policy check`: is Postfix wired to the policy service safely?

Input is text (`postconf -n` output or a main.cf) and the Postfix version; output is typed findings.
What is flagged, and why:

- check_policy_service without default_action (and no smtpd_policy_service_default_action): when
  the service is down Postfix answers every client `451 4.3.5 Server configuration problem`.
- a policy timeout over 10 s (Postfix's default smtpd_policy_service_timeout is 100 s): a stalled
  service holds every SMTP session that long.
- smtpd_relay_restrictions empty or permissive (no reject_unauth_destination or
  defer_unauth_destination, or a bare `permit` before it): relay control then depends on the order
  of smtpd_recipient_restrictions, where a policy answer could permit relaying.
- a policy service placed before the relay check in the list that holds it: an OK from any policy
  service there would relay (relaywatch never answers OK, but the slot is unsafe).
- Postfix older than 3.0 (no `{ ... }` options, no per-service default_action).
- notes: no policy service at all, a policy service after a permit_* (it never sees
  authenticated or LAN clients), none in smtpd_data_restrictions (counting falls back to RCPT).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

MAX_TIMEOUT = 10.0
POSTFIX_DEFAULT_TIMEOUT = 100.0
RESTRICTION_LISTS = (
    "smtpd_client_restrictions",
    "smtpd_helo_restrictions",
    "smtpd_sender_restrictions",
    "smtpd_relay_restrictions",
    "smtpd_recipient_restrictions",
    "smtpd_data_restrictions",
    "smtpd_end_of_data_restrictions",
)
RELAY_CHECKS = ("reject_unauth_destination", "defer_unauth_destination")


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str  # "problem" (exit 1) or "note"
    message: str
    parameter: str = ""
    scope: str = ""  # "" for main.cf, else the master.cf service ("submission/inet")


@dataclass(frozen=True)
class PolicyService:
    parameter: str  # the restriction list holding it
    position: int
    endpoint: str
    options: dict[str, str] = field(default_factory=dict)
    scope: str = ""


@dataclass(frozen=True)
class PolicyCheckResult:
    version: str
    services: tuple[PolicyService, ...]
    findings: tuple[Finding, ...]

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "problem"]


def parse_main_cf(text: str) -> dict[str, str]:
    """`name = value` settings; lines starting with whitespace continue the previous one."""
    settings: dict[str, str] = {}
    current: str | None = None
    for raw in text.splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        if raw[0].isspace() and current is not None:
            settings[current] = f"{settings[current]} {raw.strip()}".strip()
            continue
        name, sep, value = raw.partition("=")
        if not sep:
            current = None
            continue
        current = name.strip()
        settings[current] = value.strip()
    return settings


def tokens(value: str) -> list[str]:
    """A restriction list's items; a `{ ... }` group stays one token, braces included."""
    out: list[str] = []
    word = ""
    depth = 0
    for char in value:
        if char == "{":
            depth += 1
        elif char == "}":
            depth = max(depth - 1, 0)
        if depth == 0 and (char in ", \t\n"):
            if word:
                out.append(word)
            word = ""
            continue
        word += char
    if word:
        out.append(word)
    return out


def parse_duration(text: str) -> float | None:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if not match:
        return None
    unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2)]
    return float(match.group(1)) * unit


def policy_services(parameter: str, value: str) -> list[PolicyService]:
    items = tokens(value)
    found = []
    for index, item in enumerate(items):
        if item != "check_policy_service":
            continue
        target = items[index + 1] if index + 1 < len(items) else ""
        options: dict[str, str] = {}
        endpoint = target
        if target.startswith("{"):
            parts = [p.strip() for p in target.strip("{}").split(",") if p.strip()]
            endpoint = parts[0] if parts else ""
            for part in parts[1:]:
                key, _, val = part.partition("=")
                options[key.strip()] = val.strip()
        found.append(PolicyService(parameter, index, endpoint, options))
    return found


def version_tuple(version: str) -> tuple[int, ...] | None:
    match = re.match(r"\s*(\d+)\.(\d+)", version)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _relay_restrictions(settings: dict[str, str]) -> str | None:
    """The effective smtpd_relay_restrictions; None when Postfix's default is empty."""
    if "smtpd_relay_restrictions" in settings:
        return settings["smtpd_relay_restrictions"]
    # Postfix's default is permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination
    # from compatibility_level 1 on, and empty below that.
    level = version_tuple(settings.get("compatibility_level", "0") + ".0")
    if level and level[0] >= 1:
        return "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination"
    return None


def _first(items: list[str], names: tuple[str, ...]) -> int | None:
    for index, item in enumerate(items):
        if item in names:
            return index
    return None


def parse_master_overrides(text: str) -> dict[str, dict[str, str]]:
    """`postconf -P` output (service/type/name = value) or a master.cf's `-o` options, by service.

    A master.cf is recognised by its layout (a service line, then indented `-o name=value` or
    `-o { name = value }` lines)."""
    overrides: dict[str, dict[str, str]] = {}
    lines = [
        line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    if all(
        re.match(r"[^\s/]+/[^\s/]+/[^\s=]+\s*=", line) for line in lines if not line[0].isspace()
    ):
        for line in lines:
            match = re.match(r"([^\s/]+/[^\s/]+)/([^\s=]+)\s*=\s*(.*)", line)
            if match:
                overrides.setdefault(match.group(1), {})[match.group(2)] = match.group(3).strip()
        return overrides
    # a master.cf: join each service's lines, then read its -o options
    entries: list[str] = []
    for line in lines:
        if line[0].isspace() and entries:
            entries[-1] += " " + line.strip()
        else:
            entries.append(line.strip())
    for entry in entries:
        fields = entry.split(None, 8)
        if len(fields) < 8:
            continue
        scope = f"{fields[0]}/{fields[1]}"
        args = fields[8] if len(fields) > 8 else ""
        for match in re.finditer(r"-o\s+(\{(?:[^{}]|\{[^{}]*\})*\}|\S+)", args):
            option = match.group(1)
            if option.startswith("{"):
                option = option[1:-1]
            name, sep, value = option.partition("=")
            if sep:
                overrides.setdefault(scope, {})[name.strip()] = value.strip()
    return overrides


def _relevant(overrides: dict[str, str]) -> bool:
    return any(
        name in RESTRICTION_LISTS or name.startswith("smtpd_policy_service_") for name in overrides
    )


def check_policy(text: str, version: str = "", master: str = "") -> PolicyCheckResult:
    """main.cf settings (`postconf -n` or the file), the Postfix version, and optionally the
    master.cf overrides (`postconf -P` or the file): each smtpd service that overrides a
    restriction list is checked as its own scope."""
    settings = parse_main_cf(text)
    findings: list[Finding] = []
    parsed_version = version_tuple(version) if version else None
    if version and parsed_version is None:
        findings.append(
            Finding("version_unknown", "note", f"cannot read the Postfix version {version!r}")
        )
    elif parsed_version is not None and parsed_version < (3, 0):
        findings.append(
            Finding(
                "postfix_too_old",
                "problem",
                f"Postfix {version} is older than 3.0: no per-service default_action; upgrade",
            )
        )
    scopes = [("", settings)] + [
        (scope, {**settings, **options})
        for scope, options in parse_master_overrides(master).items()
        if _relevant(options)
    ]
    services: list[PolicyService] = []
    for scope, merged in scopes:
        found, scoped = _check_scope(merged, scope)
        services.extend(found)
        findings.extend(scoped)
    if not services:
        findings.append(
            Finding(
                "no_policy_service",
                "problem",
                "no check_policy_service in any smtpd_*_restrictions: relaywatch cannot count or "
                "contain anything (see docs/policy.md for the main.cf snippet)",
            )
        )
    return PolicyCheckResult(version, tuple(services), tuple(findings))


def _check_scope(settings: dict[str, str], scope: str) -> tuple[list[PolicyService], list[Finding]]:
    label = f"{scope}: " if scope else ""
    findings: list[Finding] = []
    services = [
        PolicyService(s.parameter, s.position, s.endpoint, s.options, scope)
        for parameter in RESTRICTION_LISTS
        for s in policy_services(parameter, settings.get(parameter, ""))
    ]
    if scope and not services:
        findings.append(
            Finding(
                "service_without_policy",
                "note",
                f"{label}this listener overrides its restrictions without check_policy_service: "
                "its clients are neither counted nor contained",
                scope=scope,
            )
        )
    global_default = settings.get("smtpd_policy_service_default_action", "")
    global_timeout = parse_duration(settings.get("smtpd_policy_service_timeout", "100s"))
    for service in services:
        where = f"{label}{service.parameter} ({service.endpoint or '?'})"
        action = service.options.get("default_action") or global_default
        if not action or action.split()[0].upper() not in ("DUNNO", "PREPEND", "WARN"):
            findings.append(
                Finding(
                    "fails_closed",
                    "problem",
                    f"{where}: no default_action=DUNNO, so while relaywatch is down every "
                    "client gets '451 4.3.5 Server configuration problem'; "
                    "add default_action=DUNNO",
                    service.parameter,
                )
            )
        timeout_text = service.options.get("timeout")
        timeout = parse_duration(timeout_text) if timeout_text else global_timeout
        if timeout is None or timeout > MAX_TIMEOUT:
            shown = timeout_text or settings.get("smtpd_policy_service_timeout", "100s (default)")
            findings.append(
                Finding(
                    "timeout_too_long",
                    "problem",
                    f"{where}: timeout {shown} is over {MAX_TIMEOUT:.0f} s; a stalled service "
                    "would hold every SMTP session that long; use timeout=3s",
                    service.parameter,
                )
            )

    relay = _relay_restrictions(settings)
    relay_items = tokens(relay or "")
    relay_at = _first(relay_items, RELAY_CHECKS)
    bare_permit = _first(relay_items, ("permit",))
    relay_safe = relay_at is not None and (bare_permit is None or bare_permit > relay_at)
    if not relay_safe:
        findings.append(
            Finding(
                "relay_restrictions_permissive",
                "problem",
                f"{label}smtpd_relay_restrictions is "
                + ("empty" if not relay_items else f"'{relay}'")
                + ": it must hold reject_unauth_destination (or defer_unauth_destination) before "
                "any bare permit, or a policy answer in smtpd_recipient_restrictions could permit "
                "relaying",
                "smtpd_relay_restrictions",
            )
        )

    for service in services:
        items = tokens(settings.get(service.parameter, ""))
        guard = _first(items, RELAY_CHECKS)
        unsafe = service.parameter == "smtpd_relay_restrictions" and (
            guard is None or service.position < guard
        )
        unsafe = unsafe or (
            service.parameter == "smtpd_recipient_restrictions"
            and not relay_safe
            and (guard is None or service.position < guard)
        )
        if unsafe:
            findings.append(
                Finding(
                    "policy_before_relay_check",
                    "problem",
                    f"{label}{service.parameter}: check_policy_service comes before the relay "
                    "check, so a policy service answering OK there would relay mail; put relay "
                    "control in smtpd_relay_restrictions and the policy service in "
                    "smtpd_recipient_restrictions",
                    service.parameter,
                )
            )
        permits = [
            i for i, item in enumerate(items[: service.position]) if item.startswith("permit")
        ]
        if permits and service.parameter == "smtpd_recipient_restrictions":
            findings.append(
                Finding(
                    "policy_after_permit",
                    "note",
                    f"{label}{service.parameter}: check_policy_service comes after "
                    f"{items[permits[0]]}, so it never sees those clients (authenticated "
                    "or LAN senders are the ones to watch); put it first",
                    service.parameter,
                )
            )
    if services and not any(s.parameter == "smtpd_data_restrictions" for s in services):
        findings.append(
            Finding(
                "no_data_stage",
                "note",
                f"{label}no check_policy_service in smtpd_data_restrictions: messages are "
                "counted per RCPT instead of once per message at DATA",
                "smtpd_data_restrictions",
            )
        )
    return services, [replace(f, scope=scope) for f in findings]
