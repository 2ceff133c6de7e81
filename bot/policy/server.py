"""The policy service: asyncio listeners that answer Postfix (and Exim) policy requests.

The decision path (PolicyConnection.data_received) only parses, looks up in-memory tables and
counts; it never touches the network or the store. Everything that does runs in one dedicated
worker thread (SQLite connections belong to the thread that opened them), driven by background
tasks:

- refresh: every refresh_seconds read Store.containment_revision (one row) and reread the
  entries only when it moved, so a change made by another process applies within that interval;
- on a PostgreSQL store, also listen for the notification every containment write sends
  (bot.store_changes, on a connection of its own, asynchronously on the loop) and refresh at once,
  so a block set through any replica applies on every replica within milliseconds; the periodic
  refresh stays as the fallback for a notification lost with a dropped connection;
- flush: every flush_seconds hand the counters' deltas to Store.flush_policy_counters, under
  this replica's name (policy.replica_name); also its account messages per clock minute and day
  (Store.add_policy_window_counts), then ask the store which accounts are over a threshold summed
  over every replica (Store.policy_window_totals_over): an account sending through two MTAs that
  ask two replicas is counted once, in total;
- alarms: recorded with Store.record_policy_alarm as soon as they happen (the chat side polls
  for unposted alarms every second), plus the optional per-rule auto action. The store keeps one
  alarm per rule, subject and clock window: of replicas crossing together, the first records it
  (and takes the auto action); the others' are dropped.

A connection stays open for as many requests as the peer sends (Postfix keeps one per smtpd). A
peer that shuts its write side after one request (Exim's ${readsocket}) gets its answer, then the
connection is closed. A malformed request is logged (rate-limited) and its connection closed
without an answer; other connections are unaffected.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.config import Config, ConfigError
from bot.policy.listen import Endpoint, ListenError, parse_listen
from bot.store import Store
from bot.store_changes import containment_changes
from bot.store_pg import is_postgres
from handlers.policy.counters import SUMMED_RULES, Counters, CounterSettings, Thresholds
from handlers.policy.decision import ContainmentIndex, Decider, Verdict
from handlers.policy.model import PolicyAlarm
from handlers.policy.protocol import Answers, MalformedRequest, PolicyRequest, RequestReader

log = logging.getLogger("relaywatch.policy")

MAX_CONNECTIONS = 4096  # Postfix opens at most one per smtpd process (default_process_limit 100)
EXPIRE_EVERY = 60.0
# flush early when this many (subject, source) rows are pending: a burst of new subjects then
# costs a bounded amount of memory, and no single flush is big enough to stall the loop
EARLY_FLUSH_ROWS = 20_000
PRUNE_AFTER = timedelta(days=8)
# per-window counts are only for the live thresholds: kept a little past their window's end
WINDOW_PRUNE_AFTER = {60: timedelta(hours=1), 86400: timedelta(days=2)}
AUTO_ACTIONS = ("hold", "block")
UNIX_SOCKET_MODE = 0o666  # smtpd runs as the postfix user; the directory is what guards it


@dataclass(frozen=True)
class ServiceSettings:
    """What the service needs from the configuration, checked once at start."""

    endpoints: tuple[Endpoint, ...]
    # the store every replica shares: the SQLite file, or the PostgreSQL URL (store.url)
    store_path: Path | str
    refresh_seconds: float
    flush_seconds: float
    answers: Answers
    counters: CounterSettings
    auto_action: dict[str, str]
    default_expiry: timedelta
    # this replica's `source` in the shared counters (policy.replica_name)
    replica_name: str = ""

    @classmethod
    def from_config(cls, config: Config, listen: str | None = None) -> ServiceSettings:
        policy = config.policy
        try:
            endpoints = parse_listen(policy.listen if listen is None else listen)
        except ListenError as exc:
            raise ConfigError(str(exc)) from None
        if policy.refresh_seconds <= 0 or policy.flush_seconds <= 0:
            raise ConfigError("policy.refresh_seconds and policy.flush_seconds: must be positive")
        for rule, action in policy.auto_action.items():
            if not hasattr(Thresholds, rule):
                raise ConfigError(f"policy.auto_action: unknown rule {rule!r}")
            if action not in AUTO_ACTIONS:
                raise ConfigError(
                    f"policy.auto_action.{rule}: expected one of {', '.join(AUTO_ACTIONS)}, "
                    f"got {action!r}"
                )
        thresholds = Thresholds(
            **{name: int(getattr(policy, name)) for name in Thresholds.__dataclass_fields__}
        )
        replica_name = policy.replica_name or default_replica_name()
        return cls(
            endpoints=tuple(endpoints),
            store_path=config.store_location,
            refresh_seconds=float(policy.refresh_seconds),
            flush_seconds=float(policy.flush_seconds),
            answers=Answers.from_texts(policy.reject_text, policy.defer_text, policy.hold_text),
            counters=CounterSettings(
                thresholds=thresholds,
                internal_networks=tuple(config.logsummary.internal_networks),
                local_domains=tuple(policy.local_domains),
                exempt_accounts=tuple(policy.exempt_accounts),
                exempt_hosts=tuple(policy.exempt_hosts),
                source=replica_name,
            ),
            auto_action=dict(policy.auto_action),
            default_expiry=_duration(policy.default_expiry, "policy.default_expiry"),
            replica_name=replica_name,
        )


def default_replica_name() -> str:
    """Host name and process id: two replicas never share one, even on one host."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _duration(text: str, key: str) -> timedelta:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    value = text.strip()
    if len(value) < 2 or value[-1] not in units or not value[:-1].isdigit():
        raise ConfigError(f"{key}: expected a duration like 30m, 24h or 7d, got {text!r}")
    return timedelta(seconds=int(value[:-1]) * units[value[-1]])


