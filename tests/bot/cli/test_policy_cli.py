"""`relaywatch policy check|serve` through the real console entry point."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from tests.bot.cli.test_main import ROOT, relaywatch
from tests.handlers.policy.policy_requests import request_bytes

SAFE = """\
compatibility_level = 3.6
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
smtpd_recipient_restrictions = check_policy_service { inet:127.0.0.1:10040, timeout=3s,
    default_action=DUNNO, policy_context=mx1 }, permit_mynetworks, reject_unauth_destination
smtpd_data_restrictions = check_policy_service { inet:127.0.0.1:10040, timeout=3s,
    default_action=DUNNO, policy_context=mx1 }
"""


def test_check_safe_main_cf(tmp_path: Path) -> None:
    main_cf = tmp_path / "main.cf"
    main_cf.write_text(SAFE)
    result = relaywatch(
        "policy", "check", "--main-cf", str(main_cf), "--postfix-version", "3.7.11", home=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "OK: the policy service is wired safely" in result.stdout


def test_check_flags_fail_closed_as_json(tmp_path: Path) -> None:
    main_cf = tmp_path / "main.cf"
    main_cf.write_text(SAFE.replace("default_action=DUNNO, ", "").replace("timeout=3s,", ""))
    result = relaywatch(
        "policy",
        "check",
        "--main-cf",
        str(main_cf),
        "--postfix-version",
        "2.11",
        "--json",
        home=tmp_path,
    )
    assert result.returncode == 1
    data = json.loads(result.stdout)
    codes = {f["code"] for f in data["findings"]}
    assert codes == {"fails_closed", "timeout_too_long", "postfix_too_old"}
    assert data["postfix_version"] == "2.11" and len(data["policy_services"]) == 2


def test_check_usage_and_incomplete(tmp_path: Path) -> None:
    missing = relaywatch("policy", "check", "--main-cf", str(tmp_path / "nope"), home=tmp_path)
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    # no main.cf where postconf looks: postconf fails, the check could not complete
    env = {"MAIL_CONFIG": str(tmp_path / "no-such-dir")}
    failed = relaywatch("policy", "check", env=env, home=tmp_path)
    assert failed.returncode == 3, failed.stderr
    assert failed.stderr.count("\n") == 1


def test_serve_answers_until_sigterm(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAYWATCH_", "SLACK_"))}
    env.update({"HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "state")})
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "policy", "serve", "--listen", "127.0.0.1:0"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stderr.readline()
        assert "policy service listening on 127.0.0.1:" in line, line
        port = int(line.strip().rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(request_bytes())
            assert sock.recv(100) == b"action=DUNNO\n\n"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_serve_without_listen_is_a_usage_error(tmp_path: Path) -> None:
    result = relaywatch("policy", "serve", home=tmp_path)
    assert result.returncode == 2 and "nowhere to listen" in result.stderr
