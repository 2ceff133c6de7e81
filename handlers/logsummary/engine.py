"""The log-summary engine: read the inputs (in parallel when large), summarise, find suspects.

`summarize_logs` is the async entry point (the CPU work runs in a worker thread and, for large
inputs, in worker processes that each read a byte range and whose partial summaries are merged in
log order). `summarize_logs_sync` is the same for callers without an event loop.
"""

from __future__ import annotations

import asyncio
import ipaddress
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_connections

from handlers.logsummary.inputs import (
    DEFAULT_MAX_DECOMPRESSED_BYTES,
    LogFile,
    LogInputError,
    ReadGuard,
    iter_lines,
    journal_command,
    open_binary,
    plan_files,
    run_journal,
    split_ranges,
)
from handlers.logsummary.lan import DEFAULT_NETWORKS
from handlers.logsummary.report import MailLogReport, SourceReport
from handlers.logsummary.scan import Scanner
from handlers.logsummary.summary import Summary
from handlers.logsummary.suspects import SuspectThresholds, detect_suspects
from handlers.logsummary.timefmt import TimeWindow

# Below this many bytes of plain files one process is faster than starting workers.
PARALLEL_MIN_BYTES = 48 << 20
# When no internal networks are given: the private ranges and loopback (see lan.py; the bot
# asks the local MTA first)
DEFAULT_INTERNAL = DEFAULT_NETWORKS

ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class SummaryOptions:
    """Plain inputs for one run (bot/checks/mailsummary.py builds these from the config)."""

    paths: tuple[str, ...] = ()  # files in time order, or "-" for stdin
    journal_units: tuple[str, ...] = ()  # read `journalctl -o json -u …` when set
    journal_executable: str = "journalctl"
    window: TimeWindow = field(default_factory=TimeWindow)
    thresholds: SuspectThresholds = field(default_factory=SuspectThresholds)
    internal_networks: tuple[str, ...] = ()
    local_domains: tuple[str, ...] = ()
    syslog_names: tuple[str, ...] = ()
    baseline: dict[str, float] | None = None  # origin → usual messages per hour
    workers: int = 0  # 0: one per CPU (at most 2 … 4) when the input is large
    timeout: float = 600.0  # seconds for journalctl
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES  # per .gz file
    now: float | None = None  # "now" for window length (tests)


def internal_matcher(networks: Iterable[str]) -> Callable[[str], bool]:
    parsed = [ipaddress.ip_network(n, strict=False) for n in (list(networks) or DEFAULT_INTERNAL)]
    cache: dict[str, bool] = {}

    def is_internal(address: str) -> bool:
        found = cache.get(address)
        if found is None:
            try:
                ip = ipaddress.ip_address(address)
                found = any(ip in network for network in parsed)
            except ValueError:
                found = False
            if len(cache) < 100_000:
                cache[address] = found
        return found

    return is_internal


def _new_summary(options: SummaryOptions, partial: bool = False) -> Summary:
    summary = Summary(
        partial=partial, wide_message_rcpts=int(options.thresholds.recipients_per_message)
    )
    summary.internal_check = internal_matcher(options.internal_networks)
    return summary


def _guard_for(item: LogFile, options: SummaryOptions) -> ReadGuard:
    return ReadGuard(
        item.path, max_bytes=options.max_decompressed_bytes if item.compressed else None
    )


def _scan_piece(
    piece: list[tuple[LogFile, int, int]],
    options: SummaryOptions,
    partial: bool,
    counter: object | None = None,
) -> tuple[Summary, dict[str, list[str]]]:
    """Worker: scans byte ranges of files; returns a (possibly partial) summary and the
    warnings about each file it read (see ReadGuard)."""
    summary = _new_summary(options, partial)
    warnings: dict[str, list[str]] = {}

    def count_block(size: int) -> None:
        if counter is not None:
            with counter.get_lock():  # type: ignore[attr-defined]
                counter.value += size  # type: ignore[attr-defined]

    for item, start, end in piece:
        scanner = Scanner(
            summary,
            options.window,
            datetime.fromtimestamp(item.mtime),
            options.syslog_names,
        )
        before = summary.lines
        guard = _guard_for(item, options)
        with open_binary(item.path) as stream:
            if start:
                stream.seek(start)
            limit = None if item.compressed else end - start
            scanner.scan(iter_lines(stream, limit, count_block, guard))
        summary.lines_by_source[item.path] = (
            summary.lines_by_source.get(item.path, 0) + summary.lines - before
        )
        warnings.setdefault(item.path, []).extend(guard.warnings())
    summary.internal_check = None  # not picklable; the parent sets its own
    return summary, warnings


