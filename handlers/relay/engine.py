"""Runs the battery against targets: one reused session per target, targets concurrently (bounded).

Never completes a message: after an accepted RCPT it sends DATA (`confirm`, the default) and hangs
up on the 354 without a body or the final dot, so nothing can be queued; a server that accepts at
RCPT but refuses at DATA is then told apart from an open relay. `confirm=False` (--no-data) stops
at RCPT.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from handlers.relay.battery import BatteryNames, RelayTest, address_literal, build_battery
from handlers.relay.diagnostics import (
    DnsLookup,
    diagnostic_warnings,
    reverse_dns,
    user_lookup_enabled,
    vantage_warning,
)
from handlers.relay.model import (
    AttemptOutcome,
    RelayReport,
    RelayTestResult,
    ReverseDns,
    SmtpExchange,
    TargetReport,
    Verdict,
)
from handlers.relay.session import (
    IMPLICIT_TLS_PORTS,
    BudgetExhausted,
    ProbeSession,
    ProbeTimeouts,
    SessionDropped,
    SessionError,
    SessionGarbled,
    SessionSetupFailed,
    SessionTimeout,
    TlsMode,
)
from handlers.relay.targets import (
    ResolvedTarget,
    TargetError,
    TargetPolicy,
    TargetSpec,
    mx_targets,
    parse_target,
    resolve_target,
)
from handlers.relay.verdict import decide, is_relay_refusal

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ProbeOptions:
    names: BatteryNames = field(default_factory=BatteryNames)
    helo_name: str = ""  # empty: "relaywatch-probe.<sender domain>"
    tls: TlsMode = "auto"
    confirm: bool = True  # DATA after an accepted RCPT (hang up on the 354); False: RCPT only
    timeouts: ProbeTimeouts = field(default_factory=ProbeTimeouts)
    # Postfix slows every reply by a second after 10 errors (smtpd_soft_error_limit); a fresh
    # connection before that keeps the battery fast without hiding anything.
    errors_per_session: int = 8
    max_drops: int = 6  # unplanned disconnects tolerated before giving up on a target
    max_consecutive_timeouts: int = 2  # a tarpit: stop instead of waiting out every test
    # once a tarpit is recognised, the remaining tests run over this many sessions side by side
    # (a tarpit slows each session, not how many there are), within the tarpit budget
    tarpit_sessions: int = 8
    check_vrfy: bool = True
    only_tests: tuple[str, ...] = ()
    implicit_tls_ports: tuple[int, ...] = IMPLICIT_TLS_PORTS

    @property
    def ehlo_name(self) -> str:
        return self.helo_name or f"relaywatch-probe.{self.names.sender_domain}"


async def check_target(
    target: ResolvedTarget,
    options: ProbeOptions,
    lookup: DnsLookup,
    progress: Callable[[ResolvedTarget, int, int, RelayTestResult | None], None] | None = None,
) -> TargetReport:
    """The whole story for one target; never raises for what the server does."""
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    deadline = loop.time() + options.timeouts.budget
    report = TargetReport(
        target=target.label,
        host=target.spec.host,
        port=target.spec.port,
        address=target.address,
        verdict=Verdict.INCONCLUSIVE,
        explanation="",
        confirm=options.confirm,
    )
    diagnostics = report.diagnostics
    # reverse DNS runs beside the SMTP session, so it costs no extra time
    rdns_task = asyncio.create_task(reverse_dns(lookup, target.address))
    session = ProbeSession(
        address=target.address,
        port=target.spec.port,
        server_hostname=target.spec.host,
        helo_name=options.ehlo_name,
        tls=options.tls,
        timeouts=options.timeouts,
        deadline=deadline,
        log=report.connect_log,
        diagnostics=diagnostics,
        implicit_tls_ports=options.implicit_tls_ports,
    )
    try:
        await _run_battery(session, target, options, report, progress)
    except Exception as exc:  # a probe that breaks is inconclusive, never a crash or "closed"
        report.verdict, report.error = Verdict.INCONCLUSIVE, f"{type(exc).__name__}: {exc}"
        report.explanation = f"Inconclusive: the probe failed unexpectedly ({report.error})."
    finally:
        session.close()
        report.source_ip = session.source_ip
        diagnostics.reverse_dns = await _finish_rdns(rdns_task, session)
        ptr = set(diagnostics.reverse_dns.ptr)
        if ptr:
            if diagnostics.banner_name:
                diagnostics.banner_matches_ptr = diagnostics.banner_name in ptr
            if diagnostics.ehlo_name:
                diagnostics.ehlo_matches_ptr = diagnostics.ehlo_name in ptr
        diagnostics.total_ms = (time.perf_counter() - started) * 1000
    if report.source_ip:
        warning = vantage_warning(report.source_ip, target.address)
        if warning:
            report.warnings.append(warning)
    if report.verdict is not Verdict.UNREACHABLE:
        report.warnings.extend(diagnostic_warnings(diagnostics))
    return report


async def _finish_rdns(task: asyncio.Task[ReverseDns], session: ProbeSession) -> ReverseDns:
    # DNS has its own lifetime; this cap only guards against a lookup object without one
    try:
        return await asyncio.wait_for(task, timeout=max(session.remaining(), 5.0))
    except TimeoutError:
        return ReverseDns(error="reverse DNS lookup timed out")
    except Exception as exc:  # a broken resolver must not turn a finished probe into a crash
        return ReverseDns(error=f"reverse DNS lookup failed: {exc}")


async def _run_battery(
    session: ProbeSession,
    target: ResolvedTarget,
    options: ProbeOptions,
    report: TargetReport,
    progress: Callable[[ResolvedTarget, int, int, RelayTestResult | None], None] | None,
) -> None:
    try:
        await session.open()
    except SessionSetupFailed as exc:
        report.verdict = exc.verdict
        report.error = str(exc)
        if exc.verdict is Verdict.UNREACHABLE:
            report.explanation = f"Unreachable: {exc}."
        else:
            report.explanation = (
                f"Inconclusive: {exc}. No relay test could run; check the server and re-run."
            )
        return
    except BudgetExhausted as exc:
        report.verdict, report.error = Verdict.INCONCLUSIVE, str(exc)
        report.explanation = f"Inconclusive: {exc}." + _tarpit_note(session, report)
        return
    except SessionError as exc:  # the greeting came, then EHLO timed out, dropped or broke SMTP
        report.verdict, report.error = Verdict.INCONCLUSIVE, str(exc)
        report.explanation = f"Inconclusive: {exc}; no relay test could run." + _tarpit_note(
            session, report
        )
        return
    diagnostics = report.diagnostics
    if options.check_vrfy:
        await _check_vrfy_expn(session, report)
    server_name = (
        diagnostics.banner_name
        or diagnostics.ehlo_name
        or (target.spec.host if not target.spec.is_address else address_literal(target.address))
    )
    tests = build_battery(
        options.names,
        server_name=server_name,
        address_literal=address_literal(target.address),
        only=list(options.only_tests) or None,
    )
    if progress:
        progress(target, 0, len(tests), None)
    results: list[RelayTestResult | None] = [None] * len(tests)
    finished = 0

    def done(index: int, result: RelayTestResult) -> None:
        nonlocal finished
        results[index] = result
        finished += 1
        if progress:
            progress(target, finished, len(tests), result)

    runner = _BatteryRunner(session, options)
    runners = [runner]
    index = 0
    while index < len(tests):
        if session.tarpit and len(tests) - index > 1 and options.tarpit_sessions > 1:
            runners += await _run_side_by_side(session, options, tests, index, done)
            break
        done(index, await runner.run(tests[index]))
        index += 1
    await session.quit()
    report.tests.extend(
        result or _not_run(test, "the time for this server ran out first")
        for test, result in zip(tests, results, strict=True)
    )
    verdict, explanation, evidence = decide(report.tests, options.confirm, bool(session.tarpit))
    stopped = next((r.stopped_reason for r in runners if r.stopped_reason), "")
    if stopped and verdict is Verdict.INCONCLUSIVE:
        explanation += f" (Stopped early: {stopped}.)"
        report.error = stopped
    if verdict is Verdict.INCONCLUSIVE:
        explanation += _tarpit_note(session, report)
    elif session.tarpit:
        explanation += (
            f" (The server delays replies like a tarpit ({session.tarpit}); the tests ran over "
            f"{report.diagnostics.sessions} sessions side by side.)"
        )
    report.verdict, report.explanation, report.evidence = verdict, explanation, evidence


async def _run_side_by_side(
    session: ProbeSession,
    options: ProbeOptions,
    tests: list[RelayTest],
    start: int,
    done: Callable[[int, RelayTestResult], None],
) -> list[_BatteryRunner]:
    """A tarpit delays every reply, not the number of sessions: the tests from `start` on run
    over several sessions at once, each taking the next test when it is free, all under the
    tarpit's deadline. The first session (already open) is one of them."""
    # the time may not suffice for all: the plain relay forms (the spammer's own case first)
    # before the address tricks
    pending = iter(
        sorted(
            range(start, len(tests)),
            key=lambda i: (tests[i].kind != "plain", tests[i].name != "external-to-external"),
        )
    )
    workers = min(options.tarpit_sessions, len(tests) - start)
    runners = [_BatteryRunner(session, options)]
    runners += [_BatteryRunner(session.sibling(), options) for _ in range(workers - 1)]

    async def work(runner: _BatteryRunner) -> None:
        try:
            for index in pending:
                done(index, await runner.run(tests[index]))
                if runner.stopped_reason:
                    return  # this session gave up; the others keep taking tests
        finally:
            if runner.session is not session:
                await runner.session.quit()

    await asyncio.gather(*(work(r) for r in runners))
    return runners[1:]


