"""Write a large Postfix log by replaying the real log in tests/data/postfix-mixed.log.gz.

Each replay is shifted later in time (by the length of the original plus a minute) and gets
fresh queue IDs (every queue ID in the replay, also those quoted inside other lines, is mapped to a
new unique one), so pflogsumm and relaywatch see distinct messages. The output is cut at exactly
--lines lines.

    python bench/logsummary/generate.py --lines 1000000 --output /tmp/rw-bench/mail-1m.log
"""

from __future__ import annotations

import argparse
import gzip
import re
import sys
from datetime import datetime, timedelta
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2] / "tests" / "data" / "postfix-mixed.log.gz"
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
# Postfix short queue IDs: upper-case hex, 8 or more characters
QUEUE_ID = re.compile(r"\b(?=[0-9A-F]*[A-F])[0-9A-F]{8,12}\b")


def _stamp(text: str, year: int) -> datetime:
    return datetime(
        year,
        MONTHS.index(text[:3]) + 1,
        int(text[4:6]),
        int(text[7:9]),
        int(text[10:12]),
        int(text[13:15]),
    )


def _format(moment: datetime) -> str:
    return f"{MONTHS[moment.month - 1]} {moment.day:>2} {moment:%H:%M:%S}"


def generate(source: Path, lines_wanted: int, output: Path, year: int = 2026) -> int:
    opener = gzip.open if source.suffix == ".gz" else open
    with opener(source, "rt", encoding="utf-8") as text:
        original = text.read().splitlines()
    first = _stamp(original[0], year)
    last = _stamp(original[-1], year)
    shift_step = (last - first) + timedelta(minutes=1)
    written = 0
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", encoding="utf-8") as sink:
        replay = 0
        while written < lines_wanted:
            shift = shift_step * replay
            stamps: dict[str, str] = {}
            ids: dict[str, str] = {}

            def fresh(match: re.Match[str], replay: int = replay, ids: dict = ids) -> str:
                old = match.group(0)
                new = ids.get(old)
                if new is None:
                    # prefix with the replay number (hex) so IDs never repeat across replays
                    new = ids[old] = f"{replay:05X}{old}"
                return new

            for line in original:
                if written >= lines_wanted:
                    break
                key = line[:15]
                stamp = stamps.get(key)
                if stamp is None:
                    stamp = stamps[key] = _format(_stamp(key, year) + shift)
                rest = line[15:]
                if replay:
                    rest = QUEUE_ID.sub(fresh, rest)
                sink.write(stamp + rest + "\n")
                written += 1
            replay += 1
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--source", type=Path, default=SOURCE)
    args = parser.parse_args(argv)
    count = generate(args.source, args.lines, args.output)
    print(f"wrote {count} lines to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
