"""Exim main log (format per the Exim specification, "Log files"): <=, =>, ->, **, ==, H=, A=,
P=, S=, rejections and authenticator failures, as files and through syslog."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from handlers.logsummary.engine import SummaryOptions, summarize_logs_sync
from handlers.logsummary.scan import Scanner
from handlers.logsummary.summary import Summary
from handlers.logsummary.suspects import SuspectThresholds
from handlers.logsummary.timefmt import TimeWindow
from tests.fixtures.exim_lines import REJECTION_LINES

FIXTURE = Path(__file__).parent / "fixtures" / "exim-mainlog"


def test_exim_main_log_totals() -> None:
    report = summarize_logs_sync(
        SummaryOptions(
            paths=(str(FIXTURE),),
            thresholds=SuspectThresholds(relay_probe_count=5),
        )
    )
    totals = report.totals()
    assert totals["received"] == 5  # four <= lines from SMTP or local submission, one bounce
    assert totals["delivered"] == 5  # => and -> lines
    assert totals["bounced"] == 1
    assert (totals["deferred"], totals["deferrals"]) == (1, 1)
    assert totals["rejected"] == 5
    assert totals["bytes_received"] == 2048 + 1500 + 900 + 500 + 700
    # bytes per delivered recipient: 2 × 2048 (bob, carol) + 1500 (the bounce) + 500 + 700
    assert totals["bytes_delivered"] == 2 * 2048 + 1500 + 500 + 700
    s = report.summary
    assert set(s.senders) == {
        "alice@example.org",
        "from=<>",
        "news@example.org",
        "carol@example.org",
        "erin@example.org",
    }
    assert set(s.recipients) == {
        "bob@remote.example",
        "carol@remote.example",
        "alice",
        "dave@remote.example",
        "frank@remote.example",
    }
    assert s.sasl_messages_by_user == {"alice@example.org": 1, "erin@example.org": 1}
    assert s.sasl_failures_by_user == {"alice@example.org": 1}
    assert s.sasl_failures_by_ip == {"203.0.113.77": 1}
    assert s.bounce_reasons["mx.remote.example[198.51.100.5]"] == {
        "SMTP error from remote mail server after RCPT TO:<nobody@remote.example>: 550 5.1.1 "
        "User unknown": 1
    }
    assert s.reject_detail["reject"]["RCPT"]["relay not permitted"] == {"unknown[203.0.113.66]": 5}
    assert s.unparsed_lines == 0
    probes = [x for x in report.suspects if x.kind == "relay_probe"]
    assert [(p.subject, p.subject_type) for p in probes] == [("203.0.113.66", "client")]
    assert len(probes[0].evidence) == 5


def test_exim_through_syslog() -> None:
    lines = [
        "Nov 28 10:00:01 mx exim[77]: 1rAbCd-000AAA-Ab <= alice@example.org "
        "H=client.example.net [192.0.2.10] P=esmtpa A=plain:alice@example.org S=4096",
        "Nov 28 10:00:02 mx exim[77]: 1rAbCd-000AAA-Ab => bob@remote.example R=dnslookup "
        "T=remote_smtp H=mx.remote.example [198.51.100.5]",
        "Nov 28 10:00:02 mx exim[77]: 1rAbCd-000AAA-Ab Completed",
    ]
    summary = Summary()
    Scanner(summary, TimeWindow(), datetime(2026, 11, 28, 12)).scan(lines)
    assert (summary.received, summary.delivered, summary.bytes_delivered) == (1, 1, 4096)
    assert summary.sasl_ips == {"alice@example.org": {"192.0.2.10": lines[0]}}
    assert summary.open_queue_ids == 0  # Completed drops the message's state


def test_every_kind_of_rejection_counts_once_under_one_reason() -> None:
    lines = REJECTION_LINES
    summary = Summary()
    Scanner(summary, TimeWindow(), datetime(2026, 11, 28, 12)).scan(lines)
    assert summary.rejected == len(lines)
    reasons = {
        (stage, reason): sum(keys.values())
        for stage, by_reason in summary.reject_detail["reject"].items()
        for reason, keys in by_reason.items()
    }
    assert reasons == {
        ("DATA", "content rejected"): 1,
        ("MAIL", "message too big: max=2048"): 2,
        ("CONNECT", "dropped: too many unrecognized commands"): 1,
        ("CONNECT", "dropped: too many syntax or protocol errors"): 1,
        ("EHLO", "syntactically invalid argument(s): _bad_"): 1,
        ("CONNECT", "connection refused: host_reject_connection"): 1,
        ("CONNECT", "connection refused: too many connections"): 1,
        ("RCPT", "relay not permitted"): 1,
    }
    assert summary.unparsed_lines == 0
