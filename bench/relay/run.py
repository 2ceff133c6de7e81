"""Benchmark: relaywatch's relay battery vs nmap's smtp-open-relay on the same local servers.

Runs, in one go: a single open and a single closed server, then 20 servers at once (10 open,
10 closed), each with relaywatch (engine in-process, and the CLI as a process) and with nmap when it
is installed. Prints per-target times side by side. Needs root (the servers listen on port 25,
because nmap's script only runs on SMTP ports without slow version detection).

    sudo /path/to/venv/bin/python bench/relay/run.py [--repeat 5] [--postfix]

--postfix also measures both tools against a private Debian Postfix (closed and open listeners on
127.0.2.1:25 / 127.0.2.2:25), which, unlike aiosmtpd, slows down after 10 errors per session.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from handlers.relay import (  # noqa: E402
    BATTERY,
    DnspythonLookup,
    ProbeOptions,
    ResolvedTarget,
    check_targets,
    parse_target,
)
from tests.fixtures.relay_dns import dns_server  # noqa: E402

NMAP_TESTS = 16  # smtp-open-relay's fixed list


async def relaywatch_engine(targets: list[str], nameserver: str) -> tuple[float, list[str]]:
    lookup = DnspythonLookup([nameserver], timeout=2.0)
    resolved = [ResolvedTarget(parse_target(t), parse_target(t).host) for t in targets]
    started = time.perf_counter()
    report = await check_targets(resolved, ProbeOptions(), lookup, concurrency=len(targets))
    elapsed = time.perf_counter() - started
    return elapsed, [str(t.verdict) for t in report.targets]


def relaywatch_cli(targets: list[str], nameserver: str, tmp: Path) -> tuple[float, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAYWATCH_")}
    env.update(
        RELAYWATCH_STORE_PATH=str(tmp / "bench.db"),
        RELAYWATCH_RELAY_NAMESERVERS=nameserver,
        RELAYWATCH_RELAY_CONCURRENCY=str(max(1, len(targets))),
    )
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "relaycheck", "--json", *targets],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return time.perf_counter() - started, done.returncode


def nmap(targets: list[str]) -> tuple[float, list[str]]:
    hosts = [t.rsplit(":", 1)[0] for t in targets]
    port = targets[0].rsplit(":", 1)[1]
    command = [
        "nmap", "-Pn", "-n", "-sT", "-p", port, "--script", "smtp-open-relay",
        "--script-args", "smtp-open-relay.domain=example.net", *hosts,
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    findings = []
    for host in hosts:
        section = done.stdout.split(f"Nmap scan report for {host}\n", 1)[-1].split("Nmap scan")[0]
        match = re.search(r"smtp-open-relay: (.*)", section)
        findings.append(match.group(1).strip() if match else "(no result)")
    return elapsed, findings


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


async def measure(label: str, targets: list[str], repeat: int, nameserver: str, tmp: Path):
    engine_times, cli_times, nmap_times = [], [], []
    verdicts: list[str] = []
    nmap_findings: list[str] = []
    for _ in range(repeat):
        elapsed, verdicts = await relaywatch_engine(targets, nameserver)
        engine_times.append(elapsed)
        cli_elapsed, _ = await asyncio.to_thread(relaywatch_cli, targets, nameserver, tmp)
        cli_times.append(cli_elapsed)
        if shutil.which("nmap"):
            nmap_elapsed, nmap_findings = await asyncio.to_thread(nmap, targets)
            nmap_times.append(nmap_elapsed)
    return {
        "label": label,
        "targets": len(targets),
        "engine": median(engine_times),
        "cli": median(cli_times),
        "nmap": median(nmap_times) if nmap_times else None,
        "verdicts": sorted(set(verdicts)),
        "nmap_findings": sorted(set(nmap_findings)),
    }


def print_table(rows: list[dict], repeat: int) -> None:
    print(
        f"\nrelaywatch: {len(BATTERY)} tests per target · nmap smtp-open-relay: "
        f"{NMAP_TESTS} tests per target · median of {repeat} runs\n"
    )
    header = (
        f"{'scenario':<34} {'n':>3}  {'relaywatch engine':>18} {'relaywatch CLI':>15} "
        f"{'nmap':>10}   {'per target: rw CLI / nmap':>26}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        nmap_text = f"{row['nmap']:.3f} s" if row["nmap"] is not None else "n/a"
        per = (
            f"{row['cli'] / row['targets']:.3f} / {row['nmap'] / row['targets']:.3f} s"
            if row["nmap"] is not None
            else f"{row['cli'] / row['targets']:.3f} / n/a"
        )
        print(
            f"{row['label']:<34} {row['targets']:>3}  {row['engine']:>16.3f} s "
            f"{row['cli']:>13.3f} s {nmap_text:>10}   {per:>26}"
        )
    print("\nverdicts (relaywatch | nmap):")
    for row in rows:
        print(
            f"  {row['label']:<34} {', '.join(row['verdicts'])} | {'; '.join(row['nmap_findings'])}"
        )


POSTFIX_LISTEN = {
    "closed": "127.0.2.1:25",
    "open": "127.0.2.2:25",
    "deferring": "127.0.2.3:25",
    "submission": "127.0.2.4:25",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--postfix", action="store_true", help="also bench a real Postfix")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/relay needs root: its servers listen on port 25 (see the docstring)")
        return 2
    if not shutil.which("nmap"):
        print("nmap is not installed: relaywatch only (apt-get install -y nmap to compare)")
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"relaywatch-bench-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    # the servers get their own process so they do not share a CPU core with relaywatch
    servers = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("servers.py"))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert servers.stdout is not None and servers.stdin is not None
    started = json.loads(servers.stdout.readline())
    try:
        rows = asyncio.run(run_all(started, args.repeat, tmp, args.postfix))
    finally:
        servers.stdin.close()
        servers.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
    print_table(rows, args.repeat)
    return 0


async def run_all(started: dict, repeat: int, tmp: Path, with_postfix: bool) -> list[dict]:
    scenarios = [
        ("open relay (aiosmtpd)", started["open"][:1]),
        ("closed (aiosmtpd)", started["closed"][:1]),
        ("20 at once (10 open/closed)", started["open"][1:11] + started["closed"][1:11]),
    ]
    rows = []
    async with dns_server({}) as (nameserver, _):
        for label, targets in scenarios:
            rows.append(await measure(label, targets, repeat, nameserver, tmp))
        if with_postfix:
            for listener in ("closed", "open"):
                rows.append(await measure_postfix(listener, repeat, nameserver, tmp))
    return rows


async def measure_postfix(listener: str, repeat: int, nameserver: str, tmp: Path) -> dict:
    """Each measurement on a fresh Postfix: in our runs an instance that has accepted ~100
    RCPTs starts answering every accepted RCPT after 1 s, which would punish whichever tool
    happens to run later."""
    from tests.integration.postfix.postfix_instance import remove, start_postfix

    target = [POSTFIX_LISTEN[listener]]
    engine, cli, nmap_times = [], [], []
    verdicts: list[str] = []
    findings: list[str] = []
    for _ in range(repeat):
        for tool in ("engine", "cli", "nmap"):
            if tool == "nmap" and not shutil.which("nmap"):
                continue
            instance = await asyncio.to_thread(start_postfix, POSTFIX_LISTEN)
            try:
                if tool == "engine":
                    elapsed, verdicts = await relaywatch_engine(target, nameserver)
                    engine.append(elapsed)
                elif tool == "cli":
                    cli.append(
                        (await asyncio.to_thread(relaywatch_cli, target, nameserver, tmp))[0]
                    )
                else:
                    elapsed, findings = await asyncio.to_thread(nmap, target)
                    nmap_times.append(elapsed)
            finally:
                await asyncio.to_thread(remove, instance)
    return {
        "label": f"Postfix {listener} (fresh each run)",
        "targets": 1,
        "engine": median(engine),
        "cli": median(cli),
        "nmap": median(nmap_times) if nmap_times else None,
        "verdicts": sorted(set(verdicts)),
        "nmap_findings": sorted(set(findings)),
    }


if __name__ == "__main__":
    sys.exit(main())
