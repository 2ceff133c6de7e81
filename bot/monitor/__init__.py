"""Monitor runs: check the watch list, record every result, and alert only when something changed.

The scheduler calls these on its intervals, the digest calls them for results that are too old,
and `relaywatch digest` calls them without a poster (record only, no alerts).
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.checks import CheckOutcome, ProgressCallback
from bot.config import Config
from bot.digest.build import mail_subject, staleness_limits
from bot.monitor.alerts import Alerter, AlertEvent
from bot.monitor.delisting import CaseKeeper
from bot.poster import ChatPoster
from bot.store import CheckRecord, Store, utc_now
from bot.watchlist import blacklist_targets

log = logging.getLogger("relaywatch.monitor")

CHECK_KINDS = ("blacklist", "relay", "mailsummary", "domain")

# (kind, subject, progress) → the outcome; the default runs the engines, tests may pass their own
CheckRunner = Callable[[str, str, ProgressCallback | None], Awaitable[CheckOutcome]]


async def run_engine(
    config: Config,
    kind: str,
    subject: str,
    progress: ProgressCallback | None = None,
    store: Store | None = None,
    now: datetime | None = None,
) -> CheckOutcome:
    """Runs one engine through its bot.checks runner (imported here: they load heavy modules)."""
    if kind == "blacklist":
        from bot.checks.blacklist import run_blacklist

        return await run_blacklist(config, [subject], progress=progress)
    if kind == "relay":
        from bot.checks.relay import run_relay

        return await run_relay(config, [subject], progress=progress)
    if kind == "mailsummary":
        from bot.checks.mailsummary import run_mailsummary

        # the store gives the detector each sender's usual volume (earlier windows)
        return await run_mailsummary(config, since=subject, store=store, progress=progress, now=now)
    if kind == "domain":
        from bot.checks.domaincheck import run_domaincheck

        # the watch list's IPs are the sending IPs; watched servers' EHLO names are checked
        return await run_domaincheck(config, [subject], progress=progress, store=store)
    raise ValueError(f"unknown check kind {kind!r}")


def engine_runner(
    config: Config, store: Store | None = None, clock: Callable[[], datetime] = utc_now
) -> CheckRunner:
    async def run(kind: str, subject: str, progress: ProgressCallback | None) -> CheckOutcome:
        return await run_engine(config, kind, subject, progress, store, clock())

    return run


def watched_subjects(store: Store, config: Config, kind: str) -> list[str]:
    """What a monitor run of `kind` checks: the watch list's items of the matching kinds."""
    if kind == "blacklist":
        return blacklist_targets(store)
    if kind == "relay":
        return [i.value for i in store.watch_list("server")]
    if kind == "mailsummary":
        return [mail_subject(config)]
    if kind == "domain":
        return [i.value for i in store.watch_list("domain")]
    raise ValueError(f"unknown check kind {kind!r}")


@dataclass
class MonitorReport:
    kind: str
    records: list[CheckRecord] = field(default_factory=list)
    events: list[AlertEvent] = field(default_factory=list)

    @property
    def failed(self) -> list[CheckRecord]:
        return [r for r in self.records if r.status == "failed"]


