"""The bot's clock: the daily digest and the monitor runs, on APScheduler 3 in the bot's event loop.

Which digest is due is a pure function of (now, config, store) — `digest_due` — so a restart can
send the one it missed (within the grace period) and two processes on one store send it once: the
store's UNIQUE claim on the scheduled time decides who sends. Every job body is an async method of
`ScheduledJobs`, callable directly (tests do); APScheduler only decides when to call it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.config import Config
from bot.digest import build_digest
from bot.mailchart import digest_chart, with_chart
from bot.monitor import CHECK_KINDS, CheckRunner, Monitor, MonitorReport, watched_subjects
from bot.monitor.alarms import AlarmPoster
from bot.poster import ChatPoster
from bot.render import digest as render_digest
from bot.scheduler.expiry import CHECK_EVERY, ContainmentExpiry
from bot.scheduler.leader import RENEW_EVERY, Leadership, leader_only
from bot.store import DigestRun, Store, digest_claim_key, iso, utc_now

log = logging.getLogger("relaywatch.scheduler")

Clock = Callable[[], datetime]


def _digest_hour_minute(config: Config) -> tuple[int, int]:
    hour, _, minute = config.schedule.digest_time.partition(":")
    return int(hour), int(minute)


def digest_trigger(config: Config) -> CronTrigger:
    hour, minute = _digest_hour_minute(config)
    return CronTrigger(hour=hour, minute=minute, timezone=ZoneInfo(config.schedule.timezone))


def latest_slot(now: datetime, config: Config) -> datetime:
    """The most recent scheduled digest time at or before `now` (aware, in the configured zone)."""
    zone = ZoneInfo(config.schedule.timezone)
    hour, minute = _digest_hour_minute(config)
    local = now.astimezone(zone)
    for days_back in range(3):
        day = local.date() - timedelta(days=days_back)
        # combine with the zone: on a DST day this is the wall-clock time the admin configured
        candidate = datetime.combine(day, time(hour, minute), tzinfo=zone)
        if candidate <= local:
            return candidate
    raise AssertionError("unreachable: a daily slot exists within three days")


def slot_key(slot: datetime) -> str:
    """How a slot is named in digest_runs.scheduled_for (the UNIQUE claim key)."""
    return iso(slot)


def digest_due(now: datetime, config: Config, store: Store) -> datetime | None:
    """The digest that should be sent now, or None.

    Due: the latest scheduled time has passed, by no more than the grace period, and no process
    has claimed it yet. Outside the grace period a missed digest is skipped (the next one comes
    tomorrow); a claimed one is sent again only when its sender's lease ran out before it finished
    (the sender died half-way), and then by exactly one process.
    """
    slot = latest_slot(now, config)
    if now - slot > timedelta(minutes=max(0, config.schedule.digest_grace_minutes)):
        return None
    if store.digest_run(slot_key(slot)) is not None and not store.digest_abandoned(slot_key(slot)):
        return None
    return slot


def default_claimant() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class ScheduledJobs:
    """The bodies of the scheduled jobs, bound to one poster, config and store."""

    def __init__(
        self,
        poster: ChatPoster,
        config: Config,
        store: Store,
        channel: str,
        clock: Clock = utc_now,
        runner: CheckRunner | None = None,
        claimed_by: str | None = None,
        refresh_before_digest: bool = True,
    ) -> None:
        self.poster = poster
        self.config = config
        self.store = store
        self.channel = channel
        self.clock = clock
        self.claimed_by = claimed_by or default_claimant()
        self.refresh_before_digest = refresh_before_digest
        self.monitor = Monitor(config, store, runner, poster, channel, clock)

    async def digest(self) -> DigestRun | None:
        """Sends the due digest, if any (cron fire and restart catch-up both land here)."""
        slot = digest_due(self.clock(), self.config, self.store)
        if slot is None:
            return None
        return await self.send_digest(slot)

    async def send_digest(self, slot: datetime) -> DigestRun | None:
        run = self.store.claim_digest(slot_key(slot), self.claimed_by)
        if run is None:
            log.info("digest already claimed by another process", extra={"slot": slot_key(slot)})
            return None
        try:
            if self.refresh_before_digest:
                await self.monitor.refresh_stale()
            if not self.store.renew_post(digest_claim_key(run.scheduled_for), self.claimed_by):
                # our lease ran out during the refresh and another process took the digest over
                log.warning("digest taken over by another process", extra={"slot": slot_key(slot)})
                return self.store.digest_run(slot_key(slot))
            digest = build_digest(self.store, self.config, self.clock())
            reply = with_chart(render_digest.chat_reply(digest), digest_chart(self.store, digest))
            ts = await self.poster.post(self.channel, reply)
        except Exception as exc:
            log.exception("digest failed", extra={"slot": slot_key(slot)})
            self.store.finish_digest(run.id, "failed", self.channel, error=f"{exc}"[:500])
        else:
            self.store.finish_digest(run.id, "sent", self.channel, ts=ts)
        return self.store.digest_run(slot_key(slot))

    async def blacklist(self) -> MonitorReport:
        return await self.monitor.run("blacklist")

    async def relay(self) -> MonitorReport:
        return await self.monitor.run("relay")

    async def logsummary(self) -> MonitorReport:
        return await self.monitor.run("mailsummary")

    async def delisting(self) -> None:
        """Re-asks each list about its listings that are due (30 min at first, then 6 h)."""
        await self.monitor.cases.recheck_due()

    async def domain(self) -> MonitorReport:
        return await self.monitor.run("domain")


def first_run_time(
    store: Store, config: Config, kind: str, every: timedelta, now: datetime
) -> datetime:
    """When a monitor job should first run after a start: now, unless history is still fresh.

    Without this a bot that restarts ten times an hour would run every check ten times.
    """
    subjects = watched_subjects(store, config, kind)
    oldest: datetime | None = None
    for subject in subjects:
        latest = store.latest_check(kind, subject)
        if latest is None or latest.status == "failed":
            return now
        finished = datetime.fromisoformat(latest.finished_at)
        oldest = finished if oldest is None or finished < oldest else oldest
    if oldest is None:
        return now
    return max(now, oldest + every)


@dataclass
class SchedulerHandle:
    scheduler: AsyncIOScheduler
    jobs: ScheduledJobs
    tasks: list[asyncio.Task[None]] = field(default_factory=list)  # the policy alarm poster
    leadership: Leadership | None = None

    def next_digest_time(self) -> datetime | None:
        job = self.scheduler.get_job("digest")
        return job.next_run_time if job is not None else None

    def shutdown(self) -> None:
        for task in self.tasks:
            task.cancel()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.leadership is not None:
            self.leadership.resign()  # hand over at once instead of after the lease


def start_for(
    poster: ChatPoster,
    config: Config,
    store: Store,
    clock: Clock = utc_now,
    *,
    channel: str | None = None,
    runner: CheckRunner | None = None,
    claimed_by: str | None = None,
) -> SchedulerHandle:
    """Starts the schedule in the running event loop (call from inside the bot's loop).

    `channel` defaults to config.slack.digest_channel; for the shell adapter any non-empty value
    will do (it prints). With no channel at all, checks still run and are recorded, but digests and
    alerts are not posted (logged as a warning once).
    """
    loop = asyncio.get_running_loop()
    target = channel if channel is not None else config.slack.digest_channel
    jobs = ScheduledJobs(poster, config, store, target, clock, runner, claimed_by)
    zone = ZoneInfo(config.schedule.timezone)
    scheduler = AsyncIOScheduler(event_loop=loop, timezone=zone)
    handle = SchedulerHandle(scheduler, jobs)
    now = clock()
    common = {"coalesce": True, "max_instances": 1, "replace_existing": True}
    if target:
        # live policy alarms come from the policy service, not from the schedule: always posted
        alarms = AlarmPoster(config, store, poster, target, clock)
        handle.tasks.append(asyncio.create_task(alarms.run(), name="policy alarm poster"))
    if not config.schedule.enabled:
        log.info("schedule.enabled is false: no digest, no monitor runs, no expiry reminders")
        return handle
    if not target:
        log.warning(
            "slack.digest_channel is not set: checks run and are recorded, "
            "but digests and alerts are not posted"
        )
    # several replicas on one store: only the leader runs the jobs below (every replica posts
    # live policy alarms above, claimed one by one, and answers Slack)
    leadership = Leadership(store, jobs.claimed_by, clock)
    handle.leadership = leadership

    async def lead() -> None:
        was = leadership.held
        if leadership.check() and not was and target:
            # a new leader (a start, or a take-over from a dead one) sends a digest its
            # predecessor missed, within grace; the store's claim keeps it single
            await jobs.digest()

    scheduler.add_job(
        lead,
        IntervalTrigger(seconds=RENEW_EVERY.total_seconds(), timezone=zone),
        id="leadership",
        name="scheduler leadership",
        next_run_time=now,
        misfire_grace_time=int(RENEW_EVERY.total_seconds()),
        **common,
    )
    if target:
        expiry = ContainmentExpiry(config, store, poster, target, clock)
        scheduler.add_job(
            leader_only(leadership, expiry.run_once),
            IntervalTrigger(seconds=CHECK_EVERY.total_seconds(), timezone=zone),
            id="containment-expiry",
            name="containment reminders and lapse notes",
            next_run_time=now,
            misfire_grace_time=int(CHECK_EVERY.total_seconds()),
            **common,
        )
        grace = max(60, config.schedule.digest_grace_minutes * 60)
        scheduler.add_job(
            leader_only(leadership, jobs.digest),
            digest_trigger(config),
            id="digest",
            name="daily digest",
            misfire_grace_time=grace,
            **common,
        )
        if digest_due(now, config, store) is not None:
            # missed while we were down and still within grace: once, right away (the claim
            # in the store keeps it once even if the cron job or another process fires too)
            scheduler.add_job(
                leader_only(leadership, jobs.digest), DateTrigger(), id="digest-catchup", **common
            )
    intervals = {
        "blacklist": (jobs.blacklist, timedelta(minutes=config.schedule.blacklist_every_minutes)),
        "relay": (jobs.relay, timedelta(hours=config.schedule.relay_every_hours)),
        "mailsummary": (
            jobs.logsummary,
            timedelta(minutes=config.schedule.logsummary_every_minutes),
        ),
        "domain": (jobs.domain, timedelta(hours=config.schedule.domain_every_hours)),
    }
    for kind in CHECK_KINDS:
        body, every = intervals[kind]
        if every <= timedelta(0):
            log.info("monitor disabled (interval 0)", extra={"kind": kind})
            continue
        scheduler.add_job(
            leader_only(leadership, body),
            IntervalTrigger(seconds=every.total_seconds(), timezone=zone),
            id=f"monitor-{kind}",
            name=f"{kind} monitor",
            next_run_time=first_run_time(store, config, kind, every, now),
            # a run delayed by a busy loop still runs, once, rather than being dropped
            misfire_grace_time=int(every.total_seconds()),
            **common,
        )
    if config.schedule.blacklist_every_minutes > 0:
        # cheap when nothing is due: one indexed query; each due case asks one list one name
        scheduler.add_job(
            leader_only(leadership, jobs.delisting),
            IntervalTrigger(minutes=5, timezone=zone),
            id="delisting",
            name="delisting rechecks",
            misfire_grace_time=300,
            **common,
        )
    scheduler.start()
    log.info(
        "scheduler started",
        extra={"next_digest": str(handle.next_digest_time()), "channel": target or "-"},
    )
    return handle
