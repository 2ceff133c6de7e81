"""`relaywatch mailsummary` on hostile files, through the real CLI in a child process: a gzip
bomb keeps memory flat and stops at logs.max_decompressed_mb; FIFOs and devices are refused with
one line instead of hanging; a truncated rotation is a warning, not a traceback."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

from bot.exitcodes import ExitCode

ROOT = Path(__file__).parents[2]
LINE = (
    "Nov 28 10:00:01 mx postfix/qmgr[400]: 4AB12C{n:04X}: from=<a@example.org>, size=1, "
    "nrcpt=1 (queue active)"
)

# Runs the CLI as a child and reports the child's peak resident size (kB): RUSAGE_CHILDREN of a
# fresh wrapper covers exactly that one child (and any reader processes it waited for).
PEAK = (
    "import resource, subprocess, sys;"
    "code = subprocess.run(sys.argv[1:]).returncode;"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code, file=sys.stderr)"
)


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAYWATCH_", "SLACK_"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "cfg"), XDG_STATE_HOME=str(home / "st"))
    return env


def relaywatch(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "--store", str(home / "rw.db"), *args],
        cwd=ROOT,
        env=env_for(home),
        capture_output=True,
        text=True,
        timeout=120,
    )


def peak_kb(home: Path, *args: str) -> tuple[int, int, str]:
    result = subprocess.run(
        [sys.executable, "-c", PEAK, sys.executable, "-m", "bot.cli", *args],
        cwd=ROOT,
        env=env_for(home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    peak, code = result.stderr.strip().splitlines()[-1].split()
    return int(peak), int(code), result.stderr


def write_bomb(path: Path, megabytes: int) -> None:
    """A few real lines, then `megabytes` MB of NULs without a newline: a few hundred kB on disk."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)  # 31: gzip framing
    with open(path, "wb") as out:
        out.write(compressor.compress("".join(LINE.format(n=n) + "\n" for n in range(3)).encode()))
        block = b"\0" * (1 << 20)
        for _ in range(megabytes):
            out.write(compressor.compress(block))
        out.write(compressor.flush())


def test_a_gzip_bomb_keeps_memory_flat_and_stops_at_the_cap(tmp_path: Path) -> None:
    bomb = tmp_path / "mail.log.2.gz"
    write_bomb(bomb, 192)
    small = tmp_path / "mail.log"
    small.write_text(LINE.format(n=1) + "\n")
    config = tmp_path / "config.toml"
    config.write_text("[logs]\nmax_decompressed_mb = 96\n")
    common = ("--config", str(config), "--store", str(tmp_path / "rw.db"), "mailsummary")
    baseline, code, err = peak_kb(tmp_path, *common, str(small))
    assert code in (ExitCode.OK, ExitCode.PROBLEM, ExitCode.INCOMPLETE), err
    peak, code, err = peak_kb(tmp_path, *common, str(bomb), "--json")
    assert "Traceback" not in err
    # The bomb inflates to 192 MB; reading it unbounded took about twice that. Bounded, the
    # reader holds a block and one line at most.
    assert peak - baseline < 48 * 1024, (baseline, peak)
    result = relaywatch(tmp_path, "--config", str(config), "mailsummary", str(bomb), "--json")
    data = json.loads(result.stdout)
    (entry,) = data["sources"]
    assert entry["lines"] == 3
    assert any("over-long line" in w for w in entry["warnings"])
    assert any("stopped after 96 MB" in w for w in entry["warnings"])


def test_the_cap_is_validated(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[logs]\nmax_decompressed_mb = 0\n")
    result = relaywatch(tmp_path, "--config", str(config), "config", "check")
    assert result.returncode == ExitCode.USAGE
    assert "logs.max_decompressed_mb" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_named_files_that_are_not_files_are_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "mail.fifo"
    os.mkfifo(fifo)
    for path, kind in ((str(fifo), "a FIFO"), ("/dev/zero", "a device"), (str(tmp_path), "a dir")):
        result = relaywatch(tmp_path, "mailsummary", path)
        assert result.returncode == ExitCode.USAGE, result.stderr
        assert kind in result.stderr and "- to read a stream from stdin" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_a_configured_fifo_is_skipped_with_a_reason_not_waited_for(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    os.mkfifo(log)  # nobody ever writes to it: reading it would hang forever
    config = tmp_path / "config.toml"
    config.write_text(f'[logs]\npaths = ["{log}"]\nwindow = "520w"\n')
    result = relaywatch(tmp_path, "--config", str(config), "mailsummary", "--json")
    assert "Traceback" not in result.stderr
    data = json.loads(result.stdout) if result.stdout.strip() else {}
    reasons = [s.get("reason", "") for s in data.get("sources", [])]
    assert any("a FIFO" in r for r in reasons) or "a FIFO" in result.stderr, result


def test_a_truncated_rotation_is_a_warning_in_the_report(tmp_path: Path) -> None:
    whole = gzip.compress("".join(LINE.format(n=n) + "\n" for n in range(5000)).encode())
    old = tmp_path / "mail.log.2.gz"
    old.write_bytes(whole[: len(whole) // 2])
    result = relaywatch(tmp_path, "mailsummary", str(old))
    assert "Traceback" not in result.stderr
    assert result.returncode in (ExitCode.OK, ExitCode.PROBLEM, ExitCode.INCOMPLETE)
    assert f"warning  {old}: the compressed file ends early (truncated)" in result.stdout


async def test_the_chat_reply_says_the_input_was_damaged(tmp_path: Path) -> None:
    import io

    from bot.config import Config
    from bot.dispatch import Dispatcher
    from bot.shell import ShellAdapter, ShellPoster
    from bot.store import Store

    whole = gzip.compress("".join(LINE.format(n=n) + "\n" for n in range(5000)).encode())
    old = tmp_path / "mail.log.2.gz"
    old.write_bytes(whole[: len(whole) // 2])
    config = Config()
    config.logs.paths = [str(old)]
    out = io.StringIO()
    with Store(tmp_path / "rw.db") as store:
        adapter = ShellAdapter(
            Dispatcher(config, store), ShellPoster(out), stdin=io.StringIO(""), user="alice"
        )
        result = await adapter.handle_line("/mailsummary 52w")
    assert result is not None and not result.error_id
    assert "mail.log.2.gz: the compressed file ends early (truncated)" in out.getvalue()
