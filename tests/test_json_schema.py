"""Real `--json` output of the four checks validates against the schemas in docs/schema/.

Every document here comes from the real engines through the CLI's own code path: relay tests
against local SMTP servers, blocklist lookups on the fixture DNS server, log summaries of real
Postfix and Exim logs, and a digest that runs all three.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from bot.cli import build_parser
from bot.cli.context import CliContext
from bot.config import load_config
from tests.fixtures.dns_server import DnsTestServer
from tests.fixtures.dnsbl_zones import (
    CLEAN_IP,
    LISTED_IP,
    MX_DOMAIN,
    UNHEALTHY_ZONES,
    populate,
    write_catalog,
)
from tests.fixtures.real_log import real_postfix_log
from tests.fixtures.relay_smtp import RelayPolicy, closed_rcpt, threaded_smtp_server
from tests.handlers.logsummary.conftest import PostfixLog

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "docs" / "schema"
EXIM_LOG = ROOT / "tests" / "handlers" / "logsummary" / "fixtures" / "exim-mainlog"


def validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{name}.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def assert_valid(name: str, document: dict) -> None:
    errors = sorted(validator(name).iter_errors(document), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


def cli(env: dict[str, str], *args: str) -> tuple[int, dict]:
    """Run one subcommand in-process with this environment; its stdout parsed as JSON."""
    config = load_config(env=env)
    out, err = StringIO(), StringIO()
    parsed = build_parser(list(args)).parse_args(list(args))
    ctx = CliContext(config=config, stdout=out, stderr=err)
    try:
        code = parsed.run(parsed, ctx)
    finally:
        ctx.close()
    return int(code), json.loads(out.getvalue())


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "RELAYWATCH_STORE_PATH": str(tmp_path / "rw.db"),
        # reverse DNS goes to a loopback port where nothing answers: no traffic leaves
        "RELAYWATCH_RELAY_NAMESERVERS": "127.0.0.1:9",
        "RELAYWATCH_RELAY_DNS_TIMEOUT": "0.2",
        "RELAYWATCH_RELAY_CONNECT_TIMEOUT": "1",
        "RELAYWATCH_RELAY_BANNER_TIMEOUT": "1",
        "RELAYWATCH_RELAY_COMMAND_TIMEOUT": "1",
    }


@pytest.fixture(scope="module")
def dns_server() -> Iterator[DnsTestServer]:
    with DnsTestServer() as server:
        populate(server)
        yield server


def with_dnsbl(env: dict[str, str], tmp_path: Path, server: DnsTestServer) -> dict[str, str]:
    return {
        **env,
        "RELAYWATCH_BLACKLIST_CATALOG_FILE": str(write_catalog(tmp_path)),
        "RELAYWATCH_BLACKLIST_NAMESERVERS": server.nameserver,
        "RELAYWATCH_BLACKLIST_TIMEOUT": "0.15",
        "RELAYWATCH_BLACKLIST_RETRIES": "1",
    }


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- relaycheck ---------------------------------------------------------------------------


def test_relaycheck_open_closed_and_unreachable(env: dict[str, str]) -> None:
    with (
        threaded_smtp_server(RelayPolicy()) as open_server,
        threaded_smtp_server(RelayPolicy(rcpt=closed_rcpt)) as closed_server,
    ):
        unreachable = f"127.0.0.1:{free_port()}"
        code, data = cli(
            env, "relaycheck", open_server.target, closed_server.target, unreachable, "--json"
        )
    assert code == 1
    verdicts = {t["target"]: t["verdict"] for t in data["targets"]}
    assert verdicts == {
        open_server.target: "open",
        closed_server.target: "closed",
        unreachable: "unreachable",
    }
    assert_valid("relaycheck", data)


def test_relaycheck_confirm_records_the_data_reply(env: dict[str, str]) -> None:
    with threaded_smtp_server(RelayPolicy(data="554 5.7.1 no relaying")) as server:
        code, data = cli(env, "relaycheck", server.target, "--confirm", "--json")
    assert code == 1
    assert any(test["data_reply"] for test in data["targets"][0]["tests"])
    assert_valid("relaycheck", data)


# -- blacklist ----------------------------------------------------------------------------


def test_blacklist_listed_clean_range_and_mx(env, tmp_path, dns_server) -> None:
    code, data = cli(
        with_dnsbl(env, tmp_path, dns_server),
        "blacklist",
        LISTED_IP,
        CLEAN_IP,
        "192.0.2.96/30",
        "--mx",
        MX_DOMAIN,
        "--json",
    )
    assert code in (1, 3)
    assert data["targets"][0]["listed"] and data["ranges"]
    assert any("origin" in target for target in data["targets"])
    assert_valid("blacklist", data)


def test_blacklist_with_unhealthy_and_failing_lists(env, tmp_path, dns_server) -> None:
    code, data = cli(with_dnsbl(env, tmp_path, dns_server), "blacklist", CLEAN_IP, "--json")
    assert code == 3  # the dead and silent lists make the answer incomplete
    assert {item["zone"] for item in data["unhealthy"]} & set(UNHEALTHY_ZONES)
    assert_valid("blacklist", data)


# -- mailsummary --------------------------------------------------------------------------


def synthetic_postfix_log(path: Path) -> Path:
    log = PostfixLog()
    for number in range(60):  # a LAN host sending straight out: a suspect
        log.message("192.168.1.50", "printer@example.org", [f"user{number}@remote.example"])
    log.message("203.0.113.9", "alice@example.org", ["bob@remote.example"], sasl_user="alice")
    for _ in range(6):
        log.relay_denied("198.51.100.77")
        log.auth_failure("198.51.100.78", "admin")
    return log.write(path)


@pytest.mark.parametrize("source", ["synthetic-postfix", "exim", "real-postfix"])
def test_mailsummary_reports(env, tmp_path, source: str) -> None:
    if source == "synthetic-postfix":
        path = synthetic_postfix_log(tmp_path / "mail.log")
    elif source == "exim":
        path = EXIM_LOG
    else:
        path = real_postfix_log()
    env = {**env, "RELAYWATCH_LOGSUMMARY_INTERNAL_NETWORKS": "192.168.0.0/16,127.0.0.0/24"}
    code, data = cli(env, "mailsummary", str(path), "--json")
    assert code in (0, 1)
    assert data["totals"]["received"] > 0
    if source != "exim":
        assert data["suspects"]
        assert all(len(item["per_hour"]) == 24 for item in data["suspects"])
    assert_valid("mailsummary", data)


def test_mailsummary_failure_document(env, tmp_path) -> None:
    env = {**env, "RELAYWATCH_LOGS_PATHS": str(tmp_path / "no-such.log")}
    code, data = cli(env, "mailsummary", "--json")
    assert code == 3 and data["error"]
    assert_valid("mailsummary", data)


def test_schema_refuses_a_report_without_its_totals() -> None:
    errors = list(validator("mailsummary").iter_errors({"suspects": [], "subject": "24h"}))
    assert errors


# -- digest ---------------------------------------------------------------------------------


def test_digest_after_running_every_check(env, tmp_path, dns_server) -> None:
    env = {
        **with_dnsbl(env, tmp_path, dns_server),
        "RELAYWATCH_BLACKLIST_DISABLED_ZONES": ",".join(UNHEALTHY_ZONES),
        "RELAYWATCH_LOGS_PATHS": str(synthetic_postfix_log(tmp_path / "mail.log")),
        "RELAYWATCH_LOGS_WINDOW": "3650d",
        "RELAYWATCH_LOGSUMMARY_INTERNAL_NETWORKS": "192.168.0.0/16",
    }
    with threaded_smtp_server(RelayPolicy(rcpt=closed_rcpt)) as server:
        cli_text(env, "watch", "add", LISTED_IP)
        cli_text(env, "watch", "add", "--kind", "server", server.target)
        cli_text(env, "watch", "add", "198.51.100.0/30")
        code, data = cli(env, "digest", "--json")
    assert code == 1 and data["status"] == "red"
    assert data["addresses"] and data["servers"] and data["mail"] and data["suspects"]
    assert_valid("digest", data)


def test_digest_with_nothing_checked(env) -> None:
    code, data = cli(env, "digest", "--cached", "--json")
    assert code == 3 and data["not_run"]
    assert_valid("digest", data)


def cli_text(env: dict[str, str], *args: str) -> None:
    config = load_config(env=env)
    parsed = build_parser(list(args)).parse_args(list(args))
    ctx = CliContext(config=config, stdout=StringIO(), stderr=StringIO())
    try:
        assert parsed.run(parsed, ctx) == 0
    finally:
        ctx.close()


def test_schemas_catch_a_changed_shape(env: dict[str, str]) -> None:
    with threaded_smtp_server(RelayPolicy(rcpt=closed_rcpt)) as server:
        _, data = cli(env, "relaycheck", server.target, "--json")
    assert_valid("relaycheck", data)
    data["targets"][0]["verdict"] = "probably fine"
    del data["targets"][0]["tests"][0]["reply"]
    assert len(list(validator("relaycheck").iter_errors(data))) == 2


@pytest.mark.parametrize("name", ["relaycheck", "blacklist", "mailsummary", "digest"])
def test_the_documented_examples_follow_the_schemas(name: str) -> None:
    page = (ROOT / "docs" / "json-output.md").read_text(encoding="utf-8")
    section = page.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]
    (example,) = re.findall(r"```json\n(.*?)\n```", section, re.S)
    assert_valid(name, json.loads(example))