def _not_run(test: RelayTest, why: str) -> RelayTestResult:
    return RelayTestResult(
        name=test.name,
        kind=test.kind,
        description=test.description,
        mail_from=test.mail_from,
        rcpt_to=test.rcpt_to,
        outcome=AttemptOutcome.NOT_RUN,
        reply=f"not run: {why}",
    )


def _tarpit_note(session: ProbeSession, report: TargetReport) -> str:
    """Which tests ran before a tarpit's time was up, and what to do instead of waiting longer."""
    if not session.tarpit:
        return ""
    ran = [t.name for t in report.tests if t.outcome is not AttemptOutcome.NOT_RUN]
    skipped = len(report.tests) - len(ran)
    return (
        f" The server behaves like a tarpit ({session.tarpit}): relaywatch stopped after "
        f"{session.elapsed():.1f} s instead of waiting out every test. Tests that ran: "
        f"{', '.join(ran) or 'none'}" + (f"; not run: {skipped}" if skipped else "") + ". "
        "A tarpit delays strangers on purpose and does not show whether the server relays: "
        "test from an address it does not delay (its allowlist, e.g. postscreen_access), or "
        "read its relay rules directly (postconf smtpd_relay_restrictions mynetworks)."
    )


async def _check_vrfy_expn(session: ProbeSession, report: TargetReport) -> None:
    diagnostics = report.diagnostics
    for verb in ("VRFY", "EXPN"):
        if session.tarpit:
            return  # a tarpit's time goes to the relay tests, not to these diagnostics
        try:
            exchange = await session.command(f"{verb} postmaster", session_level=True)
        except SessionError:
            return  # the battery reconnects; these two are diagnostics, not worth a retry
        enabled = user_lookup_enabled(exchange.code, exchange.reply)
        if verb == "VRFY":
            diagnostics.vrfy, diagnostics.vrfy_enabled = exchange.line, enabled
        else:
            diagnostics.expn, diagnostics.expn_enabled = exchange.line, enabled


