"""Hostile inputs for the log summary: truncated and damaged .gz files, gzip bombs (lines without
an end, more data than any log), and files that are not files (FIFOs, devices, directories).

Each is read as far as is sensible and reported as a warning naming the file; nothing raises,
hangs or collects unbounded memory — in one process and in the forked readers alike.
"""

from __future__ import annotations

import gzip
import io
import os
import socket
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.logsummary import engine
from handlers.logsummary.engine import SummaryOptions, summarize_logs_sync
from handlers.logsummary.inputs import (
    MAX_LINE_BYTES,
    LogInputError,
    ReadGuard,
    iter_lines,
    open_binary,
)


def message_lines(count: int) -> str:
    out = []
    for n in range(count):
        qid = f"4A{n:08X}"
        second = n % 60
        out += [
            f"Nov 28 10:00:{second:02d} mx postfix/smtpd[200]: {qid}: client=h.example[192.0.2.7]",
            f"Nov 28 10:00:{second:02d} mx postfix/qmgr[400]: {qid}: from=<a{n}@example.org>, "
            "size=1234, nrcpt=1 (queue active)",
            f"Nov 28 10:00:{second:02d} mx postfix/qmgr[400]: {qid}: removed",
        ]
    return "\n".join(out) + "\n"


def source(report, path: Path):
    return next(s for s in report.sources if s.name == str(path))


# -- the line reader -----------------------------------------------------------------------------


class Chunks(io.RawIOBase):
    """A stream that hands out at most `size` bytes per read (as a socket or gzip would)."""

    def __init__(self, data: bytes, size: int) -> None:
        self.data, self.size, self.at = data, size, 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        take = self.size if n < 0 else min(n, self.size)
        piece = self.data[self.at : self.at + take]
        self.at += len(piece)
        return piece


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(alphabet="abc xyz", max_size=40),
            st.integers(min_value=MAX_LINE_BYTES + 1, max_value=3 * MAX_LINE_BYTES),
        ),
        max_size=12,
    ),
    st.integers(min_value=997, max_value=200_000),
)
def test_over_long_lines_are_skipped_and_counted_however_the_reads_fall(
    lines: list[str | int], chunk: int
) -> None:
    # ints stand for over-long lines of that many NULs
    data = b"".join((b"\0" * x if isinstance(x, int) else x.encode()) + b"\n" for x in lines)
    guard = ReadGuard("test")
    got = list(iter_lines(Chunks(data, chunk), guard=guard))  # type: ignore[arg-type]
    assert got == [x for x in lines if isinstance(x, str)]
    assert guard.overlong == sum(isinstance(x, int) for x in lines)


def test_a_line_without_an_end_is_not_collected() -> None:
    guard = ReadGuard("bomb")
    data = b"first\n" + b"\0" * (20 * MAX_LINE_BYTES)
    assert list(iter_lines(io.BytesIO(data), guard=guard)) == ["first"]
    assert guard.overlong == 1
    assert guard.warnings() == ["1 over-long line skipped (longer than 64 KiB)"]


# -- compressed files ------------------------------------------------------------------------------


def test_a_truncated_gz_is_read_up_to_the_damage(tmp_path: Path) -> None:
    whole = gzip.compress(message_lines(3000).encode())
    path = tmp_path / "mail.log.2.gz"
    path.write_bytes(whole[: len(whole) * 2 // 3])
    report = summarize_logs_sync(SummaryOptions(paths=(str(path),)))
    entry = source(report, path)
    assert 0 < entry.lines < 9000  # what came before the cut, not nothing and not all
    assert report.summary.received > 0
    assert any("truncated" in w for w in entry.warnings)


def test_a_damaged_old_rotation_does_not_stop_the_newer_files(tmp_path: Path) -> None:
    old = tmp_path / "mail.log.1.gz"
    data = bytearray(gzip.compress(message_lines(2000).encode()))
    data[len(data) // 2 : len(data) // 2 + 64] = b"\xff" * 64  # corrupt, not just short
    old.write_bytes(bytes(data))
    live = tmp_path / "mail.log"
    live.write_text(message_lines(10))
    report = summarize_logs_sync(SummaryOptions(paths=(str(old), str(live))))
    assert source(report, old).warnings and not source(report, live).warnings
    assert source(report, live).lines == 30


def test_decompressed_bytes_per_file_are_bounded(tmp_path: Path) -> None:
    path = tmp_path / "bomb.log.gz"
    lines = (message_lines(1) * 4000).encode()  # ~ 0.9 MB of real lines
    path.write_bytes(gzip.compress(lines * 4, compresslevel=1))
    report = summarize_logs_sync(SummaryOptions(paths=(str(path),), max_decompressed_bytes=1 << 20))
    entry = source(report, path)
    assert entry.lines < len(lines) * 4 // 50  # stopped near 1 MB, far short of all
    assert any("stopped after 1 MB" in w for w in entry.warnings)


def test_a_gzip_bomb_without_newlines(tmp_path: Path) -> None:
    path = tmp_path / "bomb.gz"
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)  # 31: gzip framing
    with open(path, "wb") as out:
        out.write(compressor.compress(message_lines(5).encode()))
        for _ in range(16):
            out.write(compressor.compress(b"\0" * (1 << 20)))
        out.write(compressor.flush())
    report = summarize_logs_sync(SummaryOptions(paths=(str(path),), max_decompressed_bytes=8 << 20))
    entry = source(report, path)
    assert entry.lines == 15
    assert any("over-long line skipped" in w for w in entry.warnings)
    assert any("stopped after 8 MB" in w for w in entry.warnings)


# -- files that are not files ----------------------------------------------------------------------


def test_a_fifo_a_device_and_a_directory_are_refused_not_read(tmp_path: Path) -> None:
    fifo = tmp_path / "mail.fifo"
    os.mkfifo(fifo)
    folder = tmp_path / "mail.d"
    folder.mkdir()
    live = tmp_path / "mail.log"
    live.write_text(message_lines(2))
    sock_path = tmp_path / "mail.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(sock_path))
    paths = (str(fifo), "/dev/zero", str(folder), str(sock_path), str(live))
    try:
        report = summarize_logs_sync(SummaryOptions(paths=paths))
    finally:
        listener.close()
    reasons = {s.name: s.reason for s in report.sources}
    assert "a socket" in reasons[str(sock_path)]
    assert "a FIFO" in reasons[str(fifo)]
    assert "a device" in reasons["/dev/zero"]
    assert "a directory" in reasons[str(folder)]
    assert source(report, live).lines == 6
    for path in (fifo, Path("/dev/zero"), folder):
        with pytest.raises(LogInputError):  # and at open time, should one be swapped in
            open_binary(str(path)).close()


def test_the_forked_readers_keep_the_same_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Forked readers normally start at 48 MB of plain logs; lower the threshold so that a small
    # input goes through them.
    monkeypatch.setattr(engine, "PARALLEL_MIN_BYTES", 0)
    plain = tmp_path / "mail.log"
    plain.write_text(message_lines(400) + "x" * (2 * MAX_LINE_BYTES) + "\n" + message_lines(400))
    old = tmp_path / "mail.log.1.gz"
    whole = gzip.compress(message_lines(2000).encode())
    old.write_bytes(whole[: len(whole) // 2])
    report = summarize_logs_sync(SummaryOptions(paths=(str(old), str(plain)), workers=2))
    assert report.workers == 2
    assert any("over-long line" in w for w in source(report, plain).warnings)
    assert any("truncated" in w for w in source(report, old).warnings)
    assert source(report, plain).lines == 2400
