"""Benchmark: `relaywatch queue` summarising large Postfix queues (10,000 to 300,000 messages).

The queue listing is what `postqueue -j` prints (one JSON object per message), generated into a
temporary directory and served by a stand-in `postqueue` on PATH that prints the file, so the
real engine runs end to end: the subprocess stream, parsing, the summary, and the join of every
queue ID with its `client=`/`sasl_username=` log line (a generated mail log with one such line per
message). Each size runs in a fresh process; its wall time and peak RSS (VmHWM) are reported.

    .venv/bin/python bench/queue/run.py [--sizes 10000 100000 300000]

No peer runs beside it: Postfix's qshape(1) reads the queue directory itself, and building a
real queue of 100,000 messages takes far longer than summarising it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import json, sys, time
from handlers.queue import QueueOptions, read_queue_sync
started = time.perf_counter()
summary = read_queue_sync(QueueOptions(log_paths=(sys.argv[1],), timeout=600))
elapsed = time.perf_counter() - started
peak = 0
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        peak = int(line.split()[1]) / 1024
print(json.dumps({"messages": summary.messages, "origins": summary.origins_known,
                  "seconds": elapsed, "peak_mb": peak,
                  "top_sender": summary.top_senders[0].key if summary.top_senders else ""}))
"""


def generate(directory: Path, count: int) -> tuple[Path, Path]:
    rng = random.Random(count)
    listing, log = directory / "queue.jsonl", directory / "mail.log"
    with listing.open("w") as queue, log.open("w") as mail:
        for n in range(count):
            queue_id = f"{n:010X}"
            spam = n % 3 == 0
            sender = "mallory@lab.test" if spam else f"user{rng.randrange(5000)}@lab.test"
            queue.write(
                json.dumps(
                    {
                        "queue_name": "deferred" if n % 10 else "active",
                        "queue_id": queue_id,
                        "arrival_time": 1764360000 - rng.randrange(86400 * 3),
                        "message_size": rng.randrange(800, 40000),
                        "sender": sender,
                        "recipients": [
                            {
                                "address": f"r{n}@dest{rng.randrange(300)}.example",
                                "delay_reason": "connect to mx.dest.example[192.0.2.1]:25: "
                                "Connection timed out",
                            }
                            for _ in range(rng.randrange(1, 4))
                        ],
                    }
                )
                + "\n"
            )
            user = ", sasl_method=PLAIN, sasl_username=mallory" if spam else ""
            mail.write(
                f"Nov 28 21:30:52 mx postfix/submission/smtpd[774]: {queue_id}: "
                f"client=unknown[198.51.100.{n % 250}]{user}\n"
            )
    return listing, log


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 300_000])
    args = parser.parse_args()
    print(f"{'messages':>9} {'seconds':>8} {'msgs/s':>9} {'peak RSS':>9}  tied to log")
    for size in args.sizes:
        with tempfile.TemporaryDirectory(prefix="rw-queue-bench-") as tmp:
            directory = Path(tmp)
            listing, log = generate(directory, size)
            shim = directory / "bin"
            shim.mkdir()
            (shim / "postqueue").write_text(f"#!/bin/sh\nexec cat {listing}\n")
            (shim / "postqueue").chmod(0o755)
            env = {**os.environ, "PATH": f"{shim}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-c", CHILD, str(log)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            result = json.loads(done.stdout)
            assert result["messages"] == size and result["top_sender"] == "mallory@lab.test"
            print(
                f"{size:>9,} {result['seconds']:>8.2f} {size / result['seconds']:>9,.0f} "
                f"{result['peak_mb']:>7.1f} MB  {result['origins']:,} "
                f"(process {time.perf_counter() - started:.2f} s)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
