"""The store holds log evidence: created 0600 in a 0700 directory; a readable one is warned of."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from bot.store import Store


@pytest.fixture
def loose_umask():
    old = os.umask(0o022)  # the usual default: files 0644, directories 0755
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_store_is_owner_only(tmp_path: Path, loose_umask: None) -> None:
    path = tmp_path / "state" / "relaywatch" / "relaywatch.db"
    with Store(path) as store:
        store.add_watch("ip", "192.0.2.1")
        # SQLite gives its WAL and shared-memory files the database file's mode
        for name in ("relaywatch.db", "relaywatch.db-wal", "relaywatch.db-shm"):
            assert mode(path.parent / name) == 0o600, name
    assert mode(path.parent) == 0o700


def test_an_existing_readable_store_is_warned_about_not_changed(
    tmp_path: Path, loose_umask: None, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "rw.db"
    Store(path).close()
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="relaywatch.store"), Store(path):
        pass
    assert mode(path) == 0o644
    assert any("chmod 600" in r.getMessage() for r in caplog.records)
    caplog.clear()
    path.chmod(0o600)
    with caplog.at_level(logging.WARNING, logger="relaywatch.store"), Store(path):
        pass
    assert not caplog.records
