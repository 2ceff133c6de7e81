"""Two policy services ("replicas") on one store, each on its own loopback port: a block written
through a third connection reaches both within a second on PostgreSQL (LISTEN/NOTIFY, the
periodic refresh set far out of reach), and an account sending through both is counted once, in
total, with exactly one alarm."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.config import Config
from bot.policy.server import PolicyService, ServiceSettings
from bot.store import Store
from tests.bot.policy.test_policy_server import DUNNO, Clock, ask

REJECT = b"action=REJECT 5.7.1 blocked by test\n\n"


def replica_config(location: str, name: str) -> Config:
    config = Config()
    if location.startswith("postgresql://"):
        config.store.url = location
    else:
        config.store.path = location
    config.policy.listen = "127.0.0.1:0"
    config.policy.reject_text = "5.7.1 blocked by test"
    config.policy.replica_name = name
    return config


async def start_replicas(
    location: str, clock: Clock, count: int = 2, **policy: object
) -> list[PolicyService]:
    services = []
    for n in range(count):
        config = replica_config(location, f"replica-{n}")
        for key, value in policy.items():
            setattr(config.policy, key, value)
        service = PolicyService(ServiceSettings.from_config(config), clock=clock)
        await service.start()
        services.append(service)
    return services


@pytest.fixture
async def pg_replicas(postgres_server) -> AsyncIterator[tuple[str, list[PolicyService], Clock]]:
    location = postgres_server.create_database()
    clock = Clock()
    # the periodic refresh every 30 s: only the notification can explain a block within 1 s
    services = await start_replicas(location, clock, refresh_seconds=30.0, flush_seconds=30.0)
    try:
        yield location, services, clock
    finally:
        for service in services:
            await service.stop()


async def test_a_block_reaches_both_replicas_within_a_second(pg_replicas) -> None:
    location, services, clock = pg_replicas
    assert len({s.addresses[0] for s in services}) == 2
    for service in services:
        assert await ask(service, sasl_username="carol@lab.test") == DUNNO
    with Store(location, clock=clock.moment) as other:  # what /contain on another replica does
        began = time.monotonic()
        other.add_containment(
            "account", "carol@lab.test", "block", clock.moment() + timedelta(hours=1)
        )
    latencies = []
    for service in services:
        while await ask(service, sasl_username="carol@lab.test") != REJECT:
            assert time.monotonic() - began < 1.0, "not within a second: the NOTIFY was missed"
            await asyncio.sleep(0.01)
        latencies.append(time.monotonic() - began)
    print(f"block reached both replicas in {max(latencies) * 1000:.0f} ms")
    assert max(latencies) < 1.0
    for service in services:
        assert await ask(service, sasl_username="dave@lab.test") == DUNNO
        assert service.stats.store_errors == 0
