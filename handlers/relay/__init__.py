"""Open-relay tester and SMTP diagnostics: a battery of relay attempts over one reused session.

Public API: `check_relay` (targets as typed → `RelayReport`), `check_targets`, `check_target`,
`plan_targets`, the battery (`BATTERY`, `build_battery`), options and result types.
"""

from handlers.relay.battery import BATTERY, BatteryNames, RelayTest, RelayTestSpec, build_battery
from handlers.relay.diagnostics import DnsLookup, DnsLookupError, DnspythonLookup
from handlers.relay.engine import (
    PlannedTargets,
    ProbeOptions,
    check_relay,
    check_target,
    check_targets,
    plan_targets,
)
from handlers.relay.model import (
    AttemptOutcome,
    CertificateInfo,
    Diagnostics,
    RelayReport,
    RelayTestResult,
    ReverseDns,
    SmtpExchange,
    TargetReport,
    TlsInfo,
    Verdict,
)
from handlers.relay.session import ProbeTimeouts
from handlers.relay.targets import (
    STANDARD_PORTS,
    ResolvedTarget,
    TargetError,
    TargetNotAllowed,
    TargetPolicy,
    TargetSpec,
    allowlist_addresses,
    parse_target,
)

__all__ = [
    "BATTERY",
    "STANDARD_PORTS",
    "AttemptOutcome",
    "BatteryNames",
    "CertificateInfo",
    "Diagnostics",
    "DnsLookup",
    "DnsLookupError",
    "DnspythonLookup",
    "PlannedTargets",
    "ProbeOptions",
    "ProbeTimeouts",
    "RelayReport",
    "RelayTest",
    "RelayTestResult",
    "RelayTestSpec",
    "ResolvedTarget",
    "ReverseDns",
    "SmtpExchange",
    "TargetError",
    "TargetNotAllowed",
    "TargetPolicy",
    "TargetReport",
    "TargetSpec",
    "TlsInfo",
    "Verdict",
    "allowlist_addresses",
    "build_battery",
    "check_relay",
    "check_target",
    "check_targets",
    "parse_target",
    "plan_targets",
]
