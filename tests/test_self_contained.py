"""The repository carries everything its tests and benchmarks need: nothing may read a path
outside it (a clean clone on a fresh machine has nothing beside it). `.ci/run` also runs the suite
from a clone in an empty temporary directory, which proves the same end to end."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# a relative path climbing out of the checkout, a developer machine's absolute paths, or a
# pathlib climb to a sibling folder
OUTSIDE = re.compile(r"\.\./shared|/work/|/home/\w+/|parents\[\d\]\s*/\s*\"shared\"")


def _tracked_text_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    files = []
    for name in filter(None, listed):
        path = ROOT / name
        if path.suffix in (".gz", ".png") or not path.is_file():
            continue
        files.append(path)
    return files


def test_nothing_refers_outside_the_repository() -> None:
    offenders = []
    for path in _tracked_text_files():
        if path == Path(__file__):  # it names the patterns it forbids
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), start=1):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "paths outside the repository:\n" + "\n".join(offenders)


def test_ci_runs_the_suite_from_a_clone_in_an_empty_directory() -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "mktemp -d" in script and "git clone" in script
