"""The policy service over loopback: real sockets, a real store file, an injected clock."""

from __future__ import annotations

import asyncio
import socket
import stat
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.config import Config
from bot.policy.server import PolicyService, ServiceSettings
from bot.store import Store
from tests.handlers.policy.policy_requests import T0, request_bytes

DUNNO = b"action=DUNNO\n\n"


class Clock:
    def __init__(self) -> None:
        self.now = T0.timestamp()

    def __call__(self) -> float:
        return self.now

    def moment(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def config(tmp_path):
    config = Config()
    config.store.path = str(tmp_path / "relaywatch.db")
    config.policy.listen = "127.0.0.1:0"
    config.policy.account_messages_per_minute = 3
    config.policy.reject_text = "5.7.1 blocked by test"
    return config


@pytest.fixture
def store(config, clock):
    store = Store(config.store_path, clock=clock.moment)
    yield store
    store.close()


@pytest.fixture
async def service(config, clock):
    service = PolicyService(ServiceSettings.from_config(config), clock=clock)
    await service.start(background=False)
    yield service
    await service.stop()


def port_of(service: PolicyService) -> int:
    return int(service.addresses[0].rsplit(":", 1)[1])


async def connect(service):
    return await asyncio.open_connection("127.0.0.1", port_of(service))


async def answer(reader) -> bytes:
    return await asyncio.wait_for(reader.readuntil(b"\n\n"), 5)


async def ask(service, **attributes) -> bytes:
    reader, writer = await connect(service)
    try:
        writer.write(request_bytes(**attributes))
        return await answer(reader)
    finally:
        writer.close()


async def test_persistent_connection_answers_each_request(service):
    reader, writer = await connect(service)
    for _ in range(3):
        writer.write(request_bytes())
        assert await answer(reader) == DUNNO
    # pipelined: three at once, three answers in order
    writer.write(request_bytes() * 3)
    assert await asyncio.wait_for(reader.readexactly(len(DUNNO) * 3), 5) == DUNNO * 3
    writer.close()
    assert service.stats.requests == 6


async def test_readsocket_style_answer_then_close(service):
    reader, writer = await connect(service)
    writer.write(request_bytes())
    writer.write_eof()  # what Exim's ${readsocket} does after sending
    assert await asyncio.wait_for(reader.read(), 5) == DUNNO  # the answer, then EOF


async def test_garbage_closes_only_that_connection(service):
    good_reader, good_writer = await connect(service)
    for junk in (b"GET / HTTP/1.0\r\n\r\n", b"\x00\xff" * 100 + b"\n", b"x" * (1 << 20)):
        reader, writer = await connect(service)
        writer.write(junk)
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            # closed without an answer
            data = await asyncio.wait_for(reader.read(), 5)
            if not data:
                raise asyncio.IncompleteReadError(b"", None)
        writer.close()
    good_writer.write(request_bytes())
    assert await answer(good_reader) == DUNNO
    good_writer.close()
    assert service.stats.malformed == 3


async def test_half_request_then_close_leaves_it_serving(service):
    reader, writer = await connect(service)
    writer.write(request_bytes()[:40])
    writer.write_eof()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    assert await ask(service) == DUNNO
    assert service.stats.half_requests == 1


async def test_thousands_of_connections_open_and_close(service):
    async def one(i: int) -> None:
        reader, writer = await connect(service)
        if i % 3 == 0:
            writer.write(request_bytes())
            assert await answer(reader) == DUNNO
        elif i % 3 == 1:
            writer.write(request_bytes()[:30])
        writer.close()
        await writer.wait_closed()

    for start in range(0, 3000, 250):
        await asyncio.gather(*(one(i) for i in range(start, start + 250)))
    assert await ask(service) == DUNNO
    for _ in range(100):
        if service.open_connections == 0:
            break
        await asyncio.sleep(0.01)
    assert service.open_connections == 0


async def test_containment_from_the_store_applies_and_expires(service, store, clock):
    store.add_containment(
        "account", "carol@example.com", "block", clock.moment() + timedelta(hours=1)
    )
    store.add_containment("host", "192.0.2.0/24", "hold", clock.moment() + timedelta(hours=1))
    assert await service.refresh_now() is True
    assert await service.refresh_now() is False  # revision unchanged: nothing reread
    blocked = await ask(service, sasl_username="carol@example.com")
    assert blocked == b"action=REJECT 5.7.1 blocked by test\n\n"
    held = await ask(service, client_address="192.0.2.9")
    assert held == b"action=HOLD held for review by relaywatch\n\n"
    assert await ask(service, sasl_username="dave@example.com") == DUNNO
    # expiry applies on time even before the next refresh
    clock.now += 3601
    assert await ask(service, sasl_username="carol@example.com") == DUNNO


async def test_release_restores_acceptance(service, store, clock):
    store.add_containment(
        "sender_domain", "bad.example", "block", clock.moment() + timedelta(hours=1)
    )
    await service.refresh_now()
    assert (await ask(service, sender="x@bad.example")).startswith(b"action=REJECT")
    store.release_containment("sender_domain", "bad.example", "tester")
    await service.refresh_now()
    assert await ask(service, sender="x@bad.example") == DUNNO


async def test_throttle_over_the_wire(service, store, clock):
    store.add_containment(
        "account",
        "bob@example.com",
        "throttle",
        clock.moment() + timedelta(hours=1),
        limit_per_hour=2,
    )
    await service.refresh_now()
    reader, writer = await connect(service)
    got = []
    for i in range(3):
        writer.write(request_bytes(sasl_username="bob@example.com", instance=f"m{i}"))
        got.append(await answer(reader))
        writer.write(
            request_bytes(
                sasl_username="bob@example.com",
                protocol_state="DATA",
                recipient_count="1",
                instance=f"m{i}",
            )
        )
        got.append(await answer(reader))
    writer.close()
    assert got[:4] == [DUNNO] * 4
    assert got[4] == b"action=DEFER 4.7.1 Sending rate exceeded, try again later\n\n"


async def test_flood_is_recorded_as_an_alarm_and_counters_flushed(service, store):
    reader, writer = await connect(service)
    for i in range(5):
        for state in ("RCPT", "DATA"):
            writer.write(
                request_bytes(
                    sasl_username="flood@example.com",
                    protocol_state=state,
                    recipient_count="1" if state == "DATA" else "0",
                    recipient=f"victim{i}@example.net",
                    instance=f"f{i}",
                )
            )
            assert await answer(reader) == DUNNO
    writer.close()
    assert await service.record_alarms_now() == 1
    [(_, alarm)] = store.unposted_policy_alarms()
    assert alarm.rule == "account_messages_per_minute" and alarm.subject == "flood@example.com"
    assert alarm.count == 4 and alarm.threshold == 3
    assert alarm.sample_recipients[0] == "victim0@example.net"
    assert await service.flush_now() == 2
    assert store.policy_counter_totals("account", "flood@example.com", T0 - timedelta(hours=1)) == (
        5,
        5,
        0,
    )


async def test_background_tasks_pick_up_changes_and_record_alarms(config, clock, store):
    config.policy.refresh_seconds = 0.02
    config.policy.flush_seconds = 0.02
    config.policy.account_messages_per_minute = 0
    config.policy.account_messages_per_day = 1
    service = PolicyService(ServiceSettings.from_config(config), clock=clock)
    await service.start()
    try:
        store.add_containment("sender", "a@x.test", "block", clock.moment() + timedelta(hours=1))
        for _ in range(250):
            if (await ask(service, sender="a@x.test")).startswith(b"action=REJECT"):
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("the background refresh never applied the new entry")
        for i in range(2):
            await ask(service, sasl_username="z@x.test", protocol_state="DATA", instance=f"z{i}")
        for _ in range(250):
            if store.unposted_policy_alarms():
                break
            await asyncio.sleep(0.02)
        assert [a.rule for _, a in store.unposted_policy_alarms()] == ["account_messages_per_day"]
    finally:
        await service.stop()


async def test_auto_action_holds_the_subject(config, clock, store):
    config.policy.auto_action = {"account_messages_per_minute": "hold"}
    service = PolicyService(ServiceSettings.from_config(config), clock=clock)
    await service.start(background=False)
    try:
        for i in range(4):
            await ask(service, sasl_username="auto@x.test", protocol_state="DATA", instance=f"a{i}")
        await service.record_alarms_now()
        await service.refresh_now()
        [entry] = store.active_containments()
        assert (entry.subject, entry.action) == ("auto@x.test", "hold")
        assert entry.expires_at == T0 + timedelta(hours=24)
        assert (await ask(service, sasl_username="auto@x.test")).startswith(b"action=HOLD")
    finally:
        await service.stop()


async def test_unix_socket_and_ipv6(config, clock, tmp_path):
    path = tmp_path / "policy.sock"
    config.policy.listen = f"unix:{path}, [::1]:0"
    try:
        socket.socket(socket.AF_INET6).close()
    except OSError:
        pytest.skip("no IPv6")
    service = PolicyService(ServiceSettings.from_config(config), clock=clock)
    await service.start(background=False)
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666
        reader, writer = await asyncio.open_unix_connection(str(path))
        writer.write(request_bytes())
        assert await answer(reader) == DUNNO
        writer.close()
        port = int(service.addresses[1].rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("::1", port)
        writer.write(request_bytes())
        assert await answer(reader) == DUNNO
        writer.close()
    finally:
        await service.stop()


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("listen", "localhost:10040", "is not an IP address"),
        ("listen", "unix:relative", "absolute path"),
        ("listen", "127.0.0.1:99999", "is not a port"),
        ("auto_action", {"nope": "hold"}, "unknown rule"),
        ("auto_action", {"account_messages_per_minute": "throttle"}, "expected one of"),
        ("default_expiry", "forever", "expected a duration"),
    ],
)
def test_bad_settings_are_one_line_config_errors(config, key, value, message):
    from bot.config import ConfigError

    config.policy = replace(config.policy, **{key: value})
    with pytest.raises(ConfigError, match=message):
        ServiceSettings.from_config(config)


