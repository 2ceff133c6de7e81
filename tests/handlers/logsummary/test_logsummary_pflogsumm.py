"""The summary of the shared real Postfix log equals Debian pflogsumm 1.1.5's report on it
(tests/data/postfix-mixed.pflogsumm.txt, from `pflogsumm --detail 10 --smtpd-stats`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from handlers.logsummary.engine import SummaryOptions, summarize_logs_sync


@pytest.fixture(scope="module")
def data(shared_log: Path) -> dict:
    report = summarize_logs_sync(
        SummaryOptions(paths=(str(shared_log),), internal_networks=("127.0.0.0/24",))
    )
    return report.to_dict(top=10)


def test_grand_totals_equal_pflogsumm(data: dict) -> None:
    assert data["totals"] == {
        "received": 3805,
        "delivered": 7125,
        "forwarded": 0,
        "deferred": 100,
        "deferrals": 605,
        "bounced": 120,
        "rejected": 1046,
        "reject_warnings": 16,
        "held": 6,
        "discarded": 5,
        # pflogsumm prints these as 56710k and 86579k (bytes / 1024, truncated)
        "bytes_received": 58071578,
        "bytes_delivered": 88656916,
        "senders": 374,
        "sending_hosts": 7,
        "recipients": 389,
        "recipient_hosts": 7,
    }
    assert data["totals"]["bytes_received"] // 1024 == 56710
    assert data["totals"]["bytes_delivered"] // 1024 == 86579


def test_smtpd_connections(data: dict) -> None:
    smtpd = data["smtpd"]
    assert smtpd["connections"] == 2500
    assert smtpd["hosts"] == 196
    assert smtpd["total_seconds"] == 17  # pflogsumm: 0:00:17 total connect time
    assert smtpd["top_hosts"][0] == {
        "host": "127.0.0.66",
        "connections": 140,
        "seconds": 1,
        "max_seconds": 1,
    }
    assert smtpd["top_hosts"][1]["host"] == "127.0.0.77"
    assert smtpd["top_hosts"][1]["connections"] == 73


def test_per_hour(data: dict) -> None:
    rows = {row["hour"]: row for row in data["per_hour"]}
    assert len(rows) == 24
    # rejected per hour includes reject warnings, holds and discards, as pflogsumm's table does
    assert rows[21] == {
        "hour": 21,
        "received": 3805,
        "delivered": 7125,
        "deferred": 605,
        "bounced": 120,
        "rejected": 1073,
    }
    assert all(
        not any(v for k, v in row.items() if k != "hour") for h, row in rows.items() if h != 21
    )


def test_top_senders_and_recipients(data: dict) -> None:
    top = data["top"]
    assert [(e["address"], e["messages"]) for e in top["senders_by_count"]] == [
        ("info@lab.test", 700),
        ("mallory@lab.test", 600),
        ("carol@lab.test", 202),
        ("alice@lab.test", 192),
        ("bob@lab.test", 164),
        ("dave@lab.test", 61),
        ("erin@lab.test", 58),
        ("noreply@lab.test", 56),
        ("frank@lab.test", 53),
        ("monitoring@lab.test", 47),
    ]
    assert [(e["address"], e["bytes"] // 1024) for e in top["senders_by_bytes"][:3]] == [
        ("carol@lab.test", 5213),
        ("alice@lab.test", 4478),
        ("bob@lab.test", 3727),
    ]
    assert [(e["address"], e["messages"]) for e in top["recipients_by_count"][:3]] == [
        ("carol@lab.test", 164),
        ("bob@lab.test", 138),
        ("alice@lab.test", 133),
    ]
    assert [(e["address"], e["bytes"] // 1024) for e in top["recipients_by_bytes"][:2]] == [
        ("bob@lab.test", 4278),
        ("carol@lab.test", 4232),
    ]


def test_domains(data: dict) -> None:
    domains = {e["domain"]: e for e in data["top"]["recipient_domains"]}
    assert (domains["lab.test"]["delivered"], domains["lab.test"]["bytes"] // 1024) == (2058, 48097)
    assert (domains["example.net"]["delivered"], domains["example.net"]["deferred"]) == (921, 241)
    assert domains["example.net"]["bytes"] // 1024 == 8749
    assert domains["example.net"]["max_delay"] == 299.0  # pflogsumm: 5.0 m
    assert (
        domains["deferred.example.net"]["delivered"],
        domains["deferred.example.net"]["deferred"],
    ) == (0, 364)
    by_bytes = [
        (e["domain"], e["bytes"] // 1024) for e in data["top"]["recipient_domains_by_bytes"]
    ]
    assert by_bytes[:3] == [("lab.test", 48097), ("example.net", 8749), ("lists.example.net", 6796)]
    sending = {e["domain"]: e for e in data["top"]["sending_domains"]}
    assert (sending["lab.test"]["messages"], sending["lab.test"]["bytes"] // 1024) == (2261, 27218)
    assert (
        sending["shop.example.com"]["messages"],
        sending["shop.example.com"]["bytes"] // 1024,
    ) == (246, 6792)


def test_reject_reasons_grouped(data: dict) -> None:
    groups = {(r["action"], r["stage"], r["reason"]): r["count"] for r in data["reject_reasons"]}
    assert groups == {
        ("reject", "RCPT", "Relay access denied"): 665,
        (
            "reject",
            "RCPT",
            "Recipient address rejected: User unknown in local recipient table",
        ): 207,
        ("reject", "RCPT", "Recipient address rejected: Greylisted"): 86,
        ("reject", "DATA", "Data command rejected: Access denied"): 60,
        ("reject", "MAIL", "5.3.4 Message size exceeds fixed limit"): 10,
        ("reject", "cleanup", "header"): 18,
        ("reject_warning", "cleanup", "header"): 16,
        ("hold", "cleanup", "header"): 6,
        ("discard", "cleanup", "header"): 5,
    }
    relay = data["rejects"]["reject"]["RCPT"]["Relay access denied"]["top"]
    assert list(relay.items())[:3] == [("127.0.2.9", 34), ("127.0.2.15", 32), ("127.0.2.29", 30)]
    unknown = data["rejects"]["reject"]["RCPT"][
        "Recipient address rejected: User unknown in local recipient table"
    ]["top"]
    assert list(unknown.items())[:2] == [("admin@lab.test", 28), ("test@lab.test", 26)]
    header = data["rejects"]["reject"]["cleanup"]["header"]["top"]
    assert header == {"Subject: VIAGRA special offer": 18}
    held = data["rejects"]["hold"]["cleanup"]["header"]["top"]
    assert held["Subject: [lab-hold] Holiday schedule"] == 2


def test_deferral_and_bounce_reasons(data: dict) -> None:
    assert data["deferral_reasons"] == {
        "error": {"total": 273, "top": {"127.0.0.1[127.0.0.1]:10026: Connection refused": 273}},
        "smtp": {
            "total": 332,
            "top": {
                "Temporary failure, please try again later (in reply to RCPT TO...": 241,
                "127.0.0.1[127.0.0.1]:10026: Connection refused": 91,
            },
        },
    }
    bounces = data["bounce_reasons"]
    assert bounces["127.0.0.1[127.0.0.1]:10025"] == {
        "total": 40,
        "top": {"User unknown (in reply to RCPT TO command)": 40},
    }
    assert bounces["virtual"]["total"] == 80
    assert bounces["virtual"]["top"]['unknown user: "marketing@lab.test"'] == 13


def test_sasl_successes_and_failures(data: dict) -> None:
    sasl = data["sasl"]
    assert sasl["messages_by_account"] == {
        "mallory@lab.test": 600,
        "carol@lab.test": 202,
        "alice@lab.test": 192,
        "submit@lab.test": 172,
        "bob@lab.test": 164,
    }
    assert list(sasl["failures_by_account"].items())[:2] == [("admin", 28), ("info@lab.test", 25)]
    assert sum(data["sasl"]["failures_by_account"].values()) <= 135
    assert next(iter(sasl["failures_by_ip"].items())) == ("127.0.3.14", 16)
    assert sasl["auth_by_ip"]["127.0.3.14"] == {"ok": 0, "failed": 16}
    assert sasl["messages_by_ip"]["127.0.0.77"] == 292


def test_warnings_fatal_panic(data: dict) -> None:
    problems = data["problems"]
    assert (problems["warnings"], problems["fatal"], problems["panic"]) == (197, 0, 0)
    smtpd = problems["warning_detail"]["smtpd"]
    assert smtpd["total"] == 197
    assert smtpd["top"]["SASL authentication failure: Password verification failed"] == 62
    assert smtpd["top"]["unknown[127.0.3.2]: SASL LOGIN authentication failed: authentic..."] == 11
    assert problems["master"] == {
        "daemon started -- version 3.7.11, configuration /etc/postfix": 1,
        "reload -- version 3.7.11, configuration /etc/postfix": 1,
    }


def test_every_line_parsed(data: dict) -> None:
    assert data["lines"] == 30706
    assert data["unparsed_lines"] == 0
    assert data["other_program_lines"] == 0
    assert data["window"]["first_line"].startswith("2026-11-28T21:30:47")
