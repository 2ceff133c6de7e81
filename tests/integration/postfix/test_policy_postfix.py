"""relaywatch's policy service behind a real Debian Postfix (private instance on 127.0.0.1).

Postfix asks the service at RCPT and DATA; the test sets containment entries in the store the way
the chat side does and checks what SMTP clients see. Skipped without root/postfix/sasl2-bin; with
CI=true that is a failure instead.
"""

from __future__ import annotations

import asyncio
import os
import smtplib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.config import Config
from bot.policy.server import PolicyService, ServiceSettings
from bot.store import Store
from tests.integration.postfix.policy_instance import (
    SASL_PASSWORD,
    SASL_REALM,
    queue_json,
    start_policy_postfix,
)
from tests.integration.postfix.postfix_instance import PostfixInstance, PostfixUnavailable, remove

pytestmark = pytest.mark.postfix

CAROL = f"carol@{SASL_REALM}"  # the compromised account
BOB = f"bob@{SASL_REALM}"  # an account that keeps working
RCPT = "someone@relaywatch.test"  # a local recipient: accepted without relaying


class ServiceThread:
    """The policy service on its own event loop in a thread, as `relaywatch serve` runs it."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.service: PolicyService | None = None

    def run(self, coroutine, timeout: float = 20):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def start(self) -> None:
        async def start() -> PolicyService:
            service = PolicyService(ServiceSettings.from_config(self.config))
            await service.start(background=False)
            return service

        self.service = self.run(start())

    def stop(self) -> None:
        if self.service is not None:
            self.run(self.service.stop())
            self.service = None

    def refresh(self) -> None:
        assert self.service is not None
        self.run(self.service.refresh_now())

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def _fail(message: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> Iterator[tuple[PostfixInstance, ServiceThread, Store]]:
    directory = tmp_path_factory.mktemp("policy")
    config = Config()
    config.store.path = str(directory / "relaywatch.db")
    config.policy.listen = "127.0.0.1:0"
    config.policy.reject_text = "5.7.1 Sending suspended by the test administrators"
    config.policy.account_messages_per_minute = 3
    service = ServiceThread(config)
    service.start()
    port = int(service.service.addresses[0].rsplit(":", 1)[1])
    # rebind on the same port after a stop: the listen value is what Postfix knows
    config.policy.listen = f"127.0.0.1:{port}"
    try:
        accounts = {"carol": SASL_PASSWORD, "bob": SASL_PASSWORD, "flood": SASL_PASSWORD}
        postfix = start_policy_postfix(port, accounts)
    except PostfixUnavailable as exc:
        service.close()
        _fail(str(exc))
    store = Store(config.store_path)
    yield postfix, service, store
    store.close()
    service.close()
    remove(postfix)


@pytest.fixture
def instance(setup) -> Iterator[tuple[PostfixInstance, ServiceThread, Store]]:
    _, service, store = setup
    if service.service is None:
        service.start()
    yield setup
    for entry in store.active_containments():
        store.release_containment(entry.subject_kind, entry.subject, "test teardown")
    if service.service is None:
        service.start()
    service.refresh()


def contain(store: Store, service: ServiceThread, kind: str, subject: str, action: str, **kw):
    expires = datetime.now(UTC) + timedelta(hours=1)
    store.add_containment(kind, subject, action, expires, reason="test", set_by="tester", **kw)
    service.refresh()


def send(
    postfix: PostfixInstance,
    listener: str = "policy",
    login: str | None = None,
    sender: str = "sender@example.org",
    subject: str = "test",
) -> tuple[int, str]:
    """One message; the first refusal's (code, text), or (250, queue reply) when accepted."""
    host, _, port = postfix.target(listener).rpartition(":")
    with smtplib.SMTP(host, int(port), timeout=30) as smtp:
        smtp.ehlo("client.example")
        if login:
            smtp.login(login, SASL_PASSWORD)
        code, text = smtp.mail(sender)
        if code >= 400:
            return code, text.decode()
        code, text = smtp.rcpt(RCPT)
        if code >= 400:
            return code, text.decode()
        code, text = smtp.data(f"Subject: {subject}\r\n\r\nhello\r\n".encode())
        return code, text.decode()


def test_normal_mail_is_accepted(instance):
    postfix, _, _ = instance
    assert send(postfix, login=BOB)[0] == 250
    assert send(postfix)[0] == 250


