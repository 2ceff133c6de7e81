"""`python -m bot.docs_gen [--check]`: write (or check) the files made from the code.

The configuration reference, the two manual pages and the default Slack manifest.yml.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from bot.config import Config
from bot.docs_gen.man_cli import cli_manpage
from bot.docs_gen.man_config import config_manpage
from bot.docs_gen.markdown import config_reference
from bot.manifest import build_manifest

ROOT = Path(__file__).resolve().parents[2]


def outputs() -> dict[str, Callable[[], str]]:
    """Each generated file (relative to the repository) and how to make it."""
    ver = package_version()
    return {
        "docs/config-reference.md": config_reference,
        "man/relaywatch.1": lambda: cli_manpage(ver),
        "man/relaywatch.toml.5": lambda: config_manpage(ver),
        "manifest.yml": lambda: build_manifest(Config()),
    }


def package_version() -> str:
    try:
        return version("relaywatch")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return "0"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.docs_gen", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report out-of-date files")
    args = parser.parse_args(argv)
    stale = []
    for relative, make in outputs().items():
        path = ROOT / relative
        wanted = make()
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == wanted:
            continue
        stale.append(relative)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(wanted, encoding="utf-8")
    verb = "out of date" if args.check else "written"
    for relative in stale:
        print(f"{relative}: {verb}", file=sys.stderr)
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
