from __future__ import annotations

from handlers.policy.counters import Counters, CounterSettings, MessageEvents, Thresholds
from handlers.policy.protocol import RequestReader
from tests.handlers.policy.policy_requests import T0, request_bytes

NOW = T0.timestamp()


def req(**attributes):
    [request] = RequestReader().feed(request_bytes(**attributes))
    return request


def send(counters, now, recipients=("r@dest.test",), data=True, **attributes):
    """One message as Postfix asks about it: one RCPT per recipient, then DATA."""
    alarms = []
    instance = attributes.pop("instance", f"i{now}")
    for rcpt in recipients:
        alarms += counters.observe(req(recipient=rcpt, instance=instance, **attributes), now)
    if data:
        alarms += counters.observe(
            req(
                protocol_state="DATA",
                recipient="" if len(recipients) > 1 else recipients[0],
                recipient_count=str(len(recipients)),
                instance=instance,
                **attributes,
            ),
            now,
        )
    return alarms


def test_messages_recipients_bytes_are_flushed_per_account_and_host():
    c = Counters(CounterSettings(source="replica-a"))  # rows carry the replica's name
    send(c, NOW, recipients=("a@x.test", "b@y.test"), sasl_username="carol@example.com")
    c.observe(
        req(protocol_state="END-OF-MESSAGE", size="2048", sasl_username="carol@example.com"), NOW
    )
    rows = sorted(c.take_flush())
    assert rows == [
        ("account", "carol@example.com", "replica-a", 1, 2, 2048),
        ("host", "198.51.100.7", "replica-a", 1, 2, 2048),
    ]
    assert c.take_flush() == []


def test_rcpt_only_listener_counts_per_rcpt_and_instance():
    c = Counters(CounterSettings())
    send(c, NOW, recipients=("a@x.test", "b@y.test"), data=False, sasl_username="u@x.test")
    send(c, NOW + 1, recipients=("c@x.test",), data=False, sasl_username="u@x.test")
    rows = {row[0]: row[3:] for row in c.take_flush()}
    assert rows["account"] == (2, 3, 0)


def test_message_events_switch_to_data_counting():
    events = MessageEvents()
    assert events.is_message(req(instance="a"))
    assert not events.is_message(req(instance="a"))
    # the first DATA of a context: message "a" was counted at its RCPT already
    assert not events.is_message(req(protocol_state="DATA", instance="a"))
    assert events.is_message(req(protocol_state="DATA", instance="z"))
    assert not events.is_message(req(instance="b"))  # this context asks at DATA now
    assert events.is_message(req(instance="c", policy_context="other"))


def test_account_per_minute_alarm_once_per_window():
    c = Counters(CounterSettings(thresholds=Thresholds(account_messages_per_minute=3)))
    alarms = []
    for i in range(10):
        alarms += send(c, NOW + i, sasl_username="carol@example.com", recipients=(f"v{i}@d.test",))
    [alarm] = alarms
    assert alarm.rule == "account_messages_per_minute"
    assert alarm.subject == "carol@example.com" and alarm.count == 4 and alarm.threshold == 3
    assert alarm.client_addresses == ("198.51.100.7",)
    assert alarm.sample_recipients[:2] == ("v0@d.test", "v1@d.test")
    assert alarm.policy_context == "test"
    assert alarm.key == "policy:account_messages_per_minute:account:carol@example.com"
    # next window: alarms again once crossed
    later = []
    for i in range(5):
        later += send(c, NOW + 120 + i, sasl_username="carol@example.com")
    assert [a.rule for a in later] == ["account_messages_per_minute"]


def test_account_day_ips_networks_alarms():
    c = Counters(
        CounterSettings(
            thresholds=Thresholds(
                account_messages_per_minute=0,
                account_messages_per_day=5,
                account_client_ips_per_hour=3,
                account_networks_per_hour=2,
            )
        )
    )
    alarms = []
    for i in range(6):
        alarms += send(
            c, NOW + i * 70, sasl_username="dave@example.com", client_address=f"203.0.{i}.9"
        )
    rules = [a.rule for a in alarms]
    assert rules.count("account_messages_per_day") == 1
    assert rules.count("account_client_ips_per_hour") == 1
    assert rules.count("account_networks_per_hour") == 1
    nets = next(a for a in alarms if a.rule == "account_networks_per_hour")
    assert nets.count == 3 and "203.0.0.0/24" in nets.detail["networks"]


