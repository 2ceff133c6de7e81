"""Suspects: the planted abuse in the shared log ranks first, and each rule fires past its
threshold (and not below it) on small synthetic logs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from handlers.logsummary.engine import SummaryOptions, summarize_logs_sync
from handlers.logsummary.suspects import Suspect, SuspectThresholds
from tests.fixtures.real_log import TRAFFIC

from .conftest import PostfixLog

# In the shared log every client is a 127.x address. 127.0.0.0/24 plays the LAN: the trusted
# listener's hosts, the submission users' desktops and the gateway are there, while inbound mail
# (127.0.1.x), relay scanners (127.0.2.x), password guessers (127.0.3.x) and the botnet
# (127.0.4.x) play the internet. An admin would declare the LAN the same way.
LAN = ("127.0.0.0/24",)


def _suspects(log: PostfixLog, tmp_path: Path, **options) -> list[Suspect]:
    path = log.write(tmp_path / "mail.log")
    report = summarize_logs_sync(SummaryOptions(paths=(str(path),), **options))
    return report.suspects


def _kinds(suspects: list[Suspect]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for suspect in suspects:
        found.setdefault(suspect.subject, set()).update(suspect.kinds)
    return found


def test_planted_compromises_are_the_top_suspects(shared_log: Path) -> None:
    report = summarize_logs_sync(SummaryOptions(paths=(str(shared_log),), internal_networks=LAN))
    # the open relay first (highest severity), then the compromised host and account
    relay, first, second = report.suspects[:3]
    assert (relay.subject_type, relay.kind) == ("server", "open_relay")
    assert {(first.subject, first.kind), (second.subject, second.kind)} == {
        ("127.0.0.66", "internal_host_outbound"),
        ("mallory@lab.test", "sasl_many_ips"),
    }
    assert all(s.score < second.score for s in report.suspects[3:])
    gateway = next(s for s in report.suspects if s.subject == "127.0.0.66")
    assert gateway.subject_type == "client"
    assert "700 messages" in gateway.reasons[0]
    assert all("127.0.0.66" in line or "A" in line for line in gateway.evidence)
    assert any("client=unknown[127.0.0.66]" in line for line in gateway.evidence)
    account = next(s for s in report.suspects if s.subject == "mallory@lab.test")
    assert account.subject_type == "account"
    assert "8 of them outside the internal networks" in account.reasons[0]
    assert all("sasl_username=mallory@lab.test" in line for line in account.evidence)
    assert {line.split("client=unknown[")[1].split("]")[0] for line in account.evidence} >= {
        "127.0.4.1",
        "127.0.4.8",
        "127.0.0.77",
    }
    # the legitimate submission users log in from many LAN desktops: not suspects
    assert not {"alice@lab.test", "bob@lab.test", "carol@lab.test", "submit@lab.test"} & {
        s.subject for s in report.suspects if s.kind == "sasl_many_ips"
    }


def test_account_used_from_many_outside_addresses(postfix_log: PostfixLog, tmp_path: Path) -> None:
    for n in range(6):
        postfix_log.message(f"198.51.100.{n + 1}", "eve@our.example", ["x@far.example"], "eve")
    for n in range(4):
        postfix_log.message(f"203.0.113.{n + 1}", "ann@our.example", ["y@far.example"], "ann")
    for n in range(20):
        postfix_log.message(f"192.168.1.{n + 1}", "bob@our.example", ["z@far.example"], "bob")
    found = _kinds(_suspects(postfix_log, tmp_path))
    assert "sasl_many_ips" in found["eve"]
    assert "ann" not in found  # 4 outside addresses, 2 networks: below both thresholds
    assert "bob" not in found  # 20 desktops on the (default, RFC 1918) internal network


def test_internal_host_sending_straight_out(postfix_log: PostfixLog, tmp_path: Path) -> None:
    for _ in range(60):
        postfix_log.message("192.168.7.7", "printer@our.example", ["a@far.example"])
    for _ in range(40):
        postfix_log.message("10.1.1.1", "nas@our.example", ["b@far.example"])
    for _ in range(60):
        postfix_log.message(
            "192.168.7.8", "scan@our.example", ["me@our.example"], transport="virtual"
        )
    for _ in range(60):
        postfix_log.message("127.0.0.1", "filter@our.example", ["c@far.example"])
    suspects = _suspects(postfix_log, tmp_path)
    found = _kinds(suspects)
    assert "internal_host_outbound" in found["192.168.7.7"]
    assert "10.1.1.1" not in found  # 40 < 50 outbound deliveries
    assert "192.168.7.8" not in found  # its mail stayed here
    # loopback is internal by default, but the machine itself (content filters handing mail
    # back) is not a LAN host sending out
    assert "127.0.0.1" not in found
    declared = _kinds(_suspects(postfix_log, tmp_path, internal_networks=("10.0.0.0/8",)))
    assert "192.168.7.7" not in declared  # not in the declared internal networks


def test_volume_against_baseline(postfix_log: PostfixLog, tmp_path: Path) -> None:
    for _ in range(60):
        postfix_log.message("198.51.100.9", "bob@our.example", ["x@far.example"], "bob")
    spike = _kinds(_suspects(postfix_log, tmp_path, baseline={"sasl:bob": 2.0}))
    assert "volume_spike" in spike["bob"], spike
    usual = _kinds(_suspects(postfix_log, tmp_path, baseline={"sasl:bob": 50.0}))
    assert "volume_spike" not in usual.get("bob", set())


def test_volume_far_above_everyone_else(postfix_log: PostfixLog, tmp_path: Path) -> None:
    for n in range(10):
        for _ in range(3):
            postfix_log.message("192.0.2.1", f"u{n}@our.example", ["x@far.example"], f"u{n}")
    for _ in range(40):
        postfix_log.message("192.0.2.2", "big@our.example", ["x@far.example"], "big")
    found = _kinds(_suspects(postfix_log, tmp_path))
    assert "volume_outlier" in found["big"]
    assert not any("volume_outlier" in kinds for name, kinds in found.items() if name != "big")


def test_bounces_and_unknown_users(postfix_log: PostfixLog, tmp_path: Path) -> None:
    for n in range(30):
        postfix_log.message(
            "198.51.100.3",
            "list@our.example",
            [f"old{n}@far.example"],
            "lister",
            status="bounced",
            reply="host mx.far.example said: 550 5.1.1 <x>: User unknown",
        )
    for _ in range(30):
        postfix_log.message("198.51.100.3", "list@our.example", ["ok@far.example"], "lister")
    for _ in range(40):
        postfix_log.message("198.51.100.4", "me@our.example", ["ok@far.example"], "fine")
    found = _kinds(_suspects(postfix_log, tmp_path))
    assert {"bounce_ratio", "user_unknown"} <= found["lister"]
    assert "fine" not in found


def test_many_recipients_per_message(postfix_log: PostfixLog, tmp_path: Path) -> None:
    wide = [f"r{n}@far.example" for n in range(25)]
    for _ in range(3):
        postfix_log.message("198.51.100.5", "blast@our.example", wide, "blaster")
    postfix_log.message("198.51.100.6", "team@our.example", wide[:12], "teamlead")
    for _ in range(4):
        postfix_log.message("198.51.100.6", "team@our.example", ["one@far.example"], "teamlead")
    found = _kinds(
        _suspects(postfix_log, tmp_path, thresholds=SuspectThresholds(min_messages_for_ratio=1))
    )
    assert "many_recipients" in found["blaster"]
    assert "teamlead" not in found  # one wide message, 3.2 recipients on average


def test_relay_probes_counted_per_client(postfix_log: PostfixLog, tmp_path: Path) -> None:
    for _ in range(5):
        postfix_log.relay_denied("203.0.113.50")
    for _ in range(4):
        postfix_log.relay_denied("203.0.113.51")
    suspects = _suspects(postfix_log, tmp_path)
    found = _kinds(suspects)
    assert found["203.0.113.50"] == {"relay_probe"}
    assert "203.0.113.51" not in found
    probe = next(s for s in suspects if s.subject == "203.0.113.50")
    assert len(probe.evidence) == 5 and all("Relay access denied" in e for e in probe.evidence)


def test_password_guessing_per_address_and_account(postfix_log: PostfixLog, tmp_path: Path) -> None:
    for n in range(12):
        postfix_log.auth_failure("203.0.113.60", f"user{n}")  # one address, many accounts
    for n in range(12):
        postfix_log.auth_failure(f"203.0.113.{100 + n}", "ceo")  # one account, many addresses
    suspects = _suspects(postfix_log, tmp_path)
    found = _kinds(suspects)
    assert found["203.0.113.60"] == {"sasl_bruteforce"}
    assert found["ceo"] == {"sasl_bruteforce_account"}
    plain = next(s for s in suspects if s.subject == "ceo").score
    # the guessing worked: the account then logs in from one of the guessing addresses
    postfix_log.message("203.0.113.105", "ceo@our.example", ["x@far.example"], "ceo")
    after = next(s for s in _suspects(postfix_log, tmp_path) if s.subject == "ceo")
    assert after.kind == "sasl_password_guessed"
    assert after.score > plain
    assert "logged in successfully from 203.0.113.105" in after.reasons[0]


@pytest.mark.parametrize("field", ["relay_probe_count", "sasl_failures_per_ip"])
def test_thresholds_come_from_options(postfix_log: PostfixLog, tmp_path: Path, field: str) -> None:
    for _ in range(3):
        postfix_log.relay_denied("203.0.113.70")
        postfix_log.auth_failure("203.0.113.70", "x")
    assert _suspects(postfix_log, tmp_path) == []
    lowered = SuspectThresholds(**{field: 3})
    assert [s.subject for s in _suspects(postfix_log, tmp_path, thresholds=lowered)] == [
        "203.0.113.70"
    ]


def test_open_relay_is_flagged_where_the_traffic_says_it_happened(shared_log: Path) -> None:
    # postfix-mixed.traffic.json: "open-relay-abuse" — 300 messages accepted from the relay
    # scanners' addresses (127.0.2.x, outside the LAN, no AUTH) for outside recipients
    traffic = json.loads(TRAFFIC.read_text())
    expected = traffic["by_category"]["open-relay-abuse"]["messages-accepted"]
    report = summarize_logs_sync(SummaryOptions(paths=(str(shared_log),), internal_networks=LAN))
    (relay,) = [s for s in report.suspects if "open_relay" in s.kinds]
    assert relay.score >= max(s.score for s in report.suspects)
    assert f"had {expected} messages delivered to" in relay.reasons[0]
    assert "28 clients outside the internal networks" in relay.reasons[0]
    clients = {line.split("[")[2].split("]")[0] for line in relay.evidence if "client=" in line}
    assert clients and all(ip.startswith("127.0.2.") for ip in clients)
    assert "reject_unauth_destination" in relay.action and "mynetworks" in relay.action
    # nobody inside the LAN, and no inbound sender (127.0.1.x, mail for lab.test), is named
    assert "127.0.1." not in relay.reasons[0] and "127.0.0." not in relay.reasons[0]


def test_open_relay_from_a_log_written_for_it(postfix_log: PostfixLog, tmp_path: Path) -> None:
    # inbound mail for our domain from the internet: normal
    for n in range(5):
        postfix_log.message(
            "198.51.100.9", f"s{n}@far.example", ["bob@our.example"], "", "sent", "virtual"
        )
    # a stranger whose mail went out: the server relayed for it
    relayed = postfix_log.message("203.0.113.66", "spam@spam.example", ["v1@victim.example"])
    # an authenticated user from outside: allowed to relay
    postfix_log.message("203.0.113.77", "ann@our.example", ["x@far.example"], "ann")
    # a LAN host sending a little: not a stranger (and below the gateway rule)
    postfix_log.message("192.168.1.5", "printer@our.example", ["y@far.example"])
    # the machine itself (a content filter handing mail back): not a stranger
    postfix_log.message("127.0.0.1", "ann@our.example", ["z@far.example"])
    # a stranger writing to our alias that forwards outside (orig_to names our domain)
    postfix_log.add("postfix/smtpd", "F00D1: client=unknown[198.51.100.10]", 200)
    postfix_log.add("postfix/qmgr", "F00D1: from=<fan@far.example>, size=10, nrcpt=1", 400)
    postfix_log.add(
        "postfix/smtp",
        "F00D1: to=<info@gmail.example>, orig_to=<info@our.example>, relay=mx[192.0.2.1]:25, "
        "delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)",
        500,
    )
    suspects = _suspects(postfix_log, tmp_path)
    (relay,) = [s for s in suspects if s.kind == "open_relay"]
    assert suspects[0] is relay and relay.score >= 92
    assert (relay.subject, relay.subject_type) == ("this server", "server")
    assert "1 client outside the internal networks" in relay.reasons[0]
    assert "203.0.113.66 (1)" in relay.reasons[0] and "victim.example" in relay.reasons[0]
    assert f"{relayed}: client=unknown[203.0.113.66]" in relay.evidence[0]
    assert any("to=<v1@victim.example>" in line for line in relay.evidence)
    assert not any(ip in relay.reasons[0] for ip in ("198.51.100", "203.0.113.77", "127.0.0.1"))


def test_no_open_relay_without_strangers_mail_going_out(
    postfix_log: PostfixLog, tmp_path: Path
) -> None:
    postfix_log.message("198.51.100.9", "s@far.example", ["bob@our.example"], "", "sent", "virtual")
    postfix_log.relay_denied("203.0.113.66")  # refused: a probe, not a relay
    assert not [s for s in _suspects(postfix_log, tmp_path) if "open_relay" in s.kinds]
