"""Inputs: framings (syslog, ISO, short-iso, journald JSON), year inference, rotated and gzip
files in time order, window skipping without reading, stdin, journalctl, and bad lines."""

from __future__ import annotations

import gzip
import io
import json
import os
import sys
import types
from datetime import datetime
from pathlib import Path

import pytest

from handlers.logsummary import engine
from handlers.logsummary.engine import SummaryOptions, summarize_logs_sync
from handlers.logsummary.inputs import LogInputError, rotations, time_order
from handlers.logsummary.scan import Scanner
from handlers.logsummary.summary import Summary
from handlers.logsummary.timefmt import TimeWindow, window_from_specs

MESSAGE = [
    "postfix/smtpd[200]: connect from mail.example.org[192.0.2.7]",
    "postfix/smtpd[200]: 4AB12C: client=mail.example.org[192.0.2.7]",
    "postfix/cleanup[300]: 4AB12C: message-id=<x@example.org>",
    "postfix/qmgr[400]: 4AB12C: from=<Ann@Example.ORG>, size=1234, nrcpt=1 (queue active)",
    "postfix/smtpd[200]: disconnect from mail.example.org[192.0.2.7] ehlo=1 mail=1 quit=1",
    "postfix/virtual[500]: 4AB12C: to=<bob@Our.Example>, relay=virtual, delay=0.1, "
    "delays=0/0/0/0.1, dsn=2.0.0, status=sent (delivered to maildir)",
    "postfix/qmgr[400]: 4AB12C: removed",
]


def _summary(lines: list[str], reference: datetime | None = None, **window) -> Summary:
    summary = Summary()
    Scanner(summary, TimeWindow(**window), reference or datetime(2026, 11, 28, 23)).scan(lines)
    return summary


def _one_message_counts(summary: Summary) -> tuple:
    return (
        summary.received,
        summary.delivered,
        summary.bytes_received,
        summary.bytes_delivered,
        summary.connections,
        list(summary.senders),
        list(summary.recipients),
    )


EXPECTED = (1, 1, 1234, 1234, 1, ["Ann@example.org"], ["bob@our.example"])


def test_traditional_syslog() -> None:
    lines = [f"Nov 28 10:00:0{i} mx {text}" for i, text in enumerate(MESSAGE)]
    summary = _summary(lines)
    assert _one_message_counts(summary) == EXPECTED
    assert summary.per_hour[10][:2] == [1, 1]
    assert summary.unparsed_lines == 0


@pytest.mark.parametrize(
    "stamp",
    [
        "2026-11-28T10:00:0{i}.123456+01:00",  # rsyslog RSYSLOG_FileFormat (high precision)
        "2026-11-28T10:00:0{i}+0100",  # journalctl -o short-iso
        "2026-11-28T10:00:0{i}.000Z",
    ],
)
def test_iso_timestamps(stamp: str) -> None:
    lines = [f"{stamp.format(i=i)} mx {text}" for i, text in enumerate(MESSAGE)]
    summary = _summary(lines)
    assert _one_message_counts(summary) == EXPECTED
    assert summary.per_hour[10][0] == 1  # the hour as written in the log, like pflogsumm


def test_custom_syslog_names_and_services() -> None:
    renamed = [
        text.replace("postfix/smtpd", "postfix-in/submission/smtpd").replace(
            "postfix/", "postfix-in/"
        )
        for text in MESSAGE
    ]
    lines = [f"Nov 28 10:00:0{i} mx {text}" for i, text in enumerate(renamed)]
    assert _one_message_counts(_summary(lines)) == EXPECTED
    custom = [text.replace("postfix", "mta") for text in MESSAGE]
    lines = [f"Nov 28 10:00:0{i} mx {text}" for i, text in enumerate(custom)]
    assert _summary(lines).received == 0  # not ours unless configured
    summary = Summary()
    Scanner(summary, TimeWindow(), datetime(2026, 11, 28), syslog_names=("mta",)).scan(lines)
    assert _one_message_counts(summary) == EXPECTED


