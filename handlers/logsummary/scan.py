"""One pass over a stream of log lines: recognise the framing, filter by time, dispatch by program.

Framings: traditional syslog (`Nov 28 21:30:47 host tag[pid]: text`), ISO syslog (rsyslog's
high-precision format, Postfix's maillog_file, `journalctl -o short-iso`), Exim's own main log
(`2026-11-28 21:30:47 1rAbCd-… <= …`) and `journalctl -o json` (one JSON object per line). The
framing is detected from a stream's first lines; a line that does not fit is tried against the
others and otherwise counted as unparsed (with a sample), never fatal.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime

from handlers.logsummary.exim import EximParser
from handlers.logsummary.postfix import PostfixParser
from handlers.logsummary.summary import Summary
from handlers.logsummary.timefmt import (
    HOURS,
    TimeWindow,
    YearInference,
    iso_epoch,
    iso_match,
    iso_seconds,
    traditional_match,
)

TRADITIONAL, ISO, EXIM, JOURNAL = "syslog", "iso", "exim", "journal"
# How often (in lines) the scanner reports progress and trims stale queue state.
CHECK_EVERY = 1 << 16
# Postfix keeps at most 20,000 messages active by default; deferred ones are removed after 5 days
MAX_OPEN_QUEUE_IDS = 50_000
_TAG_CACHE_LIMIT = 50_000

Handler = Callable[[str, str, str, int, str], None]


def detect_framing(line: str) -> str | None:
    stripped = line.lstrip("\ufeff")
    if stripped.startswith("{"):
        return JOURNAL
    if traditional_match(stripped):
        return TRADITIONAL
    if iso_match(stripped):
        return EXIM if stripped[10:11] == " " else ISO
    return None


class Scanner:
    """Feeds lines into a Summary. One Scanner per stream (its year reference is the stream's)."""

    def __init__(
        self,
        summary: Summary,
        window: TimeWindow,
        reference: datetime,
        syslog_names: Iterable[str] = (),
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.summary = summary
        self.window = window
        self.years = YearInference(reference)
        self.extra_names = frozenset(syslog_names)
        self.progress = progress
        self.postfix = PostfixParser(summary, self._seconds)
        self.exim = EximParser(summary)
        self._tags: dict[str, tuple[Handler, str, str] | None] = {}
        self._iso_line = False  # which framing the current line has, for _seconds
        self._stamps: dict[str, int] = {}
        self.first_stamp: float | None = None
        self.last_stamp: float | None = None

    # -- public ----------------------------------------------------------------------------------

    def scan(self, lines: Iterable[str], framing: str | None = None) -> None:
        iterator = iter(lines)
        head: list[str] = []
        if framing is None:
            for line in iterator:
                head.append(line)
                framing = detect_framing(line)
                if framing is not None or len(head) >= 50:
                    break
        framing = framing or TRADITIONAL
        stream = _chain(head, iterator)
        if framing == JOURNAL:
            self._scan_syslog(_journal_lines(stream, self.summary), iso=True)
        elif framing == EXIM:
            self._scan_exim(stream)
        else:
            self._scan_syslog(stream, iso=framing == ISO)
        self.summary.seen_time(self.first_stamp, self.last_stamp)

    # -- framings --------------------------------------------------------------------------------

    def _scan_syslog(self, lines: Iterable[str], iso: bool) -> None:
        # The hot loop: a few str.find calls frame the line, a dict lookup on the syslog tag
        # picks the handler; everything else happens in the handlers.
        summary = self.summary
        tags = self._tags
        classify = self._classify
        hours = HOURS
        bounded = self.window.bounded
        mask = CHECK_EVERY - 1
        self._iso_line = iso
        count = 0
        other = 0
        mail = 0
        first_line: str | None = None
        last_line: str | None = None
        for line in lines:
            count += 1
            if not count & mask:
                self._checkpoint(count)
            if iso:
                stamp_end = line.find(" ")
                hour = hours.get(line[11:13]) if stamp_end >= 19 else None
                host_end = line.find(" ", stamp_end + 1)
            else:
                hour = hours.get(line[7:9]) if line[15:16] == " " else None
                host_end = line.find(" ", 16)
            tag_end = line.find(": ", host_end + 1)
            if hour is None or host_end < 0 or tag_end < 0:
                self._odd_line(line, ISO if iso else TRADITIONAL)
                continue
            info = tags.get(line[host_end + 1 : tag_end], False)
            if info is False:
                info = classify(line[host_end + 1 : tag_end])
            if info is None:
                other += 1
                continue
            if bounded and not self._in_window(line, iso):
                continue
            if first_line is None:
                first_line = line
            last_line = line
            mail += 1
            handler, cmd, pid = info
            handler(cmd, pid, line[tag_end + 2 :], hour, line)
        summary.lines += count
        summary.mail_lines += mail
        summary.other_lines += other
        self._note_span(first_line, last_line, iso)

    def _scan_exim(self, lines: Iterable[str]) -> None:
        summary = self.summary
        bounded = self.window.bounded
        count = 0
        mail = 0
        first_line: str | None = None
        last_line: str | None = None
        for line in lines:
            count += 1
            if not count & (CHECK_EVERY - 1):
                self._checkpoint(count)
            hour = HOURS.get(line[11:13])
            if hour is None or line[4:5] != "-" or line[10:11] != " " or line[13:14] != ":":
                self._odd_line(line, EXIM)
                continue
            body_start = line.find(" ", 19) + 1
            zone = ""
            if (
                line[body_start : body_start + 1] in ("+", "-")
                and line[body_start + 1 : body_start + 2].isdigit()
            ):
                zone_end = line.find(" ", body_start)
                zone = line[body_start:zone_end]
                body_start = zone_end + 1
            if bounded:
                moment = iso_epoch(f"{line[:10]}T{line[11:19]}{zone}")
                if moment is not None and not self.window.contains(moment):
                    continue
            if first_line is None:
                first_line = line
            last_line = line
            mail += 1
            self.exim.handle(line[body_start:], hour, line)
        summary.lines += count
        summary.mail_lines += mail
        for which, chosen in (("first", first_line), ("last", last_line)):
            if chosen is None:
                continue
            moment = iso_epoch(f"{chosen[:10]}T{chosen[11:19]}")
            if moment is None:
                continue
            if which == "first" and (self.first_stamp is None or moment < self.first_stamp):
                self.first_stamp = moment
            if which == "last" and (self.last_stamp is None or moment > self.last_stamp):
                self.last_stamp = moment

    # -- helpers ---------------------------------------------------------------------------------

    def _classify(self, tag: str) -> tuple[Handler, str, str] | None:
        bracket = tag.find("[")
        if bracket >= 0:
            name, pid = tag[:bracket], tag[bracket + 1 : -1]
        else:
            name, pid = tag, ""
        parts = name.split("/")
        head = parts[0]
        info: tuple[Handler, str, str] | None = None
        if head.startswith("postfix") or head in self.extra_names:
            cmd = parts[-1] if len(parts) > 1 else head
            info = (self.postfix.handler_for(cmd), cmd, pid)
        elif head in ("exim", "exim4"):
            info = (self._exim_syslog, "exim", pid)
        if len(self._tags) >= _TAG_CACHE_LIMIT:
            self._tags.clear()
        self._tags[tag] = info
        return info

    def _exim_syslog(self, _cmd: str, _pid: str, body: str, hour: int, line: str) -> None:
        self.exim.handle(body, hour, line)

    def _in_window(self, line: str, iso: bool) -> bool:
        window = self.window
        if iso:
            moment = iso_epoch(line[: line.find(" ")])
            return moment is None or window.contains(moment)
        base = self.years.hour_start(line)
        if base is None:
            return True
        if (window.since is None or base >= window.since) and (
            window.until is None or base + 3600 <= window.until
        ):
            return True
        moment = self.years.epoch(line)
        return moment is None or window.contains(moment)

    def _seconds(self, line: str) -> int:
        stamp = line[:19] if self._iso_line else line[:15]
        value = self._stamps.get(stamp)
        if value is None:
            if len(self._stamps) > 4096:
                self._stamps.clear()
            value = iso_seconds(stamp) if self._iso_line else self.years.seconds(stamp)
            self._stamps[stamp] = value
        return value

    def _note_span(self, first: str | None, last: str | None, iso: bool) -> None:
        for which, line in (("first", first), ("last", last)):
            if line is None:
                continue
            moment = iso_epoch(line[: line.find(" ")]) if iso else self.years.epoch(line)
            if moment is None:
                continue
            if which == "first" and (self.first_stamp is None or moment < self.first_stamp):
                self.first_stamp = moment
            if which == "last" and (self.last_stamp is None or moment > self.last_stamp):
                self.last_stamp = moment

    def _odd_line(self, line: str, current: str) -> None:
        """A line that does not fit the stream's framing: another framing, or unparsed."""
        if not line.strip():
            return  # blank lines are not worth a sample
        framing = detect_framing(line)
        if framing == TRADITIONAL:
            found = traditional_match(line)
            assert found is not None
            # one-digit day without padding ("Nov 1 …"): re-pad and take the normal path
            fixed = f"{found.group(1)} {int(found.group(2)):>2} " + line[found.start(3) :]
            if fixed[15:16] == " " and (fixed != line or current != TRADITIONAL):
                self._one_line(fixed, TRADITIONAL)
                return
        elif framing is not None and framing != current:
            self._one_line(line, framing)
            return
        self.summary.unparsed(line)

    def _one_line(self, line: str, framing: str) -> None:
        lines_before = self.summary.lines  # the caller has counted this line already
        saved = self._iso_line
        if framing == JOURNAL:
            self._scan_syslog(_journal_lines([line], self.summary), iso=True)
        elif framing == EXIM:
            self._scan_exim([line])
        else:
            self._scan_syslog([line], iso=framing == ISO)
        self.summary.lines = lines_before
        self._iso_line = saved

    def _checkpoint(self, count: int) -> None:
        self.summary.expire_queue(MAX_OPEN_QUEUE_IDS)
        if self.progress is not None:
            self.progress(count)


def _chain(head: list[str], rest: Iterable[str]) -> Iterable[str]:
    yield from head
    yield from rest


def _journal_lines(lines: Iterable[str], summary: Summary) -> Iterable[str]:
    """`journalctl -o json` records → ISO syslog lines (`stamp host ident[pid]: message`)."""
    for raw in lines:
        try:
            record = json.loads(raw)
            stamp = int(record["__REALTIME_TIMESTAMP"]) / 1_000_000
            moment = datetime.fromtimestamp(stamp).astimezone().isoformat(timespec="microseconds")
        except (ValueError, KeyError, TypeError, OverflowError, OSError, RecursionError):
            # a stamp that is not a number, or so large no calendar holds it
            summary.unparsed(raw)
            continue
        if not isinstance(record, dict):
            summary.unparsed(raw)
            continue
        message = record.get("MESSAGE", "")
        if isinstance(message, list):  # journald stores non-UTF-8 messages as a byte array
            try:
                message = bytes(message).decode("utf-8", "replace")
            except (TypeError, ValueError):
                message = ""
        if not isinstance(message, str):
            message = str(message)
        ident = record.get("SYSLOG_IDENTIFIER") or record.get("_COMM") or "unknown"
        pid = record.get("SYSLOG_PID") or record.get("_PID") or ""
        host = record.get("_HOSTNAME") or "localhost"
        tag = f"{ident}[{pid}]" if pid else ident
        yield f"{moment} {host} {tag}: {message.rstrip()}"