async def test_a_burst_of_new_subjects_is_flushed_early(config, clock, store, monkeypatch):
    import bot.policy.server as server

    monkeypatch.setattr(server, "EARLY_FLUSH_ROWS", 5)
    config.policy.flush_seconds = 3600.0  # only the early flush can write in this test
    service = PolicyService(ServiceSettings.from_config(config), clock=clock)
    await service.start()
    try:
        for i in range(6):  # 6 account rows and one host row: over the bound of 5
            await ask(service, sasl_username=f"u{i}@x.test", protocol_state="DATA")
        since = T0 - timedelta(hours=1)
        for _ in range(250):
            if store.policy_counter_totals("account", "u0@x.test", since)[0]:
                break
            await asyncio.sleep(0.02)
        assert store.policy_counter_totals("account", "u0@x.test", since) == (1, 0, 0)
        assert service.counters.pending_rows < 5
    finally:
        await service.stop()


async def test_stop_is_prompt_while_flushes_keep_coming(config, clock):
    # a flush loop cycling as fast as it can must not swallow the cancellation stop() sends
    config.policy.flush_seconds = 0.0001
    config.policy.refresh_seconds = 0.0001
    for _ in range(20):
        service = PolicyService(ServiceSettings.from_config(config), clock=clock)
        await service.start()
        await asyncio.sleep(0.01)
        await asyncio.wait_for(service.stop(), 10)


async def test_stop_when_an_early_flush_was_just_signalled(config, clock):
    # the exact race: the flush event fires, and stop() cancels before the loop resumes
    config.policy.flush_seconds = 3600.0
    for pause in range(4):
        service = PolicyService(ServiceSettings.from_config(config), clock=clock)
        await service.start()
        await asyncio.sleep(0.01)
        service._flush_due.set()
        for _ in range(pause):
            await asyncio.sleep(0)
        started = time.monotonic()
        await asyncio.wait_for(service.stop(), 30)
        assert time.monotonic() - started < 3  # the old wait_for-based loop stalled stop() here
        assert service._tasks == []


def test_malformed_requests_are_logged_at_most_once_per_interval(caplog):
    import logging

    from bot.policy.server import RateLimitedLog

    now = [100.0]
    limited = RateLimitedLog(every=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="relaywatch.policy"):
        for _ in range(50):
            limited.warning("policy: malformed request from %s", "192.0.2.1")
        now[0] += 10.0
        limited.warning("policy: malformed request from %s", "192.0.2.2")
    assert [r.getMessage() for r in caplog.records] == [
        "policy: malformed request from 192.0.2.1",
        "policy: malformed request from 192.0.2.2 (49 similar suppressed)",
    ]