def test_journald_json(tmp_path: Path) -> None:
    records = []
    for i, text in enumerate(MESSAGE):
        ident, _, message = text.partition(": ")
        name, _, pid = ident.partition("[")
        records.append(
            {
                "__REALTIME_TIMESTAMP": str(1795860000_000000 + i * 1_000_000),
                "_HOSTNAME": "mx",
                "SYSLOG_IDENTIFIER": name,
                "_PID": pid.rstrip("]"),
                "MESSAGE": message,
            }
        )
    # journald keeps a message that is not valid UTF-8 as an array of bytes
    records.append(
        {
            "__REALTIME_TIMESTAMP": "1795860010000000",
            "SYSLOG_IDENTIFIER": "postfix/smtpd",
            "_PID": "200",
            "MESSAGE": list(b"warning: bad \xff byte"),
        }
    )
    lines = [json.dumps(record) for record in records]
    lines.append('{"__REALTIME_TIMESTAMP": "17958600')  # truncated record
    summary = _summary(lines)
    assert _one_message_counts(summary) == EXPECTED
    assert summary.warnings == {"smtpd": {"bad \ufffd byte": 1}}
    assert summary.unparsed_lines == 1
    assert summary.unparsed_sample[0].startswith('{"__REALTIME_TIMESTAMP": "17958600')


def test_year_is_inferred_across_new_year() -> None:
    lines = [
        "Dec 31 23:59:58 mx postfix/smtpd[1]: 1A: client=unknown[192.0.2.1]",
        "Jan  1 00:00:01 mx postfix/smtpd[1]: 2B: client=unknown[192.0.2.2]",
    ]
    reference = datetime(2027, 1, 2, 9, 0)
    summary = _summary(lines, reference)
    assert summary.received == 2
    first = datetime.fromtimestamp(summary.first_time or 0)
    last = datetime.fromtimestamp(summary.last_time or 0)
    assert (first.year, first.month, last.year, last.month) == (2026, 12, 2027, 1)
    window = window_from_specs("2027-01-01T00:00", None, reference.astimezone())
    only_new_year = _summary(lines, reference, since=window.since, until=window.until)
    assert only_new_year.received == 1


def test_unpadded_day_is_accepted() -> None:
    lines = [f"Nov 1 10:00:0{i} mx {text}" for i, text in enumerate(MESSAGE)]
    assert _one_message_counts(_summary(lines)) == EXPECTED


def test_truncated_binary_and_garbage_lines_are_counted_not_fatal(tmp_path: Path) -> None:
    good = [f"Nov 28 10:00:0{i} mx {text}".encode() for i, text in enumerate(MESSAGE)]
    bad = [
        b"\x00\x01\x02\xff\xfe binary junk",
        b"Nov 28 10:00:0",  # truncated in the timestamp
        b"Nov 28 10:00:09 mx postfix/smtpd[200]",  # truncated before the message
        b"just some text",
        b"Nov 28 10:00:09 mx postfix/qmgr[400]: 9F9F9F: from=<truncated",
    ]
    log = tmp_path / "mail.log"
    log.write_bytes(b"\n".join(good[:3] + bad + good[3:]) + b"\n")
    report = summarize_logs_sync(SummaryOptions(paths=(str(log),)))
    summary = report.summary
    assert _one_message_counts(summary) == EXPECTED
    assert summary.unparsed_lines == 4  # the last bad line is a Postfix line that counts nothing
    assert summary.lines == len(good) + len(bad)
    assert any("binary junk" in line for line in summary.unparsed_sample)
    assert report.to_dict()["unparsed_lines"] == 4


def _write_day(path: Path, day: str, count: int, compressed: bool = False) -> None:
    lines = []
    for n in range(count):
        qid = f"{day.replace(' ', '')}{n:04d}".upper().encode().hex()[:10].upper()
        lines.append(
            f"{day} 10:00:{n % 60:02d} mx postfix/smtpd[1]: {qid}: client=unknown[192.0.2.9]"
        )
    data = ("\n".join(lines) + "\n").encode()
    if compressed:
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    moment = datetime(2026, 11, int(day.split()[-1]), 23).timestamp()
    os.utime(path, (moment, moment))


@pytest.fixture
def rotated(tmp_path: Path) -> Path:
    _write_day(tmp_path / "mail.log.3.gz", "Nov 19", 3, compressed=True)
    _write_day(tmp_path / "mail.log.2.gz", "Nov 20", 5, compressed=True)
    _write_day(tmp_path / "mail.log.1", "Nov 26", 7)
    _write_day(tmp_path / "mail.log", "Nov 28", 11)
    (tmp_path / "mail.log.bak").write_text("not a rotation\n")
    return tmp_path


