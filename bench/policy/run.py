"""Policy-service benchmark: relaywatch vs postfwd vs policyd-rate-limit, in the same run.

Every server gets the same Postfix-shaped workload over persistent connections (one outstanding
request per connection, as each smtpd process asks) at 1, 20 and 100 connections, driven by several
generator processes so the generator is not the bottleneck. Each message is an RCPT request then a
DATA request (recipient_count=1) on one connection. The rule set, as close as each tool allows:

- a per-account rate limit at DATA (LIMIT messages/hour): relaywatch a throttle entry for the
  abusive account; postfwd rate(sasl_username/...) at DATA; policyd-rate-limit its limits list;
- one blocked account and one blocked CIDR (192.0.2.0/24): relaywatch block entries; postfwd
  REJECT rules; policyd-rate-limit can only give the account a zero limit (a DEFER, not a REJECT)
  and has no CIDR rule at all, which the correctness table shows.

Reported per server and connection count: requests/s, p50/p99 latency, every decision checked
(normal mail never refused, the abusive account's accepted messages equal to the limit, blocked
account and CIDR rejected at RCPT), then peak RSS of the server's processes as distinct accounts
and hosts grow to --subjects (default 100,000).

    python bench/policy/run.py                       # everything found installed
    python bench/policy/run.py --servers relaywatch --messages 5000

Peers (bench only, not CI): apt-get install postfwd; python3 -m venv /opt/bench-policyd &&
/opt/bench-policyd/bin/pip install policyd-rate-limit. See bench/policy/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 100
ABUSER = "abuser@bench.test"
BLOCKED = "blocked@bench.test"
BLOCKED_CIDR = "192.0.2.0/24"
POLICYD = os.environ.get("POLICYD_RATE_LIMIT", "/opt/bench-policyd/bin/policyd-rate-limit")

# -- workload ---------------------------------------------------------------------------------


def request(state: str, account: str, client: str, instance: str, rcpt_count: int) -> bytes:
    """A request with every attribute Postfix 3.7 sends, so parsing costs what it costs live."""
    fields = [
        ("request", "smtpd_access_policy"),
        ("protocol_state", state),
        ("protocol_name", "ESMTP"),
        ("client_address", client),
        ("client_name", "unknown"),
        ("client_port", "52344"),
        ("reverse_client_name", "unknown"),
        ("server_address", "127.0.0.1"),
        ("server_port", "587"),
        ("helo_name", "client.example"),
        ("sender", account or "newsletter@example.org"),
        ("recipient", "someone@example.net" if state == "RCPT" else ""),
        ("recipient_count", str(rcpt_count)),
        ("queue_id", ""),
        ("instance", instance),
        ("size", "0"),
        ("etrn_domain", ""),
        ("stress", ""),
        ("sasl_method", "PLAIN" if account else ""),
        ("sasl_username", account),
        ("sasl_sender", ""),
        ("ccert_subject", ""),
        ("ccert_issuer", ""),
        ("ccert_fingerprint", ""),
        ("ccert_pubkey_fingerprint", ""),
        ("encryption_protocol", "TLSv1.3"),
        ("encryption_cipher", "TLS_AES_256_GCM_SHA384"),
        ("encryption_keysize", "256"),
        ("policy_context", "bench"),
        ("server_hostname", "mx.bench.test"),
    ]
    return ("".join(f"{k}={v}\n" for k, v in fields) + "\n").encode()


@dataclass
class Message:
    category: str  # normal | abuser | blocked_account | blocked_cidr
    rcpt: bytes
    data: bytes


def workload(
    messages: int, seed: int = 7, accounts: int = 20000, prefix: str = ""
) -> list[Message]:
    rng = random.Random(seed)
    out: list[Message] = []
    abusive = max(messages // 20, LIMIT * 3)
    blocked = max(messages // 50, 50)
    for i in range(messages):
        roll = i % 100
        instance = f"{prefix}{i:x}.{seed}"
        if roll < 5 and abusive:
            abusive -= 1
            category, account, client = "abuser", ABUSER, f"203.0.113.{rng.randrange(1, 250)}"
        elif roll < 7 and blocked:
            blocked -= 1
            category, account, client = "blocked_account", BLOCKED, "198.51.100.20"
        elif roll < 9:
            category, account, client = "blocked_cidr", "", f"192.0.2.{rng.randrange(1, 250)}"
        else:
            n = rng.randrange(accounts)
            category = "normal"
            account = f"{prefix}user{n}@bench.test"
            client = f"10.{(n >> 8) & 255}.{n & 255}.{n % 250 + 1}"  # one per account
        out.append(
            Message(
                category,
                request("RCPT", account, client, instance, 0),
                request("DATA", account, client, instance, 1),
            )
        )
    return out


def distinct_subjects(count: int, prefix: str) -> list[Message]:
    """Every message from a new account on a new client address (normal mail)."""
    out = []
    for i in range(count):
        account = f"{prefix}{i}@grow.test"
        client = f"100.{64 + (i >> 16) % 64}.{(i >> 8) & 255}.{i & 255}"
        instance = f"{prefix}{i:x}"
        out.append(
            Message(
                "normal",
                request("RCPT", account, client, instance, 0),
                request("DATA", account, client, instance, 1),
            )
        )
    return out


# -- the load generator (runs in worker processes) ---------------------------------------------


class Client(asyncio.Protocol):
    """One persistent connection: send a request, wait for its answer, send the next."""

    def __init__(self, messages: list[Message], done: asyncio.Future, results: dict) -> None:
        self.queue = [
            (m.category, state, raw)
            for m in messages
            for state, raw in (("RCPT", m.rcpt), ("DATA", m.data))
        ]
        self.position = 0
        self.done = done
        self.results = results
        self.buffer = b""
        self.sent_at = 0
        self.transport: asyncio.Transport | None = None
        self.skip_data = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        self._send()

    def _send(self) -> None:
        while self.position < len(self.queue):
            _category, state, raw = self.queue[self.position]
            if state == "DATA" and self.skip_data:
                # Postfix never reaches DATA when the only RCPT was refused
                self.skip_data = False
                self.position += 1
                continue
            self.sent_at = time.perf_counter_ns()
            self.transport.write(raw)
            return
        self.transport.close()
        if not self.done.done():
            self.done.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\n\n")) >= 0:
            answer, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
            now = time.perf_counter_ns()
            self.results["latency"].append(now - self.sent_at)
            category, state, _ = self.queue[self.position]
            verdict = answer.split(b"=", 1)[-1].split(b" ", 1)[0].decode().upper()
            self.results["verdicts"][f"{category}|{state}|{verdict}"] += 1
            self.position += 1
            self.skip_data = state == "RCPT" and verdict not in ("DUNNO", "OK", "HOLD")
            self._send()

    def connection_lost(self, exc) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"server closed the connection ({exc})"))


def generator(port: int, batches: list[list[Message]], start_at: float, out) -> None:
    async def main() -> dict:
        results = {"latency": [], "verdicts": Counter()}
        loop = asyncio.get_running_loop()
        delay = start_at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        futures = []
        for batch in batches:
            done = loop.create_future()
            await loop.create_connection(
                lambda b=batch, d=done: Client(b, d, results), "127.0.0.1", port
            )
            futures.append(done)
        await asyncio.gather(*futures)
        return results

    started = time.perf_counter()
    try:
        try:
            import uvloop  # bench only: the generator's own overhead, kept small

            results = uvloop.run(main())
        except ImportError:
            results = asyncio.run(main())
        out.send(
            {
                "latency": results["latency"],
                "verdicts": dict(results["verdicts"]),
                "elapsed": time.perf_counter() - started,
                "error": "",
            }
        )
    except Exception as exc:  # reported, not hidden
        out.send({"latency": [], "verdicts": {}, "elapsed": 0.0, "error": repr(exc)})


def drive(port: int, messages: list[Message], connections: int, processes: int) -> dict:
    """Spreads messages over connections and connections over processes; merged results."""
    per_connection: list[list[Message]] = [[] for _ in range(connections)]
    for i, message in enumerate(messages):
        per_connection[i % connections].append(message)
    processes = max(1, min(processes, connections))
    groups = [per_connection[i::processes] for i in range(processes)]
    start_at = time.time() + 0.5
    context = multiprocessing.get_context("fork")
    pipes, workers = [], []
    for group in groups:
        parent, child = context.Pipe(duplex=False)
        worker = context.Process(target=generator, args=(port, group, start_at, child))
        worker.start()
        pipes.append(parent)
        workers.append(worker)
    began = time.perf_counter()
    parts = [pipe.recv() for pipe in pipes]
    wall = time.perf_counter() - began - max(0.0, start_at - time.time())
    for worker in workers:
        worker.join()
    latency = sorted(x for part in parts for x in part["latency"])
    verdicts: Counter = Counter()
    for part in parts:
        verdicts.update(part["verdicts"])
    errors = [part["error"] for part in parts if part["error"]]
    elapsed = max(part["elapsed"] for part in parts) - 0.5
    seconds = max(min(elapsed, wall) if wall > 0 else elapsed, 1e-9)
    return {
        "requests": len(latency),
        "seconds": seconds,
        "rps": len(latency) / seconds,
        "p50_ms": latency[len(latency) // 2] / 1e6 if latency else None,
        "p99_ms": latency[int(len(latency) * 0.99)] / 1e6 if latency else None,
        "verdicts": dict(verdicts),
        "errors": errors,
    }


# -- correctness -------------------------------------------------------------------------------


def judge(verdicts: dict[str, int]) -> dict:
    def count(category: str, state: str | None = None, verdict: str | None = None) -> int:
        total = 0
        for key, n in verdicts.items():
            c, s, v = key.split("|")
            if (
                c == category
                and (state is None or s == state)
                and (verdict is None or v == verdict)
            ):
                total += n
        return total

    normal_refused = count("normal") - count("normal", verdict="DUNNO")
    abuser_accepted = count("abuser", "DATA", "DUNNO")
    blocked_rcpt = count("blocked_account", "RCPT")
    cidr_rcpt = count("blocked_cidr", "RCPT")
    checks = {
        "normal_refused": normal_refused,
        "abuser_messages_accepted": abuser_accepted,
        "blocked_account_rejected": f"{count('blocked_account', 'RCPT', 'REJECT')}/{blocked_rcpt}",
        "blocked_cidr_rejected": f"{count('blocked_cidr', 'RCPT', 'REJECT')}/{cidr_rcpt}",
    }
    checks["all_right"] = (
        normal_refused == 0
        and abuser_accepted == LIMIT
        and count("blocked_account", "RCPT", "REJECT") == blocked_rcpt
        and count("blocked_cidr", "RCPT", "REJECT") == cidr_rcpt
    )
    return checks


# -- servers -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def tree_pids(root: int) -> list[int]:
    pids = [root]
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid in pids and int(pid) not in pids:
            pids.append(int(pid))
    return pids


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


@dataclass
class Running:
    name: str
    port: int
    process: subprocess.Popen | None
    workdir: Path
    root_pid: int = 0
    stop_command: list[str] = field(default_factory=list)

    def pids(self) -> list[int]:
        return tree_pids(self.root_pid) if self.root_pid else []

    def stop(self) -> None:
        if self.stop_command:
            subprocess.run(self.stop_command, capture_output=True, timeout=30, check=False)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and Path(f"/proc/{self.root_pid}").exists():
                time.sleep(0.1)
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_relaywatch(workdir: Path) -> Running:
    sys.path.insert(0, str(ROOT))
    from bot.store import Store

    port = free_port()
    store_path = workdir / "relaywatch.db"
    config = workdir / "config.toml"
    config.write_text(f'[store]\npath = "{store_path}"\n\n[policy]\nlisten = "127.0.0.1:{port}"\n')
    expires = datetime.now(UTC) + timedelta(hours=2)
    with Store(store_path) as store:
        store.add_containment("account", ABUSER, "throttle", expires, limit_per_hour=LIMIT)
        store.add_containment("account", BLOCKED, "block", expires)
        store.add_containment("host", BLOCKED_CIDR, "block", expires)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot.cli",
            "--config",
            str(config),
            "-q",
            "policy",
            "serve",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_port(port)
    return Running("relaywatch", port, process, workdir, process.pid)


POSTFWD_RULES = f"""\
id=BLOCK_ACCOUNT; sasl_username=={BLOCKED}; action=REJECT 5.7.1 blocked account
id=BLOCK_CIDR; client_address=={BLOCKED_CIDR}; action=REJECT 5.7.1 blocked network
id=RATE; protocol_state==DATA; sasl_username=.;\
    action=rate(sasl_username/{LIMIT}/3600/DEFER 4.7.1 rate exceeded)
