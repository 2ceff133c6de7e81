"""Maps `[relay]` configuration onto the relay engine and wraps its report as a CheckOutcome."""

from __future__ import annotations

from collections.abc import Callable

from bot.checks import CheckOutcome, CheckStatus, ProgressCallback
from bot.config import Config
from handlers.relay import (
    STANDARD_PORTS,
    BatteryNames,
    DnsLookup,
    DnspythonLookup,
    ProbeOptions,
    ProbeTimeouts,
    RelayReport,
    TargetPolicy,
    Verdict,
    allowlist_addresses,
    check_relay,
)


def lookup_for(config: Config) -> DnspythonLookup:
    return DnspythonLookup(config.relay.nameservers, timeout=config.relay.dns_timeout)


def probe_options(
    config: Config,
    confirm: bool = True,
    tls: str | None = None,
    only_tests: tuple[str, ...] = (),
) -> ProbeOptions:
    relay = config.relay
    mode = tls or relay.tls
    if mode not in ("auto", "require", "off"):
        raise ValueError(f"tls must be auto, require or off, not {mode!r}")
    return ProbeOptions(
        names=BatteryNames(
            test_domain=relay.test_domain,
            sender_domain=relay.sender_domain,
            local_part=relay.local_part,
            sender_local_part=relay.sender_local_part,
        ),
        helo_name=relay.helo_name,
        tls=mode,  # type: ignore[arg-type]
        confirm=confirm,
        timeouts=ProbeTimeouts(
            connect=relay.connect_timeout,
            banner=relay.banner_timeout,
            command=relay.command_timeout,
            budget=relay.target_budget,
            tarpit_reply=relay.tarpit_reply,
            tarpit_budget=relay.tarpit_budget,
        ),
        only_tests=only_tests,
    )


async def chat_policy(
    config: Config,
    lookup: DnsLookup,
    is_admin: bool,
    watched: Callable[[str], bool],
) -> TargetPolicy:
    """Chat: ports 25/465/587/2525 + relay.extra_ports for everyone; non-admins also limited to the
    watch list and the allowlist (checked against the resolved address)."""
    relay = config.relay
    return TargetPolicy(
        allowed_ports=frozenset((*STANDARD_PORTS, *relay.extra_ports)),
        allow_networks=tuple(relay.allow_networks),
        allow_hosts=tuple(relay.allow_hosts),
        watched=watched,
        restricted=not is_admin,
        allow_host_addresses=(
            await allowlist_addresses(relay.allow_hosts, lookup) if not is_admin else frozenset()
        ),
    )


def status_for(report: RelayReport) -> CheckStatus:
    verdicts = {t.verdict for t in report.targets}
    if verdicts & {Verdict.OPEN, Verdict.SUSPECT}:
        return "problem"
    if verdicts & {Verdict.INCONCLUSIVE, Verdict.UNREACHABLE} or not verdicts:
        return "failed"
    return "ok"


async def run_relay(
    config: Config,
    targets: list[str] | None = None,
    *,
    mx_domains: list[str] | None = None,
    confirm: bool = True,
    tls: str | None = None,
    only_tests: tuple[str, ...] = (),
    policy: TargetPolicy | None = None,
    lookup: DnsLookup | None = None,
    progress: ProgressCallback | None = None,
) -> CheckOutcome:
    """Runs the battery; raises TargetError / TargetNotAllowed for bad or refused input (before
    any probe). Without targets or MX domains, checks relay.default_target."""
    lookup = lookup or lookup_for(config)
    texts = list(targets or [])
    if not texts and not mx_domains:
        texts = [config.relay.default_target]
    report = await check_relay(
        texts,
        probe_options(config, confirm=confirm, tls=tls, only_tests=only_tests),
        lookup,
        policy=policy,
        mx_domains=list(mx_domains or []),
        concurrency=config.relay.concurrency,
        progress=progress,
    )
    subject = ", ".join([*texts, *(f"MX {d}" for d in mx_domains or [])])
    return CheckOutcome(
        kind="relay",
        subject=subject,
        status=status_for(report),
        data=report.to_dict(),
        result=report,
    )
