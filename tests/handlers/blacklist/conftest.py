"""Fixtures for the blacklist engine tests: the fixture DNS server loaded with the test zones."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from handlers.blacklist import DnsblList, EngineSettings, load_catalog
from tests.fixtures.dns_server import DnsTestServer
from tests.fixtures.dnsbl_zones import populate, write_catalog


@pytest.fixture(scope="module")
def dns_server() -> Iterator[DnsTestServer]:
    with DnsTestServer() as server:
        populate(server, dqs_key="k3yABC123")
        yield server


@pytest.fixture(scope="module")
def test_lists(tmp_path_factory: pytest.TempPathFactory) -> list[DnsblList]:
    return load_catalog(write_catalog(tmp_path_factory.mktemp("catalog")))


@pytest.fixture
def settings(dns_server: DnsTestServer) -> EngineSettings:
    # short timeouts: the silent zone costs (retries + 1) × timeout per run
    return EngineSettings(nameservers=[dns_server.address], timeout=0.15, retries=1, concurrency=50)
