"""`relaywatch blacklist` end to end against the fixture DNS server and the test catalog."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main
from bot.store import Store
from tests.fixtures.cli import run_cli
from tests.fixtures.dns_server import DnsTestServer
from tests.fixtures.dnsbl_zones import (
    CLEAN_IP,
    HEALTHY_ZONES,
    LISTED_IP,
    MX_DOMAIN,
    UNHEALTHY_ZONES,
    populate,
    write_catalog,
)


@pytest.fixture(scope="module")
def dns_server() -> Iterator[DnsTestServer]:
    with DnsTestServer() as server:
        populate(server)
        yield server


def env_for(tmp_path: Path, server: DnsTestServer, healthy_only: bool = True) -> dict[str, str]:
    disabled = ",".join(UNHEALTHY_ZONES) if healthy_only else ""
    return {
        "RELAYWATCH_STORE_PATH": str(tmp_path / "rw.db"),
        "RELAYWATCH_BLACKLIST_CATALOG_FILE": str(write_catalog(tmp_path)),
        "RELAYWATCH_BLACKLIST_NAMESERVERS": server.nameserver,
        "RELAYWATCH_BLACKLIST_TIMEOUT": "0.15",
        "RELAYWATCH_BLACKLIST_RETRIES": "1",
        "RELAYWATCH_BLACKLIST_DISABLED_ZONES": disabled,
    }


def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    return run_cli(env, *args)


def test_listed_exits_1_with_documented_json(tmp_path, dns_server):
    code, out, _ = run(env_for(tmp_path, dns_server), "blacklist", LISTED_IP, "--json")
    assert code == 1
    data = json.loads(out)
    (target,) = data["targets"]
    assert target["target"] == LISTED_IP
    assert set(target) >= {"target", "listed", "failed", "unhealthy"}
    assert set(target) >= {"lists_answered", "lists_total"}
    zen = target["listed"][0]
    assert zen["zone"] == "zen.dnsbl.test"  # majors first
    assert zen["codes"] == ["127.0.0.2", "127.0.0.10"]
    assert zen["meanings"][0] == "SBL: spam source"
    assert zen["txt"].startswith("Listed in SBL")
    assert zen["delist_url"] == "https://delist.example/zen"
    assert target["lists_answered"] == target["lists_total"] == 3
    assert data["status"] == "problem"
    with Store(tmp_path / "rw.db") as store:
        (record,) = store.checks("blacklist")
        assert (record.subject, record.status) == (LISTED_IP, "problem")


def test_clean_exits_0_with_text(tmp_path, dns_server):
    code, out, _ = run(env_for(tmp_path, dns_server), "blacklist", CLEAN_IP)
    assert code == 0
    assert out.startswith("Not listed: every target clean on all 3 healthy lists")
    assert f"{CLEAN_IP}: not listed (3 of 3 healthy lists answered)" in out


def test_unhealthy_lists_make_a_clean_result_incomplete_exit_3(tmp_path, dns_server):
    env = env_for(tmp_path, dns_server, healthy_only=False)
    code, out, _ = run(env, "blacklist", CLEAN_IP, "--json")
    assert code == 3
    data = json.loads(out)
    assert {u["zone"]: u["reason"] for u in data["unhealthy"]} == UNHEALTHY_ZONES
    assert {u["zone"] for u in data["targets"][0]["unhealthy"]} == set(UNHEALTHY_ZONES)
    assert data["lists"]["healthy"] == 3 and data["lists"]["unhealthy"] == 4
    code, text_out, _ = run(env, "blacklist", CLEAN_IP)
    assert "Unhealthy lists" in text_out and "dead-or-wildcard" in text_out
    assert text_out.startswith("Incomplete")


def test_mx_and_nameserver_override(tmp_path, dns_server):
    env = env_for(tmp_path, dns_server)
    env["RELAYWATCH_BLACKLIST_NAMESERVERS"] = "192.0.2.1"  # would never answer
    code, out, _ = run(
        env, "blacklist", "--mx", MX_DOMAIN, "--nameserver", dns_server.nameserver, "--json"
    )
    assert code == 1
    data = json.loads(out)
    assert {t["target"] for t in data["targets"]} >= {MX_DOMAIN, LISTED_IP, CLEAN_IP}
    assert data["nameservers"] == [dns_server.nameserver]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["10.0.0.0/8"], "range too large"),
        (["not an ip!"], "not an IP address, CIDR range or host name"),
        (["192.0.2.1", "--nameserver", "resolver.example"], "expected an IP address"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, dns_server, args, message):
    code, out, err = run(env_for(tmp_path, dns_server), "blacklist", *args)
    assert code == 2 and out == ""
    assert message in err and err.count("\n") == 1


def test_no_target_uses_the_watch_list(tmp_path, dns_server):
    env = env_for(tmp_path, dns_server)
    assert run(env, "blacklist")[0] == 2  # empty watch list: usage error
    with Store(tmp_path / "rw.db") as store:
        store.add_watch("ip", CLEAN_IP)
        store.add_watch("server", "mx.example.test:25")  # servers are relay targets, skipped
    code, out, _ = run(env, "blacklist", "--json")
    assert code == 0
    assert [t["target"] for t in json.loads(out)["targets"]] == [CLEAN_IP]


def test_list_zones(tmp_path, dns_server):
    code, out, _ = run(env_for(tmp_path, dns_server), "blacklist", "--list-zones", "--json")
    assert code == 0
    lists = {item["zone"]: item for item in json.loads(out)["lists"]}
    assert lists["gone.dnsbl.test"]["status"] == "dead"
    assert lists["dead.dnsbl.test"]["enabled"] is False
    assert all(lists[z]["enabled"] for z in HEALTHY_ZONES)


def test_builtin_catalog_listing_needs_no_network(tmp_path):
    code, out, _ = run(
        {"RELAYWATCH_STORE_PATH": str(tmp_path / "rw.db")}, "blacklist", "--list-zones"
    )
    assert code == 0 and "zen.spamhaus.org" in out and "dnsbl.sorbs.net" in out


def test_help_has_an_example(capsys):
    with pytest.raises(SystemExit):
        main(["blacklist", "--help"])
    assert "relaywatch blacklist --mx example.com" in capsys.readouterr().out


def test_resolver_answering_nxdomain_for_everything_is_one_headline(tmp_path):
    # every zone exists and is empty: every name, the test points included, is NXDOMAIN
    with DnsTestServer() as server:
        for zone in [*HEALTHY_ZONES, *UNHEALTHY_ZONES]:
            server.add_zone(zone)
        code, out, _ = run(env_for(tmp_path, server, healthy_only=False), "blacklist", CLEAN_IP)
    assert code == 3
    first = out.splitlines()[0]
    assert first.startswith("Could not check: 0 of ")
    assert "your resolver answers NXDOMAIN for everything (offline, or filtering)" in first
    assert out.count("test-point-missing") == 1  # said once, not once per list
    assert f"{CLEAN_IP}: NOT CHECKED — no healthy list to ask" in out  # never "not listed"
    assert "not listed" not in out


def test_resolver_refusing_every_zone_is_one_headline(tmp_path):
    with DnsTestServer() as server:  # no zones at all: REFUSED for every name
        code, out, _ = run(env_for(tmp_path, server, healthy_only=False), "blacklist", CLEAN_IP)
    assert code == 3
    assert "this resolver refuses these zones" in out.splitlines()[0]
    assert out.count("— refused") + out.count("refused:") <= 1


def test_address_alone_and_inside_a_range_is_reported_once(tmp_path, dns_server):
    code, out, _ = run(
        env_for(tmp_path, dns_server), "blacklist", LISTED_IP, "192.0.2.96/30", "--json"
    )
    assert code == 1
    data = json.loads(out)
    assert [t["target"] for t in data["targets"]].count(LISTED_IP) == 1
    assert data["summary"]["listed"] == 1
    (summary,) = data["ranges"]
    assert summary["addresses_checked"] == 4 and summary["addresses_listed"] == 1
