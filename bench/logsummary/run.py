"""Benchmark: Debian's pflogsumm and `relaywatch mailsummary` on the same generated Postfix logs.

For each size (default 1,000,000 and 4,000,000 lines) the log is generated into a temporary
directory by replaying tests/data/postfix-mixed.log.gz (generate.py), then both tools read it,
one after the other, in the same run: wall time, lines per second, peak RSS (of the largest
process, and of the whole process tree, sampled from /proc), and the grand totals side by side.

    python bench/logsummary/run.py                      # 1M and 4M lines
    python bench/logsummary/run.py --lines 1000000 --repeat 3
    python bench/logsummary/run.py --dir /var/tmp/rw-bench --keep

Needs: apt-get install pflogsumm libdate-calc-perl (pflogsumm's --smtpd-stats needs Date::Calc).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
from generate import SOURCE, generate  # noqa: E402

PFLOGSUMM_TOTALS = {
    "received": "received",
    "delivered": "delivered",
    "forwarded": "forwarded",
    "deferred": "deferred",
    "bounced": "bounced",
    "rejected": "rejected",
    "reject warnings": "reject_warnings",
    "held": "held",
    "discarded": "discarded",
    "bytes received": "bytes_received",
    "bytes delivered": "bytes_delivered",
    "senders": "senders",
    "sending hosts/domains": "sending_hosts",
    "recipients": "recipients",
    "recipient hosts/domains": "recipient_hosts",
}


@dataclass
class Run:
    tool: str
    seconds: float
    cpu_seconds: float  # user + system, worker processes included
    max_rss_kb: int  # largest single process (sampled VmHWM)
    tree_rss_kb: int  # largest PSS sum over the process tree (sampled)
    totals: dict[str, str]


class TreeRss:
    """Samples the memory of a process and its descendants every few milliseconds: the sum of
    their PSS (proportional set size: pages shared between forked workers count once in total,
    where summing RSS would count them once per process)."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_kb = 0
        self.largest_kb = 0  # largest VmHWM (peak RSS) of any one process in the tree
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, self._sample())
            time.sleep(self.interval)

    def _sample(self) -> int:
        parents: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            # "pid (comm) state ppid …": comm may contain spaces, so split after the ")"
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
        tree = {self.pid}
        changed = True
        while changed:
            changed = False
            for pid, ppid in parents.items():
                if ppid in tree and pid not in tree:
                    tree.add(pid)
                    changed = True
        for pid in tree:
            self.largest_kb = max(self.largest_kb, _hwm_kb(str(pid)))
        return sum(_pss_kb(str(pid)) for pid in tree)


def _pss_kb(pid: str) -> int:
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    found = re.search(r"^Pss:\s+(\d+)", rollup, re.M)
    return int(found.group(1)) if found else 0


def _hwm_kb(pid: str) -> int:
    # VmHWM rather than wait4's ru_maxrss: the latter survives exec, so a child can report the
    # peak of the process that forked it
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(r"^VmHWM:\s+(\d+)", status, re.M)
    return int(found.group(1)) if found else 0


def measure(tool: str, command: list[str], env: dict[str, str] | None = None) -> tuple[Run, str]:
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    with TreeRss(process.pid) as sampler:
        output_chunks: list[bytes] = []
        reader = threading.Thread(
            target=lambda: output_chunks.append(process.stdout.read()),  # type: ignore[union-attr]
            daemon=True,
        )
        reader.start()
        _, status, usage = os.wait4(process.pid, 0)
        reader.join()
    seconds = time.perf_counter() - started
    # RUSAGE_CHILDREN also holds the CPU time of the child's own (waited-for) worker processes
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    error = process.stderr.read().decode(errors="replace") if process.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"{tool} failed (exit {code}): {error.strip()[:500]}")
    run = Run(
        tool,
        seconds,
        cpu,
        sampler.largest_kb or usage.ru_maxrss,
        sampler.peak_kb,
        {},
    )
    return run, b"".join(output_chunks).decode(errors="replace")


def units(value: int) -> str:
    """pflogsumm's adj_int_units: k above 512 kB, m above 512 MB."""
    if value > 536_870_912:
        return f"{value // 1_048_576}m"
    if value > 524_288:
        return f"{value // 1024}k"
    return str(value)


