"""Where log lines come from: rotated (and gzip) files in time order, stdin, or journalctl.

Files wholly outside the time window are skipped after peeking at their first and last lines (a
gzip file's last line is bounded by the first line of the next newer file), never read through.
Every reader yields text lines split on "\\n" only (as syslog writes them), decoded as UTF-8 with
undecodable bytes replaced, so binary garbage becomes an unparsed line rather than an error.
"""

from __future__ import annotations

import gzip
import os
import re
import stat
import subprocess
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from handlers.logsummary.scan import EXIM, JOURNAL, TRADITIONAL, detect_framing
from handlers.logsummary.timefmt import TimeWindow, YearInference, iso_epoch

BLOCK_BYTES = 1 << 20  # 1 MiB: small enough to keep peak memory flat, big enough for speed
# Longer lines are skipped and counted: syslog and journald cut far shorter, so a longer "line" is
# garbage or an attack (a gzip bomb of NULs without a newline)
MAX_LINE_BYTES = 64 << 10
# decompressed bytes read from one .gz file at most (logs.max_decompressed_mb sets it)
DEFAULT_MAX_DECOMPRESSED_BYTES = 2048 << 20
_PEEK_BYTES = 1 << 16
_ROTATED = re.compile(r"^\.(?:(\d+)|(\d{8}))(\.gz)?$", re.ASCII)


class LogInputError(Exception):
    """A configured log cannot be read; carries the path and the reason."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


@dataclass
class LogFile:
    """One file to read, with what peeking found out about it."""

    path: str
    size: int
    mtime: float
    compressed: bool
    first: float | None = None  # epoch of the first line
    last: float | None = None  # epoch of the last line (plain files only)
    skipped: str = ""  # why it was not read, when it was not


def rotations(path: str) -> list[str]:
    """`mail.log` and its rotations (`mail.log.1`, `mail.log.2.gz`, `mail.log-20261127.gz`),
    oldest first; the live file comes last."""
    base = Path(path)
    found: list[tuple[int, int, str]] = []
    try:
        siblings = list(base.parent.iterdir())
    except OSError:
        siblings = []
    for sibling in siblings:
        name = sibling.name
        if not name.startswith(base.name) or name == base.name:
            continue
        match = _ROTATED.match(name[len(base.name) :].replace("-", ".", 1))
        if match is None:
            continue
        if match.group(1) is not None:
            # numbered rotations: higher number = older
            found.append((0, -int(match.group(1)), str(sibling)))
        else:
            found.append((0, int(match.group(2)), str(sibling)))
    ordered = [item[2] for item in sorted(found)]
    if base.exists():
        ordered.append(str(base))
    return ordered


def time_order(paths: list[str]) -> list[str]:
    """Orders files named on the command line (often a shell glob: mail.log mail.log.1 …) so
    that each log's rotations come oldest first and the live file last."""

    def key(path: str) -> tuple[str, int, int]:
        name = Path(path).name
        for cut in range(len(name)):
            match = _ROTATED.match(name[cut:].replace("-", ".", 1))
            if match and cut:
                base = str(Path(path).parent / name[:cut])
                if match.group(1) is not None:
                    return (base, 0, -int(match.group(1)))
                return (base, 0, int(match.group(2)))
        return (str(Path(path)), 1, 0)

    return sorted(dict.fromkeys(paths), key=key)


def not_regular(mode: int) -> str:
    """Why a file of this mode is not read ("" for a regular file)."""
    if stat.S_ISREG(mode):
        return ""
    kind = (
        "a directory"
        if stat.S_ISDIR(mode)
        else "a FIFO"
        if stat.S_ISFIFO(mode)
        else "a socket"
        if stat.S_ISSOCK(mode)
        else "a device"
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
        else "not a regular file"
    )
    # a FIFO or /dev/zero never ends: reading one would hang or fill memory
    return f"{kind}, not a log file: not read (use - to read a stream from stdin)"


class _OwnedGzip(gzip.GzipFile):
    """A GzipFile that also closes the file object it reads from."""

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__(fileobj=raw, mode="rb")
        self._raw = raw

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._raw.close()


