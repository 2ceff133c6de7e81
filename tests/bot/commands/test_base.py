"""Which targets the watch list covers (the rule non-admins are held to)."""

from pathlib import Path

import pytest

from bot.commands.base import target_is_watched
from bot.store import Store


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "db") as opened:
        opened.add_watch("server", "mx.example.com:25")
        opened.add_watch("server", "[2001:db8::25]:587")
        opened.add_watch("cidr", "192.0.2.0/24")
        opened.add_watch("domain", "example.org")
        yield opened


@pytest.mark.parametrize(
    "target",
    [
        "mx.example.com",
        "MX.example.com:2525",  # same host, other port: the port allowlist is a separate check
        "[2001:db8::25]:25",
        "2001:db8::25",
        "192.0.2.77",
        "192.0.2.77:25",
        "example.org",
        "mail.example.org",
    ],
)
def test_covered(store: Store, target: str) -> None:
    assert target_is_watched(store, target)


@pytest.mark.parametrize(
    "target",
    [
        "mx.example.net",
        "198.51.100.1",
        "notexample.org",
        "[2001:db8::26]:25",
        "192.0.3.1:25",
        "x:y:z",
    ],
)
def test_not_covered(store: Store, target: str) -> None:
    assert not target_is_watched(store, target)