def pflogsumm_totals(report: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in report.splitlines():
        match = re.match(r"^\s+(\d+)([km ]?)\s+(.+?)(?:\s+\(.*)?$", line)
        if match and match.group(3).strip() in PFLOGSUMM_TOTALS:
            key = PFLOGSUMM_TOTALS[match.group(3).strip()]
            found.setdefault(key, match.group(1) + match.group(2).strip())
        deferrals = re.search(r"deferred\s+\((\d+)\s+deferrals\)", line)
        if deferrals:
            found.setdefault("deferrals", deferrals.group(1))
        connections = re.match(r"^\s+(\d+)\s+connections$", line)
        if connections:
            found.setdefault("smtpd connections", connections.group(1))
    return found


def relaywatch_totals(document: str) -> dict[str, str]:
    data = json.loads(document)
    totals = data["totals"]
    shown = {key: units(int(value)) for key, value in totals.items()}
    shown["smtpd connections"] = str(data["smtpd"]["connections"])
    return shown


def bench_size(lines: int, workdir: Path, repeat: int) -> list[Run]:
    log = workdir / f"mail-{lines}.log"
    if not log.exists():
        print(f"generating {lines:,} lines → {log}", file=sys.stderr)
        generate(SOURCE, lines, log)
    config = workdir / "relaywatch.toml"
    config.write_text(
        f'[store]\npath = "{workdir / "bench.db"}"\n'
        '[logsummary]\ninternal_networks = ["127.0.0.0/24"]\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAYWATCH_")}
    env["PYTHONPATH"] = str(REPO)
    pflogsumm = ["pflogsumm", "--smtpd-stats", str(log)]
    relaywatch = [
        sys.executable,
        "-m",
        "bot.cli",
        "--config",
        str(config),
        "mailsummary",
        str(log),
        "--json",
    ]
    best: dict[str, Run] = {}
    for _ in range(repeat):
        # alternate the tools so background load hits both alike
        for tool, command in (("pflogsumm", pflogsumm), ("relaywatch", relaywatch)):
            run, output = measure(tool, command, env)
            run.totals = (
                pflogsumm_totals(output) if tool == "pflogsumm" else relaywatch_totals(output)
            )
            if tool not in best or run.seconds < best[tool].seconds:
                best[tool] = run
    return [best["pflogsumm"], best["relaywatch"]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, action="append", help="log size (repeatable)")
    parser.add_argument("--dir", type=Path, help="where the logs go (default: a temporary dir)")
    parser.add_argument("--keep", action="store_true", help="keep the generated logs")
    parser.add_argument("--repeat", type=int, default=1, help="runs per tool; the best counts")
    args = parser.parse_args(argv)
    if shutil.which("pflogsumm") is None:
        print("pflogsumm is not installed: apt-get install pflogsumm libdate-calc-perl")
        return 2
    sizes = args.lines or [1_000_000, 4_000_000]
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="rw-logbench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results: list[tuple[int, list[Run]]] = []
    try:
        for size in sizes:
            results.append((size, bench_size(size, workdir, args.repeat)))
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"machine: {os.cpu_count()} CPUs; best of {args.repeat} run(s) per tool\n")
    print(
        f"{'lines':>10}  {'tool':<11} {'wall s':>7} {'cpu s':>7} {'lines/s':>10} "
        f"{'peak RSS MB':>12} {'tree PSS MB':>12}"
    )
    for size, runs in results:
        for run in runs:
            print(
                f"{size:>10,}  {run.tool:<11} {run.seconds:>7.2f} {run.cpu_seconds:>7.2f} "
                f"{size / run.seconds:>10,.0f} {run.max_rss_kb / 1024:>12.1f} "
                f"{run.tree_rss_kb / 1024:>12.1f}"
            )
        ratio = runs[0].seconds / runs[1].seconds
        print(f"{'':>10}  relaywatch is {ratio:.2f}x pflogsumm's lines/s")
    keys = [*PFLOGSUMM_TOTALS.values(), "deferrals", "smtpd connections"]
    for size, runs in results:
        print(f"\ngrand totals, {size:,} lines")
        print(f"  {'total':<24} {'pflogsumm':>12} {'relaywatch':>12}")
        for key in keys:
            left, right = runs[0].totals.get(key, "?"), runs[1].totals.get(key, "?")
            mark = "" if left == right else "   <-- differs"
            print(f"  {key:<24} {left:>12} {right:>12}{mark}")
    if len(results) >= 2:
        first, last = results[0][1][1], results[-1][1][1]
        change = (last.tree_rss_kb - first.tree_rss_kb) / first.tree_rss_kb
        print(
            f"\nrelaywatch tree PSS {results[0][0]:,} → {results[-1][0]:,} lines: "
            f"{first.tree_rss_kb / 1024:.1f} → {last.tree_rss_kb / 1024:.1f} MB ({change:+.1%})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
