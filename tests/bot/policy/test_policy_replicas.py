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
from bot.render.policy_alarm import alarm_reply
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


@pytest.fixture
async def two_replicas(
    store_location: str,
) -> AsyncIterator[tuple[str, list[PolicyService], Clock]]:
    clock = Clock()
    services = []
    for n in range(2):
        config = replica_config(store_location, f"replica-{n}")
        config.policy.account_messages_per_minute = 10
        service = PolicyService(ServiceSettings.from_config(config), clock=clock)
        await service.start(background=False)  # flushes and alarms are driven by the test
        services.append(service)
    try:
        yield store_location, services, clock
    finally:
        for service in services:
            await service.stop()


async def send(service: PolicyService, account: str, count: int, tag: str) -> None:
    for i in range(count):
        answer = await ask(
            service, sasl_username=account, protocol_state="DATA", instance=f"{tag}{i}"
        )
        assert answer == DUNNO


def alarm_rows(location: str, clock: Clock) -> list:
    with Store(location, clock=clock.moment) as store:
        return [alarm for _, alarm in store.unposted_policy_alarms()]


async def test_an_account_through_two_replicas_is_counted_once_in_total(two_replicas) -> None:
    location, (one, two), clock = two_replicas
    # 6 through each: under the 10 a minute on either replica, 12 in total
    await send(one, "carol@lab.test", 6, "a")
    clock.now += 5
    await send(two, "carol@lab.test", 6, "b")
    assert one.stats.alarms == two.stats.alarms == 0  # neither sees enough alone
    assert await one.flush_now() == 2  # an account row and a host row
    assert await one.record_alarms_now() == 0  # 6 so far in the store
    assert await two.flush_now() == 2
    assert await two.record_alarms_now() == 1  # 12 summed: over
    # more flushes (nothing new, then more mail) raise nothing again in that minute
    await send(one, "carol@lab.test", 2, "c")
    for service in (one, two, one):
        await service.flush_now()
        assert await service.record_alarms_now() == 0
    [alarm] = alarm_rows(location, clock)
    assert (alarm.rule, alarm.subject, alarm.threshold) == (
        "account_messages_per_minute",
        "carol@lab.test",
        10,
    )
    assert alarm.count == 12 and alarm.detail == {"replicas": 2}
    assert "Counted over 2 policy service replicas" in alarm_reply(alarm, 1, "20/h").text
    with Store(location, clock=clock.moment) as store:
        sources = store.db.execute(
            "SELECT source, SUM(messages) FROM policy_counters WHERE subject = ? "
            "GROUP BY source ORDER BY source",
            ("carol@lab.test",),
        ).fetchall()
        assert [tuple(row) for row in sources] == [("replica-0", 8), ("replica-1", 6)]
        since = clock.moment() - timedelta(hours=1)
        totals = store.policy_counter_totals("account", "carol@lab.test", since)
        assert totals[0] == 14


async def test_two_replicas_crossing_together_record_one_alarm(two_replicas) -> None:
    location, (one, two), clock = two_replicas
    # each crosses the threshold on its own in the same minute, and the sum crosses it too:
    # three candidates for the one alarm of that rule, account and minute
    await send(one, "dave@lab.test", 11, "a")
    await send(two, "dave@lab.test", 11, "b")
    assert one._alarms and two._alarms
    recorded = await asyncio.gather(one.record_alarms_now(), two.record_alarms_now())
    await asyncio.gather(one.flush_now(), two.flush_now())
    recorded += await asyncio.gather(one.record_alarms_now(), two.record_alarms_now())
    assert sum(recorded) == 1
    [alarm] = alarm_rows(location, clock)
    assert alarm.subject == "dave@lab.test"
    # the next minute is a new window: it may alarm again, once
    clock.now += 60
    await send(one, "dave@lab.test", 11, "c")
    assert await one.record_alarms_now() == 1
    await one.flush_now()
    assert await one.record_alarms_now() == 0
    assert len(alarm_rows(location, clock)) == 2


async def test_summed_alarm_through_the_background_tasks(store_location: str) -> None:
    clock = Clock()
    services = await start_replicas(
        store_location, clock, account_messages_per_minute=10, flush_seconds=0.05
    )
    try:
        await send(services[0], "erin@lab.test", 6, "a")
        await send(services[1], "erin@lab.test", 6, "b")
        for _ in range(200):
            if alarm_rows(store_location, clock):
                break
            await asyncio.sleep(0.02)
        for service in services:  # a few more rounds of both: still one alarm
            await service.flush_now()
            await service.record_alarms_now()
        [alarm] = alarm_rows(store_location, clock)
        assert alarm.count == 12 and alarm.subject == "erin@lab.test"
    finally:
        for service in services:
            await service.stop()