def summarize_logs_sync(
    options: SummaryOptions, progress: ProgressFn | None = None
) -> MailLogReport:
    started = time.monotonic()
    sources: list[SourceReport] = []
    files: list[LogFile] = []
    stdin_wanted = "-" in options.paths
    file_paths = [p for p in options.paths if p != "-"]
    files = plan_files(file_paths, options.window)
    for item in files:
        sources.append(
            SourceReport(item.path, "skipped" if item.skipped else "read", item.skipped, item.size)
        )
    readable = [item for item in files if not item.skipped]
    total_bytes = sum(item.size for item in readable)
    workers = options.workers or min(4, max(1, os.cpu_count() or 1))
    plain_bytes = sum(item.size for item in readable if not item.compressed)
    summary: Summary
    used_workers = 1
    warnings: dict[str, list[str]] = {}
    if workers > 1 and plain_bytes >= PARALLEL_MIN_BYTES:
        pieces = split_ranges(readable, workers)
        used_workers = len(pieces)
        summary = _run_parallel(pieces, options, total_bytes, progress, warnings)
    else:
        summary = _new_summary(options)
        done = [0]

        def count_block(size: int) -> None:
            done[0] += size
            if progress is not None and total_bytes:
                progress(f"reading logs: {done[0] * 100 // total_bytes}% of {_mb(total_bytes)}")

        for item in readable:
            scanner = Scanner(
                summary, options.window, datetime.fromtimestamp(item.mtime), options.syslog_names
            )
            before = summary.lines
            guard = _guard_for(item, options)
            with open_binary(item.path) as stream:
                scanner.scan(iter_lines(stream, None, count_block, guard))
            summary.lines_by_source[item.path] = summary.lines - before
            warnings[item.path] = guard.warnings()
    for source in sources:
        source.lines = summary.lines_by_source.get(source.name, 0)
        source.warnings = warnings.get(source.name, [])
    summary.internal_check = internal_matcher(options.internal_networks)
    if stdin_wanted:
        before = summary.lines
        scanner = Scanner(summary, options.window, datetime.now(), options.syslog_names)
        guard = ReadGuard("-")  # a stream has no size to bound; its lines are bounded
        scanner.scan(iter_lines(sys.stdin.buffer, guard=guard))
        sources.append(SourceReport("-", "read", "", 0, summary.lines - before, guard.warnings()))
    if options.journal_units:
        before = summary.lines
        command = journal_command(
            list(options.journal_units), options.window, options.journal_executable
        )
        if progress is not None:
            progress("reading the journal")
        scanner = Scanner(summary, options.window, datetime.now(), options.syslog_names)
        scanner.scan(run_journal(command, options.timeout))
        sources.append(SourceReport("journal", "read", "", 0, summary.lines - before))
    if not sources:
        raise LogInputError("logs", "no log files or journal configured")
    now = options.now if options.now is not None else time.time()
    window_hours = _window_hours(options.window, summary, now)
    suspects = detect_suspects(
        summary,
        options.thresholds,
        internal_matcher(options.internal_networks),
        window_hours,
        options.baseline,
        frozenset(options.local_domains),
    )
    return MailLogReport(
        summary=summary,
        suspects=suspects,
        sources=sources,
        window=options.window,
        window_hours=window_hours,
        elapsed=time.monotonic() - started,
        workers=used_workers,
    )


async def summarize_logs(
    options: SummaryOptions, progress: ProgressFn | None = None
) -> MailLogReport:
    """Async entry point: the work runs in a thread so the event loop stays responsive."""
    return await asyncio.to_thread(summarize_logs_sync, options, progress)


def _window_hours(window: TimeWindow, summary: Summary, now: float) -> float:
    if window.since is not None:
        end = window.until if window.until is not None else now
        return max((end - window.since) / 3600, 1 / 60)
    if summary.first_time is not None and summary.last_time is not None:
        return max((summary.last_time - summary.first_time) / 3600, 1 / 60)
    return 1.0


def _mb(size: int) -> str:
    return f"{size / 1e6:.0f} MB"


def _worker_main(
    piece: list[tuple[LogFile, int, int]],
    options: SummaryOptions,
    partial: bool,
    counter: object,
    connection: Connection,
) -> None:  # sends ("ok", (summary, warnings)) or ("error", reason)
    try:
        connection.send(("ok", _scan_piece(piece, options, partial, counter)))
    except BaseException as exc:  # report anything to the parent rather than dying silently
        connection.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        connection.close()


def _run_parallel(
    pieces: list[list[tuple[LogFile, int, int]]],
    options: SummaryOptions,
    total_bytes: int,
    progress: ProgressFn | None,
    warnings: dict[str, list[str]],
) -> Summary:
    # fork: the workers start at once and share the parent's pages. Forking while other threads
    # run is safe here because a worker only runs this module's code (no logging, no imports, no
    # locks another thread could hold) and then exits; elsewhere (no fork) fall back to spawn.
    method = "fork" if sys.platform == "linux" else "spawn"
    context = multiprocessing.get_context(method)
    counter = context.Value("q", 0)
    workers = []
    for index, piece in enumerate(pieces):
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(
            target=_worker_main, args=(piece, options, index > 0, counter, sender), daemon=True
        )
        process.start()
        sender.close()
        workers.append((process, receiver))
    parts: dict[int, Summary] = {}
    try:
        waiting = {receiver: index for index, (_, receiver) in enumerate(workers)}
        while waiting:
            for ready in wait_connections(list(waiting), timeout=0.5):
                index = waiting.pop(ready)  # type: ignore[call-overload]
                try:
                    status, value = ready.recv()  # type: ignore[union-attr]
                except EOFError:
                    raise LogInputError("logs", "a reader process died") from None
                if status != "ok":
                    raise LogInputError("logs", f"reading failed: {value}")
                parts[index], found = value
                for path, items in found.items():
                    warnings.setdefault(path, []).extend(items)
            if progress is not None and total_bytes:
                done = counter.value  # type: ignore[attr-defined]
                progress(
                    f"reading logs with {len(pieces)} processes: "
                    f"{min(100, done * 100 // total_bytes)}% of {_mb(total_bytes)}"
                )
    finally:
        for process, receiver in workers:
            receiver.close()
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
    merged = parts[0]
    merged.internal_check = internal_matcher(options.internal_networks)
    for index in range(1, len(pieces)):
        merged.merge(parts[index])
    return merged
