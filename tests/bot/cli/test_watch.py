"""`relaywatch watch add|remove|list` against a real store file."""

import json
from pathlib import Path

from bot.cli import main
from tests.fixtures.cli import run_cli


def run(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    return run_cli({"RELAYWATCH_STORE_PATH": str(tmp_path / "rw.db")}, *args)


def test_add_list_remove_round_trip(tmp_path: Path) -> None:
    assert run(tmp_path, "watch", "add", "192.0.2.10")[0] == 0
    assert run(tmp_path, "watch", "add", "Example.COM.")[1] == "added: domain example.com\n"
    assert run(tmp_path, "watch", "add", "--kind", "server", "mx.example.com")[0] == 0
    assert run(tmp_path, "watch", "add", "198.51.100.7/24")[1] == "added: cidr 198.51.100.0/24\n"
    code, out, _ = run(tmp_path, "watch", "list", "--json")
    assert code == 0
    items = {(i["kind"], i["value"]) for i in json.loads(out)["watch"]}
    assert items == {
        ("ip", "192.0.2.10"),
        ("domain", "example.com"),
        ("server", "mx.example.com"),
        ("cidr", "198.51.100.0/24"),
    }
    assert run(tmp_path, "watch", "remove", "192.0.2.10")[0] == 0
    code, _, err = run(tmp_path, "watch", "remove", "192.0.2.10")
    assert code == 2 and "not on the watch list" in err


def test_bad_value_changes_nothing(tmp_path: Path) -> None:
    code, out, err = run(tmp_path, "watch", "add", "not a host!")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert run(tmp_path, "watch", "list")[1].startswith("the watch list is empty")


def test_main_returns_usage_code_without_subcommand(capsys) -> None:
    assert main([]) == 2