class RateLimitedLog:
    """At most one warning per `every` seconds; the rest are counted and reported with the next."""

    def __init__(self, every: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self._last = -every
        self.suppressed = 0

    def warning(self, message: str, *args: object) -> None:
        now = self.clock()
        if now - self._last < self.every:
            self.suppressed += 1
            return
        self._last = now
        if self.suppressed:
            message += " (%d similar suppressed)"
            args = (*args, self.suppressed)
            self.suppressed = 0
        log.warning(message, *args)


class PolicyConnection(asyncio.Protocol):
    """One peer: parse what arrives, answer every whole request in order, in one write."""

    __slots__ = ("_reader", "_service", "_transport", "peer")

    def __init__(self, service: PolicyService) -> None:
        self._service = service
        self._reader = RequestReader()
        self._transport: asyncio.Transport | None = None
        self.peer = "?"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) else "unix"
        if not self._service._opened(self):
            transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._service._closed(self)

    def data_received(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        try:
            requests = self._reader.feed(data)
        except MalformedRequest as exc:
            self._service.malformed.warning(
                "policy: malformed request from %s (%s); connection closed", self.peer, exc
            )
            self._service.stats.malformed += 1
            transport.abort()
            return
        if not requests:
            return
        decide = self._service.decide
        if len(requests) == 1:
            transport.write(decide(requests[0]))
        else:
            transport.write(b"".join([decide(r) for r in requests]))

    def eof_received(self) -> bool:
        # the peer will send no more (Exim's readsocket shuts its write side after the request):
        # answers already written go out, then the connection closes; a half request is dropped
        if self._reader.pending:
            self._service.stats.half_requests += 1
        return False

    def pause_writing(self) -> None:
        # a peer that sends but never reads: stop reading until it catches up
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()


@dataclass
class ServiceStats:
    requests: int = 0
    malformed: int = 0
    half_requests: int = 0
    connections: int = 0
    refused_connections: int = 0
    refreshes: int = 0
    flushes: int = 0
    alarms: int = 0
    store_errors: int = 0


class PolicyService:
    """Listeners, in-memory state and the background tasks that sync it with the store."""

    def __init__(
        self,
        settings: ServiceSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.decider = Decider(settings.answers)
        self.counters = Counters(settings.counters)
        self.malformed = RateLimitedLog()
        self.stats = ServiceStats()
        self.addresses: list[str] = []  # what we bound (a port 0 resolved)
        self.revision: int | None = None
        self._connections: set[PolicyConnection] = set()
        self._servers: list[asyncio.AbstractServer] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._alarms: list[PolicyAlarm] = []
        self._alarm_ready = asyncio.Event()
        self._flush_due = asyncio.Event()
        self._last_expire = 0.0
        self._last_prune = 0.0
        # summed alarms already handed on: (rule, account, window start), so each flush does not
        # offer the same one again (the store would drop it; this saves the round trip)
        self._summed_seen: set[tuple[str, str, float]] = set()
        # one thread owns the store connection: SQLite connections are per thread
        self._worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="policy-store")
        self._store: Store | None = None

    # -- the decision path (on the loop; no I/O) ---------------------------------------------

    def decide(self, request: PolicyRequest) -> bytes:
        now = self.clock()
        self.stats.requests += 1
        is_message = self.counters.events.is_message(request)
        decision = self.decider.decide(request, now, is_message)
        verdict = decision.verdict
        if verdict is Verdict.DUNNO or verdict is Verdict.HOLD:
            alarms = self.counters.observe(request, now, is_message)
            if alarms:
                self._alarms.extend(alarms)
                self._alarm_ready.set()
            if self.counters.pending_rows > EARLY_FLUSH_ROWS:
                self._flush_due.set()
        return self.decider.answer(decision)

    def _opened(self, connection: PolicyConnection) -> bool:
        if len(self._connections) >= MAX_CONNECTIONS:
            self.stats.refused_connections += 1
            self.malformed.warning("policy: over %d connections; refusing one", MAX_CONNECTIONS)
            return False
        self._connections.add(connection)
        self.stats.connections += 1
        return True

    def _closed(self, connection: PolicyConnection) -> None:
        self._connections.discard(connection)

    @property
    def open_connections(self) -> int:
        return len(self._connections)

    # -- the store side (one worker thread) --------------------------------------------------

    async def _in_worker(self, function: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._worker, function, *args)

    def _store_now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def _open_store(self) -> Store:
        if self._store is None:
            self._store = Store(self.settings.store_path, clock=self._store_now)
        return self._store

    def _read_entries(self, known: int | None) -> tuple[int, list | None]:
        store = self._open_store()
        revision = store.containment_revision()
        if revision == known:
            return revision, None
        return revision, store.active_containments()

    async def refresh_now(self) -> bool:
        """Rereads the entries if the store's revision moved; True when it did."""
        revision, entries = await self._in_worker(self._read_entries, self.revision)
        self.stats.refreshes += 1
        if entries is None:
            return False
        self.decider.replace(ContainmentIndex(entries, self._store_now()))
        if self.revision is not None:
            log.info("policy: %d active containment entries (revision %d)", len(entries), revision)
        self.revision = revision
        return True

    def _write_counters(
        self, pending: dict, windows: dict, now: datetime
    ) -> tuple[int, list[tuple[str, str, int, int, float]]]:
        """Runs in the worker: writes the deltas; returns how many counter rows, and the
        (rule, account, summed count, replicas, window start) of accounts over a threshold."""
        store = self._open_store()
        start = now.replace(minute=0, second=0, microsecond=0)
        rows = self.counters.rows(pending)  # built here, in the worker, not on the loop
        if rows:
            store.flush_policy_counters(start, 3600, rows)
        window_rows = Counters.window_rows(windows)
        over: list[tuple[str, str, int, int, float]] = []
        if window_rows:
            store.add_policy_window_counts(
                self.settings.replica_name,
                [
                    (datetime.fromtimestamp(begin, UTC), seconds, "account", account, messages)
                    for begin, seconds, account, messages in window_rows
                ],
            )
            # read back after our own commit: of two replicas flushing at once, at least the
            # later one sees both shares (the unique alarm key keeps it to one alarm if both do)
            touched = {(seconds, begin) for begin, seconds, _, _ in window_rows}
            for rule, seconds in SUMMED_RULES.items():
                limit = getattr(self.settings.counters.thresholds, rule)
                if not limit:
                    continue
                for length, begin in sorted(touched):
                    if length != seconds:
                        continue
                    moment = datetime.fromtimestamp(begin, UTC)
                    for account, count, replicas in store.policy_window_totals_over(
                        moment, seconds, "account", limit
                    ):
                        over.append((rule, account, count, replicas, begin))
        if (now.timestamp() - self._last_prune) > 3600:
            self._last_prune = now.timestamp()
            store.prune_policy_counters(now - PRUNE_AFTER)
            for seconds, keep in WINDOW_PRUNE_AFTER.items():
                store.prune_policy_window_counts(now - keep, seconds)
        return len(rows), over

    async def flush_now(self) -> int:
        """Hands the counters' deltas to the store; how many rows. Accounts over a threshold
        summed over every replica become alarms (recorded by the alarm task)."""
        self._flush_due.clear()
        pending = self.counters.take_pending()
        windows = self.counters.take_windows()
        now = self._store_now()
        written, over = await self._in_worker(self._write_counters, pending, windows, now)
        self.stats.flushes += 1
        self._summed_alarms(over, now.timestamp())
        if now.timestamp() - self._last_expire >= EXPIRE_EVERY:
            self._last_expire = now.timestamp()
            self.counters.expire(now.timestamp())
            horizon = now.timestamp() - max(SUMMED_RULES.values())
            self._summed_seen = {key for key in self._summed_seen if key[2] >= horizon}
        return written

    def _summed_alarms(self, over: list[tuple[str, str, int, int, float]], now: float) -> None:
        for rule, account, count, replicas, begin in over:
            key = (rule, account, begin)
            if key in self._summed_seen:
                continue
            self._summed_seen.add(key)
            alarm = self.counters.summed_alarm(rule, account, count, replicas, begin, now)
            if alarm is not None:
                self._alarms.append(alarm)
                self._alarm_ready.set()

    def _write_alarms(self, alarms: list[PolicyAlarm]) -> list[PolicyAlarm]:
        """Records the alarms; those that were new (not raised by a replica already)."""
        store = self._open_store()
        recorded = []
        for alarm in alarms:
            if not store.record_policy_alarm(alarm):
                continue  # this rule, subject and window is alarmed already: once is enough
            recorded.append(alarm)
            action = self.settings.auto_action.get(alarm.rule)
            if action:
                store.add_containment(
                    alarm.subject_kind,
                    alarm.subject,
                    action,
                    expires_at=alarm.at + self.settings.default_expiry,
                    reason=f"automatic: {alarm.rule} {alarm.count} > {alarm.threshold}",
                    set_by="relaywatch (auto_action)",
                )
        return recorded

    async def record_alarms_now(self) -> int:
        alarms, self._alarms = self._alarms, []
        self._alarm_ready.clear()
        if alarms:
            alarms = await self._in_worker(self._write_alarms, alarms)
            self.stats.alarms += len(alarms)
            for alarm in alarms:
                log.warning(
                    "policy alarm: %s %s %s: %d > %d",
                    alarm.rule,
                    alarm.subject_kind,
                    alarm.subject,
                    alarm.count,
                    alarm.threshold,
                )
        return len(alarms)

    async def _every(self, seconds: float, job: Callable[[], Any], name: str) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()
            except Exception:
                self.stats.store_errors += 1
                log.exception("policy: %s failed; decisions go on with what is in memory", name)

    async def _listen_loop(self, url: str) -> None:
        # the notifications arrive on the listener's own async connection; the reread itself goes
        # through the worker like every other store call, so neither blocks the decision path
        seconds = self.settings.refresh_seconds
        while True:
            try:
                changes = containment_changes(url, poll_seconds=seconds)
                async with contextlib.aclosing(changes):
                    async for revision in changes:
                        if revision != self.revision:
                            await self._refresh_on_notice()
            except Exception:
                # store_changes reconnects after a lost connection itself; anything else lands
                # here, and the listener starts over while the periodic refresh goes on
                self.stats.store_errors += 1
                log.exception("policy: containment listener failed; restarting it")
                await asyncio.sleep(seconds)

    async def _refresh_on_notice(self) -> None:
        try:
            await self.refresh_now()
        except Exception:
            self.stats.store_errors += 1
            log.exception("policy: refresh on notification failed; the periodic one goes on")

    async def _flush_loop(self, seconds: float) -> None:
        # a timer sets the same event an early flush sets; not asyncio.wait_for, which before
        # Python 3.12 can swallow a cancellation that races the event (stop() then hung on it)
        loop = asyncio.get_running_loop()
        while True:
            timer = loop.call_later(seconds, self._flush_due.set)
            try:
                await self._flush_due.wait()
            finally:
                timer.cancel()
            try:
                await self.flush_now()
            except Exception:
                self.stats.store_errors += 1
                log.exception("policy: flush failed; decisions go on with what is in memory")

    async def _alarm_loop(self) -> None:
        while True:
            await self._alarm_ready.wait()
            try:
                await self.record_alarms_now()
            except Exception:
                self.stats.store_errors += 1
                log.exception("policy: recording alarms failed")
                await asyncio.sleep(1.0)

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self, background: bool = True) -> None:
        """Loads the entries, binds every endpoint, starts the background tasks."""
        await self.refresh_now()
        loop = asyncio.get_running_loop()
        try:
            for endpoint in self.settings.endpoints:
                if endpoint.kind == "unix":
                    server = await loop.create_unix_server(
                        lambda: PolicyConnection(self), endpoint.path, backlog=1024
                    )
                    os.chmod(endpoint.path, UNIX_SOCKET_MODE)
                    self.addresses.append(f"unix:{endpoint.path}")
                else:
                    server = await loop.create_server(
                        lambda: PolicyConnection(self),
                        endpoint.host,
                        endpoint.port,
                        backlog=1024,
                        reuse_address=True,
                    )
                    for sock in server.sockets:
                        host, port = sock.getsockname()[:2]
                        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
                        self.addresses.append(shown)
                self._servers.append(server)
        except OSError:
            await self.stop()
            raise
        if background:
            s = self.settings
            self._tasks = [
                asyncio.create_task(self._every(s.refresh_seconds, self.refresh_now, "refresh")),
                asyncio.create_task(self._flush_loop(s.flush_seconds)),
                asyncio.create_task(self._alarm_loop()),
            ]
            if isinstance(s.store_path, str) and is_postgres(s.store_path):
                self._tasks.append(asyncio.create_task(self._listen_loop(s.store_path)))
        log.info("policy service listening on %s", ", ".join(self.addresses))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            # bounded: a task that ignored its cancellation must not keep the process alive
            await asyncio.wait(self._tasks, timeout=5)
        self._tasks = []
        for server in self._servers:
            server.close()
        for connection in list(self._connections):
            if connection._transport is not None:
                connection._transport.abort()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers = []
        # what is in memory goes to the store before we go
        with contextlib.suppress(Exception):
            await self.record_alarms_now()
            await self.flush_now()
        if self._store is not None:
            store, self._store = self._store, None
            await self._in_worker(store.close)
        self._worker.shutdown(wait=True)


async def run_until(service: PolicyService, stop: asyncio.Event) -> None:
    await service.start()
    try:
        await stop.wait()
    finally:
        await service.stop()