def open_binary(path: str) -> BinaryIO:
    """Opens a regular file (gunzipping .gz); anything else is a LogInputError.

    The check is on the opened descriptor, so a FIFO swapped in after planning is still refused;
    O_NONBLOCK keeps the open itself from waiting for a FIFO's writer."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        reason = not_regular(os.fstat(fd).st_mode)
        if reason:
            raise LogInputError(path, reason)
        os.set_blocking(fd, True)
        raw = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    if path.endswith(".gz"):
        return _OwnedGzip(raw)  # type: ignore[return-value]
    return raw


@dataclass
class ReadGuard:
    """The limits for reading one input, and what hitting them cost (reported as warnings).

    A gzip bomb (a gigabyte of NULs without a newline) must neither fill memory nor run for
    minutes: an over-long line is skipped (and counted) instead of being collected, and a
    compressed file stops after `max_bytes` decompressed. A truncated or damaged .gz yields what
    could be read before the damage.
    """

    source: str
    max_line: int = MAX_LINE_BYTES
    max_bytes: int | None = None  # decompressed bytes per file; None: no limit
    overlong: int = 0
    capped: bool = False
    damaged: str = ""

    def warnings(self) -> list[str]:
        found = []
        if self.damaged:
            found.append(f"{self.damaged}; read what came before it")
        if self.overlong:
            found.append(
                f"{self.overlong} over-long line{'s' if self.overlong != 1 else ''} skipped "
                f"(longer than {self.max_line // 1024} KiB)"
            )
        if self.capped and self.max_bytes is not None:
            found.append(
                f"stopped after {self.max_bytes / (1 << 20):g} MB of decompressed data "
                "(logs.max_decompressed_mb); the rest was not read"
            )
        return found


def iter_lines(
    stream: BinaryIO,
    limit: int | None = None,
    on_block: Callable[[int], None] | None = None,
    guard: ReadGuard | None = None,
) -> Iterator[str]:
    """Lines of a binary stream (at most `limit` bytes), split on "\\n" only, without the "\\n".

    Memory stays within a block plus one line: see ReadGuard for the limits and what is reported.
    """
    guard = guard if guard is not None else ReadGuard("input")
    remaining = limit
    budget = guard.max_bytes
    carry = b""
    skipping = False  # inside an over-long line: drop bytes up to its newline
    while True:
        want = BLOCK_BYTES if remaining is None else min(BLOCK_BYTES, remaining)
        if budget is not None:
            if budget <= 0:
                guard.capped = bool(_read_or_damage(stream, 1, guard))
                break
            want = min(want, budget)
        if want <= 0:
            break
        block = _read_or_damage(stream, want, guard)
        if not block:
            break
        if remaining is not None:
            remaining -= len(block)
        if budget is not None:
            budget -= len(block)
        if on_block is not None:
            on_block(len(block))
        cut = block.rfind(b"\n") + 1
        if cut == 0:
            if not skipping:
                carry += block
                if len(carry) > guard.max_line:
                    guard.overlong += 1
                    carry, skipping = b"", True
            continue
        text = carry + block[:cut] if carry else block[:cut]
        carry = block[cut:]
        if skipping:
            text = text[text.find(b"\n") + 1 :]
            skipping = False
        if len(carry) > guard.max_line:
            guard.overlong += 1
            carry, skipping = b"", True
        if not text:
            continue
        pieces = text[:-1].decode("utf-8", "replace").split("\n")
        if max(map(len, pieces)) > guard.max_line:
            kept = [piece for piece in pieces if len(piece) <= guard.max_line]
            guard.overlong += len(pieces) - len(kept)
            pieces = kept
        yield from pieces
    if carry and not skipping:
        yield carry.decode("utf-8", "replace")


def _read_or_damage(stream: BinaryIO, size: int, guard: ReadGuard) -> bytes:
    """Up to `size` bytes; a truncated or corrupt compressed stream ends it, noted in `guard`.

    Gathered from read1 calls (one underlying read each) rather than one read: a failing gzip
    read discards everything that call decompressed, so this keeps all but the last small step
    before the damage."""
    if guard.damaged:
        return b""
    read = getattr(stream, "read1", stream.read)
    chunks: list[bytes] = []
    got = 0
    try:
        while got < size:
            chunk = read(size - got)
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
    except EOFError:
        guard.damaged = "the compressed file ends early (truncated)"
    except (zlib.error, gzip.BadGzipFile) as exc:
        guard.damaged = f"damaged compressed data ({exc})"
    except OSError as exc:
        guard.damaged = f"read error ({exc.strerror or exc})"
    return b"".join(chunks)


def line_epoch(line: str, years: YearInference) -> float | None:
    framing = detect_framing(line)
    if framing == TRADITIONAL:
        return years.epoch(line)
    if framing == JOURNAL:
        found = re.search(r'"__REALTIME_TIMESTAMP"\s*:\s*"(\d{1,20})"', line, re.ASCII)
        return int(found.group(1)) / 1_000_000 if found else None
    if framing == EXIM:
        return iso_epoch(f"{line[:10]}T{line[11:19]}")
    if framing is not None:
        return iso_epoch(line[: line.find(" ")])
    return None


def _first_epoch(path: str, years: YearInference) -> float | None:
    try:
        with open_binary(path) as stream:
            head = stream.read(_PEEK_BYTES)
    except (OSError, EOFError, gzip.BadGzipFile):
        return None
    for raw in head.split(b"\n")[:50]:
        moment = line_epoch(raw.decode("utf-8", "replace"), years)
        if moment is not None:
            return moment
    return None


def _last_epoch(path: str, size: int, years: YearInference) -> float | None:
    try:
        with open(path, "rb") as stream:
            stream.seek(max(0, size - _PEEK_BYTES))
            tail = stream.read(_PEEK_BYTES)
    except OSError:
        return None
    for raw in reversed(tail.split(b"\n")[-50:]):
        moment = line_epoch(raw.decode("utf-8", "replace"), years)
        if moment is not None:
            return moment
    return None


def plan_files(paths: list[str], window: TimeWindow) -> list[LogFile]:
    """Stat and peek at each file (given oldest first); mark the ones outside the window skipped."""
    files: list[LogFile] = []
    for path in paths:
        try:
            info = os.stat(path)
        except OSError as exc:
            raise LogInputError(path, exc.strerror or "cannot read") from None
        refused = not_regular(info.st_mode)
        if refused:
            files.append(LogFile(path, 0, info.st_mtime, False, skipped=refused))
            continue
        if not os.access(path, os.R_OK):
            raise LogInputError(path, "permission denied (is the user in group adm?)")
        files.append(LogFile(path, info.st_size, info.st_mtime, compressed=path.endswith(".gz")))
    if not window.bounded:
        return files
    for item in files:
        if item.skipped:
            continue
        years = YearInference(datetime.fromtimestamp(item.mtime))
        item.first = _first_epoch(item.path, years)
        if not item.compressed:
            item.last = _last_epoch(item.path, item.size, years)
    for index, item in enumerate(files):
        if item.skipped:
            continue
        last = item.last
        if last is None:
            # the next newer file starts after this one ends; its mtime bounds it too
            following = files[index + 1] if index + 1 < len(files) else None
            last = following.first if following is not None and following.first else item.mtime
        if not window.overlaps(item.first, last):
            item.skipped = "outside the time window"
    return files


def split_ranges(files: list[LogFile], parts: int) -> list[list[tuple[LogFile, int, int]]]:
    """Cuts the files (in order) into `parts` contiguous pieces of similar size, on line
    boundaries; compressed files are never cut. Each piece is a list of (file, start, end)."""
    readable = [item for item in files if not item.skipped]
    total = sum(item.size for item in readable)
    target = total / parts if parts else total
    pieces: list[list[tuple[LogFile, int, int]]] = [[]]
    filled = 0.0
    for item in readable:
        start = 0
        while True:
            room = target * len(pieces) - filled
            left = item.size - start
            if item.compressed or left <= room or len(pieces) == parts:
                pieces[-1].append((item, start, item.size))
                filled += left
                break
            cut = _next_line_start(item.path, start + int(room))
            if cut >= item.size:
                pieces[-1].append((item, start, item.size))
                filled += left
                break
            pieces[-1].append((item, start, cut))
            filled += cut - start
            pieces.append([])
            start = cut
    return [piece for piece in pieces if piece]


def _next_line_start(path: str, offset: int) -> int:
    with open(path, "rb") as stream:
        stream.seek(offset)
        while True:
            block = stream.read(1 << 16)
            if not block:
                return stream.tell()
            newline = block.find(b"\n")
            if newline >= 0:
                return offset + newline + 1
            offset += len(block)


def journal_command(
    units: list[str], window: TimeWindow, executable: str = "journalctl"
) -> list[str]:
    command = [executable, "-o", "json", "--no-pager", "-q"]
    if window.since is not None:
        command.append(f"--since=@{int(window.since)}")
    if window.until is not None:
        command.append(f"--until=@{int(window.until)}")
    for unit in units:
        command.extend(["-u", unit])
    return command


def run_journal(command: list[str], timeout: float) -> Iterator[str]:
    """Lines of `journalctl -o json`; raises LogInputError when it cannot run or fails."""
    try:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
    except OSError as exc:
        raise LogInputError("journal", f"cannot run {command[0]}: {exc.strerror}") from None
    assert process.stdout is not None
    # a watchdog, because a stuck journalctl would otherwise block the read forever
    watchdog = threading.Timer(timeout, process.kill)
    watchdog.start()
    try:
        yield from iter_lines(process.stdout)
        code = process.wait()
        if not watchdog.is_alive():
            raise LogInputError("journal", f"journalctl did not finish in {timeout:g}s")
        if code != 0:
            error = (
                process.stderr.read().decode("utf-8", "replace").strip() if process.stderr else ""
            )
            raise LogInputError("journal", f"journalctl exited {code}: {error[:200]}")
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
