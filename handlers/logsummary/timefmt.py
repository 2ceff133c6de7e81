"""Log timestamps: traditional syslog (no year: inferred), ISO 8601 / RFC 3339, and the time window.

Traditional syslog stamps (`Nov 28 21:30:47`) carry no year. The year is the one that puts the line
no later than a reference moment (the file's modification time, or now for a stream), with a day of
slack for clock skew: read on 2 January, `Dec 31` lines are last year's and `Jan  1` lines this
year's, which is also what makes a log that spans New Year come out in order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from handlers.numbers import NumberError, digits_or_zero, is_ascii_digits, parse_count

MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
HOURS = {f"{hour:02d}": hour for hour in range(24)}

# re.ASCII throughout: \d must not match other scripts' digits (see handlers/numbers.py)
_TRADITIONAL = re.compile(r"^([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) ", re.ASCII)
_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?"
    r"(Z|[+-]\d{2}:?\d{2})?(?= |$)",
    re.ASCII,
)
_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$", re.ASCII)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# The longest look-back a duration may ask for: far beyond any kept log, and far from the limits of
# datetime arithmetic (a bigger number is a typo or an attack, not a window).
MAX_LOOKBACK_SECONDS = 100 * 366 * 86400


class TimeSpecError(ValueError):
    """A --since/--until value that is neither a duration (24h) nor a date/time."""


@dataclass(frozen=True)
class TimeWindow:
    """Half-open [since, until) as epoch seconds; None means unbounded on that side."""

    since: float | None = None
    until: float | None = None

    @property
    def bounded(self) -> bool:
        return self.since is not None or self.until is not None

    def contains(self, moment: float) -> bool:
        if self.since is not None and moment < self.since:
            return False
        return not (self.until is not None and moment >= self.until)

    def overlaps(self, first: float | None, last: float | None) -> bool:
        """False only when [first, last] lies entirely outside the window."""
        if self.since is not None and last is not None and last < self.since:
            return False
        return not (self.until is not None and first is not None and first >= self.until)

    def describe(self) -> str:
        def fmt(value: float | None) -> str:
            if value is None:
                return "…"
            return datetime.fromtimestamp(value).astimezone().isoformat(timespec="minutes")

        return f"{fmt(self.since)} – {fmt(self.until)}"


def parse_time_spec(text: str, now: datetime) -> datetime:
    """`24h`, `90m`, `7d`, `2w` (that long before now), or an ISO date/time (local if no zone)."""
    value = text.strip()
    relative = _RELATIVE.match(value)
    if relative:
        unit = _UNIT_SECONDS[relative.group(2)]
        try:
            amount = parse_count(relative.group(1), "a duration", maximum=MAX_LOOKBACK_SECONDS)
        except NumberError:
            amount = MAX_LOOKBACK_SECONDS + 1
        if amount * unit > MAX_LOOKBACK_SECONDS:
            raise TimeSpecError(
                f"{_short(text)} is too long a duration: at most 100 years (e.g. 5200w, 36500d)"
            )
        return now - timedelta(seconds=amount * unit)
    if not value.isascii():
        raise TimeSpecError(f"{_short(text)} is not a time: use the digits 0-9, e.g. 24h or 7d")
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.astimezone()  # naive: the machine's local time, as the logs are
        moment.timestamp()  # the year 1 or 9999 in some zones cannot be an epoch
    except (ValueError, OverflowError, OSError):
        raise TimeSpecError(
            f"{_short(text)} is not a time: use a duration like 24h, 90m, 7d or a date/time like "
            "2026-11-27T00:00"
        ) from None
    return moment


def _short(text: str) -> str:
    """A user's value for an error message: quoted, and cut short when long."""
    return repr(text if len(text) <= 40 else text[:37] + "...")


def window_from_specs(since: str | None, until: str | None, now: datetime) -> TimeWindow:
    start = parse_time_spec(since, now).timestamp() if since else None
    end = parse_time_spec(until, now).timestamp() if until else None
    if start is not None and end is not None and end <= start:
        raise TimeSpecError(f"--until ({until}) must be later than --since ({since})")
    return TimeWindow(start, end)