class _BatteryRunner:
    """Runs tests one after another on the shared session, reconnecting when needed."""

    def __init__(self, session: ProbeSession, options: ProbeOptions) -> None:
        self.session = session
        self.options = options
        self.drops = 0
        self.consecutive_timeouts = 0
        self.mail_sent_on_connection = False
        # a plain test's RCPT accepted and its DATA invited (354): the server is an open relay;
        # the remaining tests stop at RCPT rather than hang up and reconnect each time
        self.relay_confirmed = False
        self.stopped_reason = ""  # once set, the remaining tests are not run
        # the session was open when the last test ended; finding it closed now means the server
        # hung up between tests (its unsolicited 421, if any, never reaches us)
        self.expect_open = False
        # lowered when a server hangs up after fewer errors than errors_per_session
        self.error_limit = options.errors_per_session

    async def run(self, test: RelayTest) -> RelayTestResult:
        result = RelayTestResult(
            name=test.name,
            kind=test.kind,
            description=test.description,
            mail_from=test.mail_from,
            rcpt_to=test.rcpt_to,
            outcome=AttemptOutcome.NOT_RUN,
            reply="",
        )
        if self.stopped_reason:
            result.reply = f"not run: {self.stopped_reason}"
            return result
        try:
            return await self._run(test, result)
        finally:
            self.expect_open = self.session.connected

    async def _run(self, test: RelayTest, result: RelayTestResult) -> RelayTestResult:
        if self.expect_open and not self.session.connected:
            self._learn_error_limit()
            self.drops += 1
            self.mail_sent_on_connection = False
            result.reconnected = True
            result.exchanges.append(
                SmtpExchange("(between tests)", None, "the server closed the connection", 0.0)
            )
        for attempt in (1, 2):
            try:
                await self._attempt(test, result, fresh=attempt == 2)
                self.consecutive_timeouts = 0
                return result
            except SessionDropped as exc:
                self._note(result, exc)
                self._learn_error_limit()
                self.drops += 1
                self.mail_sent_on_connection = False
                if attempt == 1 and self.drops <= self.options.max_drops:
                    result.reconnected = True
                    continue
                result.outcome = AttemptOutcome.DROPPED
                result.reply = exc.exchange.line if exc.exchange else str(exc)
                if self.drops > self.options.max_drops:
                    self.stopped_reason = f"the server dropped the connection {self.drops} times"
                return result
            except SessionGarbled as exc:
                self._note(result, exc)
                self.mail_sent_on_connection = False
                result.outcome = AttemptOutcome.DROPPED
                result.reply = exc.exchange.line if exc.exchange else str(exc)
                self.stopped_reason = str(exc)
                return result
            except SessionTimeout as exc:
                self._note(result, exc)
                self.mail_sent_on_connection = False
                result.outcome = AttemptOutcome.TIMEOUT
                result.reply = exc.exchange.line if exc.exchange else str(exc)
                self.consecutive_timeouts += 1
                if self.consecutive_timeouts >= self.options.max_consecutive_timeouts:
                    self.stopped_reason = (
                        f"{self.consecutive_timeouts} tests in a row got no answer (tarpit)"
                    )
                return result
            except BudgetExhausted as exc:
                self._note(result, exc)
                result.outcome = AttemptOutcome.NOT_RUN
                result.reply = str(exc)
                self.stopped_reason = str(exc)
                return result
            except SessionSetupFailed as exc:
                self._note(result, exc)
                result.outcome = AttemptOutcome.NOT_RUN
                result.reply = f"could not reconnect: {exc}"
                self.stopped_reason = f"could not reconnect: {exc}"
                return result
        return result  # pragma: no cover - the loop always returns

    def _learn_error_limit(self) -> None:
        # The server hung up once our error count reached its limit (the 421 itself, if we got
        # one, counts too): from now on leave one error earlier.
        errors = self.session.state.errors
        if errors > 1:
            self.error_limit = max(1, min(self.error_limit, errors - 1))

    def _note(self, result: RelayTestResult, exc: SessionError) -> None:
        if exc.exchange is not None:
            result.exchanges.append(exc.exchange)

    async def _attempt(self, test: RelayTest, result: RelayTestResult, fresh: bool) -> None:
        session = self.session
        if not session.connected:
            await session.open()
            self.mail_sent_on_connection = False
        elif self.mail_sent_on_connection:
            rset = await session.command("RSET")
            result.exchanges.append(rset)
            if rset.code != 250:
                # a server that will not reset cannot be trusted to keep tests apart
                session.close()
                raise SessionDropped(f"RSET refused: {rset.line}", None)
        mail = await session.command(f"MAIL FROM:{test.mail_from}")
        result.exchanges.append(mail)
        self.mail_sent_on_connection = True
        if mail.code is None or mail.code >= 300:
            self._refusal(result, mail)
            await self._after_test()
            return
        rcpt = await session.command(f"RCPT TO:{test.rcpt_to}")
        result.exchanges.append(rcpt)
        if rcpt.code is not None and 200 <= rcpt.code < 300:
            result.outcome = AttemptOutcome.ACCEPTED
            result.reply = rcpt.line
            if self.options.confirm and not self.relay_confirmed:
                data = await session.data_and_abort()
                result.exchanges.append(data)
                result.data_reply = data.line
                self.relay_confirmed = data.code == 354 and test.kind == "plain"
                if not session.connected:
                    result.exchanges.append(
                        SmtpExchange("(hang up)", None, "closed without sending a message", 0.0)
                    )
                    self.mail_sent_on_connection = False
        else:
            self._refusal(result, rcpt)
        await self._after_test()

    def _refusal(self, result: RelayTestResult, exchange: SmtpExchange) -> None:
        code = exchange.code or 0
        result.reply = exchange.line
        if code == 530:
            result.outcome = AttemptOutcome.AUTH_REQUIRED
        elif 400 <= code < 500 and not is_relay_refusal(exchange.reply):
            result.outcome = AttemptOutcome.TEMPFAIL
        else:
            result.outcome = AttemptOutcome.REFUSED

    async def _after_test(self) -> None:
        # Leave before the server's error limit makes it slow down or hang up; the next test
        # opens a fresh session.
        session = self.session
        if session.connected and session.state.errors >= self.error_limit:
            await session.quit()
            self.mail_sent_on_connection = False


