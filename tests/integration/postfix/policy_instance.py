"""A private Postfix whose listeners ask relaywatch's policy service (issue 10's integration suite).

Same sandbox as postfix_instance.py (own config and queue directories, every transport discard:),
with these listeners on 127.0.0.1 high ports:

- policy:      check_policy_service first in smtpd_recipient_restrictions and in
               smtpd_data_restrictions, with default_action=DUNNO (fails open); relay control in
               smtpd_relay_restrictions; SASL (Cyrus, sasldb, PLAIN/LOGIN) offered without TLS so
               the test can log in as an account
- failclosed:  the same policy service without default_action: Postfix's default
               (451 4.3.5 Server configuration problem) applies when the service is down

Needs root, postfix, and sasl2-bin (saslpasswd2) for the SASL account; .ci/run installs them.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.integration.postfix.postfix_instance import (
    MAIN_CF,
    SERVER_NAME,
    SERVICES,
    PostfixInstance,
    PostfixUnavailable,
    _free_ports,
    _write_certificate,
    availability_problem,
    start_and_wait,
)

SASL_REALM = "relaywatch.test"
SASL_PASSWORD = "correct horse battery staple"

SASL_MAIN_CF = """\
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = {root}/etc/sasl
smtpd_sasl_security_options = noanonymous
smtpd_sasl_local_domain = {realm}
# the policy tests send many messages from one client: never slow it down
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
smtpd_error_sleep_time = 0
"""

SMTPD_CONF = """\
pwcheck_method: auxprop
auxprop_plugin: sasldb
sasldb_path: {root}/etc/sasl/sasldb2
mech_list: PLAIN LOGIN
"""

POLICY = (
    "check_policy_service {{ inet:127.0.0.1:{port}, timeout=3s{default}, policy_context={ctx} }}"
)

POLICY_LISTENERS = """\
{policy} inet n - n - - smtpd
  -o syslog_name=postfix/policy
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_relay_restrictions=permit_mynetworks,permit_sasl_authenticated,reject_unauth_destination
  -o {{smtpd_recipient_restrictions={fail_open}, permit_mynetworks, reject_unauth_destination}}
  -o {{smtpd_data_restrictions={fail_open}}}
{failclosed} inet n - n - - smtpd
  -o syslog_name=postfix/failclosed
  -o smtpd_relay_restrictions=permit_mynetworks,reject_unauth_destination
  -o {{smtpd_recipient_restrictions={fail_closed}, permit_mynetworks, reject_unauth_destination}}
"""


def sasl_problem() -> str | None:
    if not shutil.which("saslpasswd2"):
        return "saslpasswd2 is not installed (apt-get install sasl2-bin)"
    return None


def start_policy_postfix(policy_port: int, accounts: dict[str, str]) -> PostfixInstance:
    """Starts the instance; `accounts` maps SASL user names (without realm) to passwords."""
    problem = availability_problem() or sasl_problem()
    if problem:
        raise PostfixUnavailable(problem)
    root = Path(tempfile.mkdtemp(prefix="relaywatch-policy-postfix-"))
    root.chmod(0o755)
    # Debian's smtpd looks for smtpd.conf in $config_directory/sasl (cyrus_sasl_config_path says
    # the same, for other builds)
    for sub in ("etc", "spool", "data", "etc/sasl"):
        (root / sub).mkdir()
    shutil.chown(root / "data", user="postfix")
    ports = _free_ports(2)
    listen = {"policy": f"127.0.0.1:{ports[0]}", "failclosed": f"127.0.0.1:{ports[1]}"}
    instance = PostfixInstance(root, dict(listen))
    _write_certificate(root)
    _write_sasldb(root, accounts)
    main_cf = MAIN_CF.format(root=root, name=SERVER_NAME, interfaces="127.0.0.1")
    main_cf += SASL_MAIN_CF.format(root=root, realm=SASL_REALM)
    (root / "etc" / "main.cf").write_text(main_cf)
    listeners = POLICY_LISTENERS.format(
        fail_open=POLICY.format(port=policy_port, default=", default_action=DUNNO", ctx="test"),
        fail_closed=POLICY.format(port=policy_port, default="", ctx="failclosed"),
        **listen,
    )
    (root / "etc" / "master.cf").write_text(listeners + SERVICES)
    start_and_wait(instance)
    return instance


def _write_sasldb(root: Path, accounts: dict[str, str]) -> None:
    sasl = root / "etc" / "sasl"
    (sasl / "smtpd.conf").write_text(SMTPD_CONF.format(root=root))
    database = sasl / "sasldb2"
    for user, password in accounts.items():
        done = subprocess.run(
            ["saslpasswd2", "-p", "-c", "-f", str(database), "-u", SASL_REALM, user],
            input=password,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if done.returncode != 0:
            raise PostfixUnavailable(f"saslpasswd2 failed: {done.stderr.strip()}")
    # smtpd runs as the postfix user and reads the database itself
    shutil.chown(database, user="postfix")
    database.chmod(0o600)


def queue_json(instance: PostfixInstance) -> list[dict]:
    """`postqueue -c DIR -j`: one JSON object per queued message."""
    import json

    done = subprocess.run(
        ["postqueue", "-c", str(instance.config_dir), "-j"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"postqueue -j failed: {done.stderr}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
