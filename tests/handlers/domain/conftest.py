"""The test DNS server loaded with the domain zones, and settings that point the engine at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from handlers.domain import DomainSettings
from tests.fixtures.dns_server import DnsTestServer
from tests.fixtures.domain_zones import add_domain_zones


@pytest.fixture(scope="module")
def dns_server() -> Iterator[DnsTestServer]:
    with DnsTestServer() as server:
        add_domain_zones(server)
        yield server


@pytest.fixture
def settings(dns_server: DnsTestServer) -> DomainSettings:
    # short timeouts: the silent zone costs one timeout per question
    return DomainSettings(nameservers=[dns_server.address], timeout=0.4, mta_sts_timeout=3.0)
