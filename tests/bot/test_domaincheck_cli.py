"""`relaywatch domaincheck` end to end against the test DNS server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.store import Store
from tests.fixtures.cli import run_cli
from tests.fixtures.dns_server import DnsTestServer
from tests.fixtures.domain_zones import GOOD_IP, MISMATCH_IP, add_domain_zones


@pytest.fixture(scope="module")
def dns_server() -> Iterator[DnsTestServer]:
    with DnsTestServer() as server:
        add_domain_zones(server)
        yield server


def env_for(tmp_path: Path, server: DnsTestServer) -> dict[str, str]:
    return {
        "RELAYWATCH_STORE_PATH": str(tmp_path / "rw.db"),
        "RELAYWATCH_DOMAIN_NAMESERVERS": server.nameserver,
        "RELAYWATCH_DOMAIN_TIMEOUT": "0.4",
    }


def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    return run_cli(env, *args)


def test_passing_domain_exits_0_with_documented_json(tmp_path, dns_server) -> None:
    env = env_for(tmp_path, dns_server)
    code, out, err = run(
        env, "domaincheck", "clean.test", "--ip", GOOD_IP, "--selector", "s2048", "--json"
    )
    assert code == 0, out + err
    data = json.loads(out)
    (domain,) = data["domains"]
    assert domain["domain"] == "clean.test"
    assert domain["status"] == "warn"  # no MTA-STS, no TLS-RPT: advice, not failure
    for check in domain["checks"]:
        assert set(check) >= {"id", "subject", "status", "summary", "fix"}
        assert check["status"] in ("pass", "warn")
    ids = {c["id"] for c in domain["checks"]}
    assert {"spf.ip", "dkim.key", "ptr.fcrdns", "mta_sts.policy", "tls_rpt.record"} <= ids
    with Store(tmp_path / "rw.db") as store:
        (record,) = store.checks("domain")
    assert (record.subject, record.status) == ("clean.test", "ok")
    assert record.result == data


def test_a_failure_exits_1_and_the_text_shows_the_fix(tmp_path, dns_server) -> None:
    code, out, _ = run(env_for(tmp_path, dns_server), "domaincheck", "plusall.test")
    assert code == 1
    assert "FAIL  spf.all" in out
    assert 'fix: plusall.test. IN TXT "v=spf1 -all"' in out


def test_ptr_mismatch_of_a_given_ip_exits_1(tmp_path, dns_server) -> None:
    code, out, _ = run(
        env_for(tmp_path, dns_server),
        "domaincheck",
        "clean.test",
        "--ip",
        MISMATCH_IP,
        "--selector",
        "s2048",
    )
    assert code == 1
    assert f"{MISMATCH_IP} (given) has PTR liar.good.test" in out


def test_unanswered_dns_exits_3(tmp_path, dns_server) -> None:
    code, out, _ = run(env_for(tmp_path, dns_server), "domaincheck", "broken.test", "--json")
    assert code == 3
    assert json.loads(out)["domains"][0]["status"] == "error"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["not a domain"], "is not a domain name"),
        (["clean.test", "--ip", "nope"], "is not an IP address"),
        (["clean.test", "--selector", "a b"], "is not a DKIM selector"),
        (["clean.test", "--nameserver", "resolver.example"], "expected an IP address"),
    ],
)
def test_bad_input_exits_2_and_checks_nothing(tmp_path, dns_server, args, words) -> None:
    code, out, err = run(env_for(tmp_path, dns_server), "domaincheck", *args)
    assert code == 2 and words in err and out == ""
    with Store(tmp_path / "rw.db") as store:
        assert store.checks("domain") == []


def test_no_domain_checks_the_watched_ones(tmp_path, dns_server) -> None:
    env = env_for(tmp_path, dns_server)
    code, _, err = run(env, "domaincheck")
    assert code == 2 and "watch list has no domains" in err
    with Store(tmp_path / "rw.db") as store:
        store.add_watch("domain", "plusall.test")
        store.add_watch("ip", GOOD_IP)
    code, out, _ = run(env, "domaincheck", "--json")
    assert code == 1
    (domain,) = json.loads(out)["domains"]
    assert domain["domain"] == "plusall.test"
    # the watch list's IP is a sending IP
    assert {"address": GOOD_IP, "origin": "watch list"} in domain["sending_ips"]


def test_terminal_text_shows_control_characters_inertly() -> None:
    from bot.render.domaincheck import text

    data = {
        "domains": [
            {
                "domain": "evil.test",
                "status": "fail",
                "counts": {"fail": 1},
                "checks": [
                    {
                        "id": "spf.record",
                        "subject": "evil.test",
                        "status": "fail",
                        "summary": "record \x1b[2Jcleared",
                        "fix": "x",
                    }
                ],
            }
        ]
    }
    shown = text(data)
    assert "\x1b" not in shown and "\\x1b[2Jcleared" in shown


def test_no_usable_resolver_exits_3_with_the_reason(tmp_path, monkeypatch) -> None:
    import dns.resolver

    def no_configuration(self, *args, **kwargs):
        raise dns.resolver.NoResolverConfiguration("no nameservers in /etc/resolv.conf")

    # the machine's resolver configuration is unusable: the check says so, it is never clean
    monkeypatch.setattr(dns.resolver.BaseResolver, "read_resolv_conf", no_configuration)
    env = {"RELAYWATCH_STORE_PATH": str(tmp_path / "rw.db")}
    code, out, err = run(env, "domaincheck", "example.com")
    assert code == 3
    assert "could not run the DNS queries" in err and out == ""