def test_rotations_in_time_order(rotated: Path) -> None:
    names = [Path(p).name for p in rotations(str(rotated / "mail.log"))]
    assert names == ["mail.log.3.gz", "mail.log.2.gz", "mail.log.1", "mail.log"]
    globbed = sorted(str(p) for p in rotated.glob("mail.log*") if not p.name.endswith(".bak"))
    assert [Path(p).name for p in time_order(globbed)] == names


def test_rotated_and_gzip_files_are_all_read(rotated: Path) -> None:
    paths = tuple(rotations(str(rotated / "mail.log")))
    report = summarize_logs_sync(SummaryOptions(paths=paths))
    assert report.summary.received == 3 + 5 + 7 + 11
    assert [s.lines for s in report.sources] == [3, 5, 7, 11]
    assert datetime.fromtimestamp(report.summary.first_time or 0).day == 19


def test_files_outside_the_window_are_not_read(
    rotated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    real_open = engine.open_binary

    def recording_open(path: str):
        opened.append(Path(path).name)
        return real_open(path)

    monkeypatch.setattr(engine, "open_binary", recording_open)
    window = window_from_specs("2026-11-27T00:00", None, datetime(2026, 11, 28, 23).astimezone())
    paths = tuple(rotations(str(rotated / "mail.log")))
    report = summarize_logs_sync(SummaryOptions(paths=paths, window=window))
    assert opened == ["mail.log"]
    assert report.summary.received == 11
    statuses = {Path(s.name).name: (s.status, s.reason) for s in report.sources}
    assert statuses["mail.log.2.gz"] == ("skipped", "outside the time window")
    assert statuses["mail.log.1"] == ("skipped", "outside the time window")
    assert statuses["mail.log"] == ("read", "")
    # until: only the older files
    window = window_from_specs(
        "2026-11-19T00:00", "2026-11-21T00:00", datetime(2026, 11, 28).astimezone()
    )
    opened.clear()
    report = summarize_logs_sync(SummaryOptions(paths=paths, window=window))
    assert opened == ["mail.log.3.gz", "mail.log.2.gz"]
    assert report.summary.received == 8


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    data = "\n".join(f"Nov 28 10:00:0{i} mx {text}" for i, text in enumerate(MESSAGE)) + "\n"
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(data.encode())))
    report = summarize_logs_sync(SummaryOptions(paths=("-",)))
    assert _one_message_counts(report.summary) == EXPECTED
    assert report.sources[0].name == "-"


def _fake_journalctl(tmp_path: Path, body: str, code: int = 0) -> Path:
    script = tmp_path / "journalctl"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" > "{tmp_path}/args"\n'
        f"cat <<'EOF'\n{body}\nEOF\n"
        + (f"echo 'Failed to open journal' >&2\nexit {code}\n" if code else "")
    )
    script.chmod(0o755)
    return script


def test_journalctl_is_run_when_configured(tmp_path: Path) -> None:
    records = []
    for i, text in enumerate(MESSAGE):
        ident, _, message = text.partition(": ")
        name, _, pid = ident.partition("[")
        records.append(
            json.dumps(
                {
                    "__REALTIME_TIMESTAMP": str(1795860000_000000 + i),
                    "SYSLOG_IDENTIFIER": name,
                    "_PID": pid.rstrip("]"),
                    "MESSAGE": message,
                }
            )
        )
    script = _fake_journalctl(tmp_path, "\n".join(records))
    window = TimeWindow(since=1795850000.0)
    report = summarize_logs_sync(
        SummaryOptions(
            journal_units=("postfix@-.service",),
            journal_executable=str(script),
            window=window,
        )
    )
    assert _one_message_counts(report.summary) == EXPECTED
    args = (tmp_path / "args").read_text().split()
    assert args[:2] == ["-o", "json"]
    assert "--since=@1795850000" in args
    assert args[-2:] == ["-u", "postfix@-.service"]


def test_journalctl_failure_is_an_error(tmp_path: Path) -> None:
    script = _fake_journalctl(tmp_path, "", code=1)
    with pytest.raises(LogInputError, match="journalctl exited 1: Failed to open journal"):
        summarize_logs_sync(
            SummaryOptions(journal_units=("postfix@-.service",), journal_executable=str(script))
        )


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LogInputError, match="No such file"):
        summarize_logs_sync(SummaryOptions(paths=(str(tmp_path / "nope.log"),)))