async def check_targets(
    targets: list[ResolvedTarget],
    options: ProbeOptions,
    lookup: DnsLookup,
    concurrency: int = 10,
    progress: Progress | None = None,
) -> RelayReport:
    """All targets, at most `concurrency` at a time; reports keep the input order."""
    semaphore = asyncio.Semaphore(max(1, concurrency))
    done: dict[str, tuple[int, int]] = {}

    def on_test(
        target: ResolvedTarget, index: int, total: int, result: RelayTestResult | None
    ) -> None:
        done[target.label] = (index, total)
        if progress is None:
            return
        finished = sum(i for i, _ in done.values())
        planned = sum(t for _, t in done.values())
        last = f" — {target.label} {result.name}: {result.outcome}" if result else ""
        if len(targets) == 1:
            progress(f"{finished}/{planned} tests on {target.label}{last}")
        else:
            progress(f"{finished}/{planned} tests on {len(targets)} targets{last}")

    async def one(target: ResolvedTarget) -> TargetReport:
        async with semaphore:
            return await check_target(target, options, lookup, on_test)

    reports = await asyncio.gather(*(one(t) for t in targets))
    return RelayReport(list(reports))


@dataclass
class PlannedTargets:
    """The resolved targets plus those that failed to resolve (reported as unreachable)."""

    targets: list[ResolvedTarget]
    unresolved: list[TargetReport]