class YearInference:
    """Epoch seconds for traditional syslog stamps, the year chosen relative to `reference`."""

    def __init__(self, reference: datetime) -> None:
        self.reference = reference.astimezone()
        self._limit = self.reference + timedelta(days=1)
        self._hour_cache: dict[str, float] = {}
        self._day_cache: dict[str, int] = {}

    def _year(self, month: int, day: int) -> int:
        year = self.reference.year
        try:
            candidate = datetime(year, month, day).astimezone()
        except ValueError:  # 29 Feb in a non-leap year: it belongs to the previous leap year
            return year - 1
        return year - 1 if candidate > self._limit else year

    def hour_start(self, stamp: str) -> float | None:
        """Epoch of the start of the hour of `Nov 28 21:…`, cached per hour."""
        key = stamp[:9]
        cached = self._hour_cache.get(key)
        if cached is not None:
            return cached
        month = MONTHS.get(stamp[:3])
        day_text = stamp[4:6].strip()
        hour = HOURS.get(stamp[7:9])
        if month is None or not is_ascii_digits(day_text) or hour is None:
            return None
        day = int(day_text)
        try:
            moment = datetime(self._year(month, day), month, day, hour).astimezone()
        except ValueError:
            return None
        if len(self._hour_cache) > 10_000:
            self._hour_cache.clear()
        value = self._hour_cache[key] = moment.timestamp()
        return value

    def epoch(self, stamp: str) -> float | None:
        base = self.hour_start(stamp)
        if base is None:
            return None
        minutes, seconds = stamp[10:12], stamp[13:15]
        if not (is_ascii_digits(minutes) and is_ascii_digits(seconds)):
            return None
        return base + int(minutes) * 60 + int(seconds)

    def seconds(self, stamp: str) -> int:
        """Monotonic seconds for durations: day ordinal × 86400 + time of day."""
        key = stamp[:6]
        day = self._day_cache.get(key)
        if day is None:
            month = MONTHS.get(stamp[:3], 1)
            day_text = stamp[4:6].strip()
            day_of_month = digits_or_zero(day_text) or 1
            try:
                day = datetime(self._year(month, day_of_month), month, day_of_month).toordinal()
            except ValueError:
                day = 0
            if len(self._day_cache) > 10_000:
                self._day_cache.clear()
            self._day_cache[key] = day
        try:
            return day * 86400 + int(stamp[7:9]) * 3600 + int(stamp[10:12]) * 60 + int(stamp[13:15])
        except ValueError:
            return day * 86400


def iso_epoch(stamp: str) -> float | None:
    """Epoch of an ISO 8601 stamp (`2026-11-28T21:30:47.123+01:00`, `…+0100`, `…Z`, no zone)."""
    found = _ISO.match(stamp)
    if found is None:
        return None
    year, month, day, hour, minute, second = (int(found.group(i)) for i in range(1, 7))
    fraction = found.group(7)
    zone = found.group(8)
    try:
        if zone is None:
            moment = datetime(year, month, day, hour, minute, second).astimezone()
        elif zone == "Z":
            moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        else:
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
            moment = datetime(
                year, month, day, hour, minute, second, tzinfo=timezone(sign * offset)
            )
    except ValueError:
        return None
    value = moment.timestamp()
    if fraction:
        value += float("0." + fraction)
    return value


def iso_seconds(stamp: str) -> int:
    """Monotonic seconds for durations from an ISO stamp (wall clock, zone ignored)."""
    try:
        day = datetime(int(stamp[:4]), int(stamp[5:7]), int(stamp[8:10])).toordinal()
        return day * 86400 + int(stamp[11:13]) * 3600 + int(stamp[14:16]) * 60 + int(stamp[17:19])
    except ValueError:
        return 0


def traditional_match(line: str) -> re.Match[str] | None:
    return _TRADITIONAL.match(line)


def iso_match(line: str) -> re.Match[str] | None:
    return _ISO.match(line)