class Monitor:
    """Runs checks for the watch list; with a poster, turns changes into alerts."""

    def __init__(
        self,
        config: Config,
        store: Store,
        runner: CheckRunner | None = None,
        poster: ChatPoster | None = None,
        channel: str = "",
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.config = config
        self.store = store
        self.runner = runner or engine_runner(config, store, clock)
        self.alerter = (
            Alerter(store, poster, channel, config.policy.throttle_rate)
            if poster is not None and channel
            else None
        )
        self.cases = CaseKeeper(config, store, poster if channel else None, channel, clock=clock)
        self.clock = clock
        # one run per kind at a time in this process: the digest's refresh waits for a monitor
        # run already under way and then finds its results fresh, instead of checking twice
        self._busy = {kind: asyncio.Lock() for kind in CHECK_KINDS}

    async def run(
        self,
        kind: str,
        subjects: list[str] | None = None,
        progress: ProgressCallback | None = None,
    ) -> MonitorReport:
        async with self._busy[kind]:
            return await self._run(kind, subjects, progress)

    async def _run(
        self, kind: str, subjects: list[str] | None, progress: ProgressCallback | None
    ) -> MonitorReport:
        subjects = watched_subjects(self.store, self.config, kind) if subjects is None else subjects
        report = MonitorReport(kind)
        # relay batteries are slow and independent: run servers side by side, bounded
        limit = max(1, self.config.relay.concurrency) if kind == "relay" else 1
        gate = asyncio.Semaphore(limit)

        async def one(subject: str) -> CheckRecord:
            async with gate:
                return await self._check(kind, subject, progress)

        if self.alerter is not None:
            try:  # follow-ups a crashed process claimed but never posted
                await self.alerter.resume_abandoned()
            except Exception:
                log.exception("resuming abandoned follow-ups failed")
        records = await asyncio.gather(*(one(s) for s in subjects))
        report.records.extend(records)
        if self.alerter is not None:
            for record in records:
                report.events.extend(await self._alert(record))
        if kind == "blacklist":
            # after the alerts, so a new listing's case links to the alert (and its thread)
            for record in records:
                try:
                    await self.cases.sync(record)
                except Exception:
                    log.exception("delisting cases not updated", extra={"subject": record.subject})
        return report

    async def refresh_stale(
        self, kinds: tuple[str, ...] = CHECK_KINDS, progress: ProgressCallback | None = None
    ) -> list[MonitorReport]:
        """Runs only the checks whose latest usable result is too old for a digest."""
        limits = staleness_limits(self.config)
        reports = []
        for kind in kinds:
            async with self._busy[kind]:
                stale = [
                    s
                    for s in watched_subjects(self.store, self.config, kind)
                    if self._is_stale(kind, s, limits[kind] / 2)
                ]
                if stale:
                    reports.append(await self._run(kind, stale, progress))
        return reports

    def _is_stale(self, kind: str, subject: str, max_age: timedelta) -> bool:
        latest = self.store.latest_check(kind, subject)
        if latest is None or latest.status == "failed":
            return True
        return self.clock() - datetime.fromisoformat(latest.finished_at) > max_age

    async def _check(
        self, kind: str, subject: str, progress: ProgressCallback | None
    ) -> CheckRecord:
        started = self.clock()
        try:
            outcome = await self.runner(kind, subject, progress)
            status, data = outcome.status, outcome.data
        except Exception as exc:
            # a crash inside a check is a failed run, recorded as such, never a clean one
            log.exception("check crashed", extra={"kind": kind, "subject": subject})
            status = "failed"
            data = {
                "error": f"{type(exc).__name__}: {exc}",
                "trace_tail": traceback.format_exc().splitlines()[-3:],
            }
        check_id = self.store.record_check(kind, subject, status, data, started_at=started)
        record = self.store.check(check_id)
        assert record is not None  # just written, in this process
        if status == "failed":
            reason = data.get("error") or "incomplete; see the check's details"
            log.warning("check failed", extra={"kind": kind, "subject": subject, "reason": reason})
        return record

    async def _alert(self, record: CheckRecord) -> list[AlertEvent]:
        assert self.alerter is not None
        try:
            if record.kind == "blacklist":
                return await self.alerter.on_blacklist(record)
            if record.kind == "relay":
                return await self.alerter.on_relay(record)
            if record.kind == "mailsummary":
                return await self.alerter.on_mailsummary(record, self.clock())
            if record.kind == "domain":
                return await self.alerter.on_domain(record)
        except Exception:
            log.exception("alerting failed", extra={"kind": record.kind, "subject": record.subject})
        return []