"""


def start_postfwd(workdir: Path) -> Running:
    binary = shutil.which("postfwd") or shutil.which("postfwd2")
    if not binary:
        raise RuntimeError("postfwd is not installed (apt-get install postfwd)")
    port = free_port()
    rules = workdir / "postfwd.cf"
    rules.write_text(POSTFWD_RULES)
    pidfile = workdir / "postfwd.pid"
    workdir.chmod(0o777)
    # Debian's defaults but no DNS and no logging (its best case), daemonised as it ships
    subprocess.run(
        [
            binary,
            "-f",
            str(rules),
            "-i",
            "127.0.0.1",
            "-p",
            str(port),
            "--nodns",
            "--perfmon",
            "-u",
            "nobody",
            "-g",
            "nogroup",
            "--pidfile",
            str(pidfile),
        ],
        capture_output=True,
        timeout=30,
        check=True,
    )
    wait_port(port)
    deadline = time.monotonic() + 10
    while not pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    root = int(pidfile.read_text().split()[0])
    return Running(
        "postfwd", port, None, workdir, root, [binary, "--kill", "--pidfile", str(pidfile)]
    )


def start_policyd(workdir: Path) -> Running:
    if not Path(POLICYD).exists():
        raise RuntimeError(
            f"policyd-rate-limit not found at {POLICYD} (see bench/policy/README.md)"
        )
    port = free_port()
    workdir.chmod(0o777)
    config = workdir / "policyd.yaml"
    config.write_text(
        json.dumps(
            {
                "debug": False,
                "user": "nobody",
                "group": "nogroup",
                "pidfile": str(workdir / "policyd.pid"),
                "backend": 0,
                "sqlite_config": {"database": str(workdir / "policyd.sqlite3")},
                "SOCKET": ["127.0.0.1", port],
                "limits": [[LIMIT, 3600]],
                "limits_by_id": {BLOCKED: [[0, 3600]]},
                "sql_limits_by_id": "",
                "limit_by_sasl": True,
                "limit_by_sender": False,
                "limit_by_ip": False,
                "limited_networks": [],
                "success_action": "dunno",
                "fail_action": "defer 4.7.1 Rate limit reach, retry later",
                "db_error_action": "dunno",
                "report": False,
                "delay_to_close": 300,
                "count_mode": 1,
            }
        )
    )
    process = subprocess.Popen(
        [POLICYD, "--file", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_port(port)
    return Running("policyd-rate-limit", port, process, workdir, process.pid)


STARTERS = {
    "relaywatch": start_relaywatch,
    "postfwd": start_postfwd,
    "policyd-rate-limit": start_policyd,
}


# -- the run -----------------------------------------------------------------------------------


def bench_server(name: str, args: argparse.Namespace) -> dict:
    report: dict = {"server": name, "levels": [], "memory": []}
    for connections in args.connections:
        workdir = Path(tempfile.mkdtemp(prefix=f"rw-bench-policy-{name}-"))
        running = STARTERS[name](workdir)
        try:
            messages = workload(args.messages, seed=connections)
            result = drive(running.port, messages, connections, args.processes)
            result["connections"] = connections
            result["correctness"] = judge(result["verdicts"])
            result["rss_mb"] = round(rss_mb(running.pids()), 1)
            if result["errors"] or not result["requests"]:
                raise RuntimeError(f"{name} at {connections} connections: {result['errors']}")
            report["levels"].append(result)
            print(
                f"  {name:<19} {connections:>3} conn  {result['rps']:>8.0f} req/s  "
                f"p50 {result['p50_ms']:.2f} ms  p99 {result['p99_ms']:.2f} ms  "
                f"right: {result['correctness']['all_right']}  {result['errors'] or ''}",
                flush=True,
            )
        finally:
            running.stop()
            shutil.rmtree(workdir, ignore_errors=True)
    if args.subjects:
        workdir = Path(tempfile.mkdtemp(prefix=f"rw-bench-policy-{name}-mem-"))
        running = STARTERS[name](workdir)
        try:
            time.sleep(0.5)
            report["memory"].append({"subjects": 0, "rss_mb": round(rss_mb(running.pids()), 1)})
            sent = 0
            for target in sorted(
                {args.subjects // 10, args.subjects // 4, args.subjects // 2, args.subjects}
            ):
                batch = distinct_subjects(target - sent, prefix=f"s{sent}-")
                result = drive(running.port, batch, 20, args.processes)
                sent = target
                time.sleep(0.3)
                report["memory"].append(
                    {
                        "subjects": sent,
                        "rss_mb": round(rss_mb(running.pids()), 1),
                        "rps": round(result["rps"]),
                        "errors": result["errors"],
                    }
                )
            print(
                f"  {name:<19} RSS by distinct subjects: "
                + ", ".join(f"{m['subjects']}: {m['rss_mb']} MB" for m in report["memory"]),
                flush=True,
            )
        finally:
            running.stop()
            shutil.rmtree(workdir, ignore_errors=True)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", nargs="+", default=list(STARTERS), choices=list(STARTERS))
    parser.add_argument("--connections", nargs="+", type=int, default=[1, 20, 100])
    parser.add_argument(
        "--messages", type=int, default=20000, help="messages per level (two requests each)"
    )
    parser.add_argument("--processes", type=int, default=2, help="load generator processes")
    parser.add_argument(
        "--subjects",
        type=int,
        default=100000,
        help="distinct accounts and hosts for the memory phase (0: skip)",
    )
    parser.add_argument("--json", metavar="FILE", help="write the full report here")
    args = parser.parse_args()
    print(
        f"policy bench: {args.messages} messages per level, limit {LIMIT}/h, "
        f"{os.cpu_count()} CPUs, generators: {args.processes} processes",
        flush=True,
    )
    reports = []
    for name in args.servers:
        try:
            reports.append(bench_server(name, args))
        except RuntimeError as exc:
            print(f"  {name}: skipped ({exc})", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(reports, indent=2))
    print("\nsummary (requests/s at each connection count):")
    for report in reports:
        row = ", ".join(f"{lv['connections']}: {lv['rps']:.0f}" for lv in report["levels"])
        print(f"  {report['server']:<19} {row}")
    by_name = {r["server"]: r for r in reports}
    if "relaywatch" in by_name and "postfwd" in by_name:
        for ours, theirs in zip(
            by_name["relaywatch"]["levels"], by_name["postfwd"]["levels"], strict=False
        ):
            print(
                f"  relaywatch / postfwd at {ours['connections']} connections: "
                f"{ours['rps'] / theirs['rps']:.1f}x"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
