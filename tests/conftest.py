"""Fixtures shared across the tree: the private PostgreSQL cluster and the store backends, and
the local stand-in for Slack's Web API."""

from collections.abc import AsyncIterator

import pytest

from tests.fixtures.slack_api import SlackStandIn

pytest_plugins = ["tests.fixtures.postgres"]


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    """A Slack stand-in on loopback that records every call (tests/fixtures/slack_api.py)."""
    standin = await SlackStandIn().start()
    yield standin
    await standin.stop()