async def plan_targets(
    texts: list[str],
    mx_domains: list[str],
    lookup: DnsLookup,
    policy: TargetPolicy,
) -> PlannedTargets:
    """Parses, resolves once and applies the policy. Raises TargetError / TargetNotAllowed before
    any probe starts, so refused input changes nothing."""
    specs: list[tuple[TargetSpec, str]] = [(parse_target(text), "") for text in texts]
    for spec, _ in specs:
        policy.check_port(spec)
    for domain in mx_domains:
        try:
            specs.extend((spec, domain) for spec in await mx_targets(domain, lookup))
        except LookupError as exc:
            raise TargetError(f"--mx {domain}: cannot look up its MX records ({exc})") from None
    planned = PlannedTargets([], [])
    seen: set[str] = set()
    for spec, via in specs:
        if spec.label in seen:
            continue
        seen.add(spec.label)
        try:
            resolved = await resolve_target(spec, lookup, via)
        except LookupError as exc:
            planned.unresolved.append(
                TargetReport(
                    target=spec.label,
                    host=spec.host,
                    port=spec.port,
                    address="",
                    verdict=Verdict.UNREACHABLE,
                    explanation=f"Unreachable: the name does not resolve ({exc}).",
                    error=str(exc),
                )
            )
            continue
        policy.check(resolved)
        planned.targets.append(resolved)
    return planned


async def check_relay(
    texts: list[str],
    options: ProbeOptions,
    lookup: DnsLookup,
    policy: TargetPolicy | None = None,
    mx_domains: list[str] | None = None,
    concurrency: int = 10,
    progress: Progress | None = None,
) -> RelayReport:
    """Targets as the user typed them (and/or MX domains) → a report for each, in order."""
    planned = await plan_targets(
        texts, mx_domains or [], lookup, policy or TargetPolicy.unrestricted()
    )
    report = await check_targets(planned.targets, options, lookup, concurrency, progress)
    report.targets.extend(planned.unresolved)
    return report
