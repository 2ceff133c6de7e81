"""The docs made from the code are current, and the hand-written docs hold only valid JSON."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from bot.config import Config
from bot.docs_gen.__main__ import outputs
from bot.docs_gen.keys import sections

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("relative", sorted(outputs()))
def test_generated_file_is_current(relative: str) -> None:
    committed = (ROOT / relative).read_text(encoding="utf-8")
    assert committed == outputs()[relative](), (
        f"{relative} differs from the code: run `python -m bot.docs_gen` and commit the result"
    )


def test_reference_lists_every_key_with_its_default() -> None:
    reference = (ROOT / "docs" / "config-reference.md").read_text(encoding="utf-8")
    config = Config()
    documented = 0
    for section in sections():
        for key in section.keys:
            row = next(line for line in reference.splitlines() if f"| `{key.dotted}` |" in line)
            assert key.doc.split(" ")[0] in row
            documented += 1
    # every key of every section, so a new one cannot be missed by the walk above
    expected = sum(
        len(getattr(config, name).__dataclass_fields__)
        for name in config.__dataclass_fields__
        if hasattr(getattr(config, name), "__dataclass_fields__") and name != "secrets"
    )
    assert documented == expected + 1  # + secrets_file at the top level


def test_man_pages_name_every_subcommand_and_key() -> None:
    cli = (ROOT / "man" / "relaywatch.1").read_text(encoding="utf-8")
    for command in ("blacklist", "relaycheck", "mailsummary", "digest", "serve", "watch", "config"):
        assert f'.SS "{command}' in cli
    toml = (ROOT / "man" / "relaywatch.toml.5").read_text(encoding="utf-8")
    assert '.SH "blacklist.nameservers (default: [])"' in toml
    assert '.SH "logs.paths (default: [\\(dq/var/log/mail.log\\(dq])"' in toml


def test_man_pages_are_installed_with_the_package() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    data_files = pyproject["tool"]["setuptools"]["data-files"]
    assert data_files["share/man/man1"] == ["man/relaywatch.1"]
    assert data_files["share/man/man5"] == ["man/relaywatch.toml.5"]


def test_every_json_example_in_the_docs_is_valid_json() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    blocks = 0
    for page in pages:
        for block in re.findall(r"```json\n(.*?)\n```", page.read_text(encoding="utf-8"), re.S):
            json.loads(block)  # raises with the position of the first error
            blocks += 1
    assert blocks >= 4


def test_no_developer_machine_paths_in_the_docs() -> None:
    # paths that climb out of the checkout are refused repository-wide by
    # tests/test_self_contained.py; these are the docs' own placeholders and scratch paths
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        for marker in ("/path/to/", "/home/", "/tmp/"):
            assert marker not in text, f"{page.name} mentions {marker}"


def test_every_page_is_in_the_site_navigation() -> None:
    mkdocs = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in (ROOT / "docs").glob("*.md"):
        assert f": {page.name}" in mkdocs, f"{page.name} is not in mkdocs.yml's nav"


@pytest.mark.parametrize("page", ["relaywatch.1", "relaywatch.toml.5"])
def test_man_pages_are_clean_roff(page: str) -> None:
    path = ROOT / "man" / page
    assert path.read_bytes().isascii()  # non-ASCII is written as \[uXXXX]
    groff = shutil.which("groff")
    if groff is None:
        pytest.skip("groff is not installed")
    done = subprocess.run(
        [groff, "-man", "-ww", "-z", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