def test_a_flood_from_one_account_is_an_alarm(instance):
    postfix, service, store = instance
    for _ in range(4):
        assert send(postfix, login=f"flood@{SASL_REALM}")[0] == 250
    service.run(service.service.record_alarms_now())
    alarms = [a for _, a in store.unposted_policy_alarms() if a.subject == f"flood@{SASL_REALM}"]
    assert [a.rule for a in alarms] == ["account_messages_per_minute"]
    assert alarms[0].count == 4 and alarms[0].client_addresses == ("127.0.0.1",)
    assert alarms[0].sample_recipients == (RCPT,) and alarms[0].policy_context == "test"


def test_blocked_sasl_account_gets_5xx_at_rcpt(instance):
    postfix, service, store = instance
    contain(store, service, "account", CAROL, "block")
    code, text = send(postfix, login=CAROL)
    assert code == 554 and "5.7.1" in text and "Sending suspended by the test" in text
    assert send(postfix, login=BOB)[0] == 250  # the others keep working
    store.release_containment("account", CAROL, "tester")
    service.refresh()
    assert send(postfix, login=CAROL)[0] == 250  # release restores acceptance


def test_blocked_host_and_sender(instance):
    postfix, service, store = instance
    contain(store, service, "host", "127.0.0.0/8", "block")
    assert send(postfix)[0] == 554
    store.release_containment("host", "127.0.0.0/8", "tester")
    contain(store, service, "sender", "spam@example.org", "block")
    assert send(postfix, sender="spam@example.org")[0] == 554
    assert send(postfix, sender="ham@example.org")[0] == 250


def test_held_message_waits_in_the_hold_queue(instance):
    postfix, service, store = instance
    contain(store, service, "account", CAROL, "hold")
    code, _ = send(postfix, login=CAROL, subject="held")
    assert code == 250  # accepted, then parked
    queued = queue_json(postfix)
    held = [m for m in queued if m["queue_name"] == "hold"]
    assert len(held) == 1, queued
    assert held[0]["sender"] == "sender@example.org"
    subprocess_delete(postfix, held[0]["queue_id"])


def subprocess_delete(postfix: PostfixInstance, queue_id: str) -> None:
    import subprocess

    subprocess.run(
        ["postsuper", "-c", str(postfix.config_dir), "-d", queue_id],
        capture_output=True,
        timeout=30,
        check=True,
    )


def test_throttled_account_gets_4xx_past_its_limit(instance):
    postfix, service, store = instance
    contain(store, service, "account", BOB, "throttle", limit_per_hour=2)
    results = [send(postfix, login=BOB)[0] for _ in range(3)]
    assert results[:2] == [250, 250]
    assert results[2] == 450, results  # DEFER at RCPT: 450 4.7.1
    store.release_containment("account", BOB, "tester")
    service.refresh()
    assert send(postfix, login=BOB)[0] == 250


def test_service_down_fails_open_with_default_action(instance):
    postfix, service, _ = instance
    service.stop()
    assert send(postfix)[0] == 250


def test_service_down_without_default_action_is_451(instance):
    postfix, service, _ = instance
    service.stop()
    code, text = send(postfix, listener="failclosed")
    # Postfix's default_action: 451 4.3.5 <rcpt>: Recipient address rejected: Server configuration
    # problem
    assert code == 451 and text.startswith("4.3.5") and "Server configuration problem" in text


def test_counting_sees_both_stages(instance):
    postfix, service, store = instance
    for _ in range(2):
        assert send(postfix, login=BOB)[0] == 250
    flushed = service.run(service.service.flush_now())
    assert flushed >= 1
    messages, recipients, _ = store.policy_counter_totals(
        "account", BOB, datetime.now(UTC) - timedelta(hours=2)
    )
    assert messages >= 2 and recipients >= 2


def test_policy_check_reads_this_instance(instance, tmp_path):
    import json

    from tests.bot.cli.test_main import relaywatch

    postfix, _, _ = instance
    result = relaywatch(
        "policy", "check", "--json", env={"MAIL_CONFIG": str(postfix.config_dir)}, home=tmp_path
    )
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    failclosed = f"{postfix.target('failclosed')}/inet"
    policy = f"{postfix.target('policy')}/inet"
    problems = {(f["service"], f["code"]) for f in report["findings"] if f["severity"] == "problem"}
    assert problems == {(failclosed, "fails_closed")}
    endpoints = {(s["service"], s["parameter"]) for s in report["policy_services"]}
    assert (policy, "smtpd_recipient_restrictions") in endpoints
    assert (policy, "smtpd_data_restrictions") in endpoints
