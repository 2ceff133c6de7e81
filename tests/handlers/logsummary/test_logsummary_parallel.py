"""Chunked (parallel) reading gives exactly the sequential totals, wherever the log is cut:
events for queue IDs and smtpd sessions that began before a chunk are replayed at merge time."""

from __future__ import annotations

import itertools
import random
import sys
from datetime import datetime
from pathlib import Path

import pytest

from handlers.logsummary import engine, postfix
from handlers.logsummary.engine import SummaryOptions, summarize_logs_sync
from handlers.logsummary.report import MailLogReport
from handlers.logsummary.scan import Scanner
from handlers.logsummary.summary import Summary
from handlers.logsummary.timefmt import TimeWindow

# bench/ is not a package: import its log generator by path
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench" / "logsummary"))
from generate import generate


def _comparable(summary: Summary) -> dict:
    report = MailLogReport(summary, [], [], TimeWindow(), 1.0, 0.0)
    data = report.to_dict(top=0)
    for volatile in ("elapsed_seconds", "workers", "suspects", "sources", "window"):
        data.pop(volatile)
    data["origins"] = {k: v[:9] for k, v in summary.origins.items()}
    data["sasl_ips"] = {k: sorted(v) for k, v in summary.sasl_ips.items()}
    data["relay_denied"] = {k: v[0] for k, v in summary.relay_denied.items()}
    return data


def _scan(lines: list[str], partial: bool, reference: datetime) -> Summary:
    summary = Summary(partial=partial)
    Scanner(summary, TimeWindow(), reference).scan(lines)
    return summary


@pytest.fixture(scope="module")
def lines(shared_log: Path) -> list[str]:
    return shared_log.read_text(encoding="utf-8").split("\n")[:-1]


@pytest.fixture(scope="module")
def whole(lines: list[str]) -> dict:
    return _comparable(_scan(lines, False, datetime(2026, 11, 28, 23)))


@pytest.mark.parametrize("grace", [3600, 30])
def test_two_chunks_merge_exactly_at_many_cut_points(
    lines: list[str], whole: dict, grace: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # with a 30 s grace, messages created inside Postfix (bounces) late in a chunk are born there
    # instead of waiting for the merge; both ways must give the same totals
    monkeypatch.setattr(postfix, "BIRTH_GRACE_SECONDS", grace)
    reference = datetime(2026, 11, 28, 23)
    cuts = [*random.Random(5).sample(range(1, len(lines) - 1), 12), 1, 5, len(lines) // 2]
    for cut in cuts:
        first = _scan(lines[:cut], False, reference)
        second = _scan(lines[cut:], True, reference)
        first.merge(second)
        assert _comparable(first) == whole, f"cut at line {cut}"


def test_four_chunks_merge_in_order(lines: list[str], whole: dict) -> None:
    reference = datetime(2026, 11, 28, 23)
    bounds = [0, 7001, 15333, 22800, len(lines)]
    parts = [
        _scan(lines[a:b], index > 0, reference)
        for index, (a, b) in enumerate(itertools.pairwise(bounds))
    ]
    merged = parts[0]
    for part in parts[1:]:
        merged.merge(part)
    assert _comparable(merged) == whole
    assert merged.received == 3805 and merged.bytes_delivered == 88656916


def test_engine_reads_large_input_with_two_processes(
    tmp_path: Path, shared_log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "mail.log"
    generate(shared_log, 3 * 30706, log)
    monkeypatch.setattr(engine, "PARALLEL_MIN_BYTES", 0)
    parallel = summarize_logs_sync(SummaryOptions(paths=(str(log),), workers=2))
    sequential = summarize_logs_sync(SummaryOptions(paths=(str(log),), workers=1))
    assert parallel.workers == 2 and sequential.workers == 1
    assert parallel.totals() == sequential.totals()
    totals = parallel.totals()
    # fresh queue IDs per replay: additive totals triple, distinct addresses stay the same
    assert (totals["received"], totals["delivered"], totals["rejected"]) == (
        3 * 3805,
        3 * 7125,
        3 * 1046,
    )
    assert (totals["deferred"], totals["deferrals"]) == (300, 3 * 605)
    assert totals["bytes_delivered"] == 3 * 88656916
    assert (totals["senders"], totals["recipients"]) == (374, 389)
    assert parallel.summary.connections == 3 * 2500
    assert [s.subject for s in parallel.suspects] == [s.subject for s in sequential.suspects]


def test_queue_state_is_dropped_when_postfix_removes_the_message(lines: list[str]) -> None:
    summary = _scan(lines, False, datetime(2026, 11, 28, 23))
    # only messages still queued at the end of the log (deferred, never removed) keep state
    assert summary.open_queue_ids < 150