def test_ipv6_networks_are_64s():
    c = Counters(
        CounterSettings(
            thresholds=Thresholds(account_networks_per_hour=1, account_messages_per_minute=0)
        )
    )
    alarms = send(c, NOW, sasl_username="e@x.test", client_address="2001:db8:0:1::5")
    alarms += send(c, NOW, sasl_username="e@x.test", client_address="2001:db8:0:1::6")
    assert alarms == []
    alarms += send(c, NOW, sasl_username="e@x.test", client_address="2001:db8:0:2::5")
    assert [a.rule for a in alarms] == ["account_networks_per_hour"]


def test_internal_host_outbound_and_domains():
    c = Counters(
        CounterSettings(
            thresholds=Thresholds(host_outbound_per_hour=3, host_domains_per_hour=2),
            internal_networks=("192.168.1.0/24",),
            local_domains=("example.com",),
        )
    )
    alarms = []
    # inside mail never counts as outbound
    for i in range(10):
        alarms += send(c, NOW + i, client_address="192.168.1.50", recipients=("x@example.com",))
    assert alarms == []
    for i in range(4):
        alarms += send(c, NOW + 20 + i, client_address="192.168.1.50", recipients=(f"v@d{i}.test",))
    rules = [a.rule for a in alarms]
    assert rules == ["host_domains_per_hour", "host_outbound_per_hour"]
    outbound = alarms[1]
    assert outbound.subject_kind == "host" and outbound.subject == "192.168.1.50"
    assert outbound.count == 4
    # an outside host is not an internal one: no host rules
    assert send(c, NOW, client_address="198.51.100.7", recipients=("v@d9.test",) * 1) == []


def test_exemptions():
    c = Counters(
        CounterSettings(
            thresholds=Thresholds(account_messages_per_minute=1, host_outbound_per_hour=1),
            internal_networks=("10.0.0.0/8",),
            exempt_accounts=("List@Example.com",),
            exempt_hosts=("10.1.0.0/16",),
        )
    )
    alarms = []
    for i in range(5):
        alarms += send(c, NOW + i, sasl_username="list@example.com", client_address="10.1.2.3")
    assert alarms == []
    # still counted for the record
    assert {row[0] for row in c.take_flush()} == {"account", "host"}


def test_expiry_keeps_memory_flat():
    c = Counters(CounterSettings(internal_networks=("10.0.0.0/8",)))
    for i in range(2000):
        send(c, NOW, sasl_username=f"user{i}@x.test", client_address=f"10.0.{i // 250}.{i % 250}")
    assert len(c.accounts) == 2000 and len(c.hosts) == 2000
    assert c.expire(NOW + 3599) == 0
    assert c.expire(NOW + 3600) == 2000  # host state lasts an hour
    assert len(c.hosts) == 0 and len(c.accounts) == 2000
    assert c.expire(NOW + 86400) == 2000  # account state a day
    assert c.subjects == 0


def test_subject_cap_drops_least_recently_seen():
    c = Counters(CounterSettings(max_subjects=100))
    for i in range(250):
        send(c, NOW, sasl_username=f"user{i}@x.test")
    assert len(c.accounts) == 100
    assert "user249@x.test" in c.accounts and "user0@x.test" not in c.accounts


def test_account_messages_are_kept_per_clock_minute_and_day_for_the_sum():
    c = Counters(CounterSettings(thresholds=Thresholds(account_messages_per_minute=3)))
    minute = NOW - NOW % 60
    send(c, minute + 58, sasl_username="u@x.test")
    send(c, minute + 59, sasl_username="u@x.test")
    send(c, minute + 61, sasl_username="u@x.test")  # the next clock minute
    windows = c.take_windows()
    assert windows == {("u@x.test", minute): 2, ("u@x.test", minute + 60): 1}
    assert c.take_windows() == {}
    day = minute - minute % 86400
    assert sorted(Counters.window_rows(windows)) == [
        (day, 86400, "u@x.test", 3),
        (minute, 60, "u@x.test", 2),
        (minute + 60, 60, "u@x.test", 1),
    ]
    # a sum over replicas above the threshold is an alarm for that minute, with local evidence
    alarm = c.summed_alarm("account_messages_per_minute", "u@x.test", 7, 2, minute, NOW)
    assert alarm is not None and alarm.count == 7 and alarm.threshold == 3
    assert alarm.clock_window().timestamp() == minute and alarm.detail == {"replicas": 2}
    assert alarm.client_addresses == ("198.51.100.7",)
    assert c.summed_alarm("account_messages_per_minute", "u@x.test", 3, 2, minute, NOW) is None


def test_exempt_accounts_are_neither_kept_for_the_sum_nor_alarmed():
    c = Counters(CounterSettings(exempt_accounts=("list@x.test",)))
    send(c, NOW, sasl_username="list@x.test")
    assert c.take_windows() == {}
    assert c.summed_alarm("account_messages_per_minute", "list@x.test", 99, 2, NOW, NOW) is None
