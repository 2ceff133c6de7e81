"""The PostgreSQL cases may be skipped on a developer machine without the server, never under CI."""

from __future__ import annotations

from tests.fixtures.postgres import postgres_required


def test_ci_requires_postgresql() -> None:
    assert postgres_required({"CI": "true"})
    assert postgres_required({"REQUIRE_POSTGRES_TESTS": "1"})  # .ci/run sets it
    assert not postgres_required({})
    assert not postgres_required({"CI": "false"})


def test_ci_run_installs_the_server_it_requires() -> None:
    from pathlib import Path

    script = (Path(__file__).parents[1] / ".ci" / "run").read_text(encoding="utf-8")
    assert "postgresql" in script and "REQUIRE_POSTGRES_TESTS=1" in script
