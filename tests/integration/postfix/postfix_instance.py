"""A private Debian Postfix instance on 127.0.0.1 for the relay integration suite.

Its own config_directory, queue_directory and data_directory under one temporary directory; every
transport is discard:, so nothing can leave the machine even if a test went wrong. Listeners:

- closed:      an MX that refuses relaying (reject_unauth_destination), STARTTLS offered
- deferring:   Debian's default relay rule (defer_unauth_destination: 454 Relay access denied)
- open:        the classic mistake: mynetworks = 0.0.0.0/0 (trusts the whole internet)
- submission:  auth-only (SASL offered, everything refused without AUTH), TLS required

Needs root (master(8) starts as root and drops to the postfix user) and the postfix package.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.fixtures.certs import write_self_signed

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
SERVER_NAME = "mx.relaywatch.test"

MAIN_CF = """\
compatibility_level = 3.6
myhostname = {name}
mydomain = relaywatch.test
myorigin = $myhostname
mydestination = $myhostname, localhost, relaywatch.test
inet_interfaces = {interfaces}
inet_protocols = ipv4
# the probe comes from 127.0.0.1: it must NOT be trusted, or every listener would relay for it
mynetworks = 203.0.113.0/24
queue_directory = {root}/spool
data_directory = {root}/data
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
# nothing ever leaves: every transport discards
default_transport = discard:relaywatch test sink
relay_transport = discard:relaywatch test sink
local_transport = discard:relaywatch test sink
virtual_transport = discard:relaywatch test sink
alias_maps =
alias_database =
local_recipient_maps =
biff = no
smtpd_banner = $myhostname ESMTP relaywatch-test
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
smtpd_tls_cert_file = {root}/cert.pem
smtpd_tls_key_file = {root}/key.pem
"""

LISTENERS = """\
{closed} inet n - n - - smtpd
  -o syslog_name=postfix/closed
  -o smtpd_tls_security_level=may
  -o smtpd_relay_restrictions=permit_mynetworks,reject_unauth_destination
{deferring} inet n - n - - smtpd
  -o syslog_name=postfix/deferring
  -o smtpd_relay_restrictions=permit_mynetworks,permit_sasl_authenticated,defer_unauth_destination
{open} inet n - n - - smtpd
  -o syslog_name=postfix/open
  -o mynetworks=0.0.0.0/0
{submission} inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_tls_auth_only=yes
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
"""

SERVICES = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

QUEUES = ("maildrop", "incoming", "active", "deferred", "hold")


class PostfixUnavailable(Exception):
    """Postfix is not installed or cannot be started here (the message says why)."""


def availability_problem() -> str | None:
    if not Path(POSTFIX).exists():
        return "Debian's postfix is not installed (apt-get install -y postfix)"
    if os.geteuid() != 0:
        return "starting a private Postfix needs root (master(8) drops privileges itself)"
    try:
        import pwd

        pwd.getpwnam("postfix")
    except KeyError:
        return "the postfix user does not exist (install the postfix package)"
    return None


@dataclass
class PostfixInstance:
    root: Path
    listen: dict[str, str] = field(default_factory=dict)  # listener name → "address:port"

    @property
    def config_dir(self) -> Path:
        return self.root / "etc"

    def target(self, listener: str) -> str:
        return self.listen[listener]

    def queued_files(self) -> list[str]:
        """Every message file in the queues: must stay empty, relaywatch never completes one."""
        found: list[str] = []
        for queue in QUEUES:
            directory = self.root / "spool" / queue
            if directory.is_dir():
                found.extend(str(p) for p in directory.rglob("*") if p.is_file())
        return found

    def settled_queue_files(self, deadline: float = 5.0) -> list[str]:
        """Queue files left once Postfix has settled.

        smtpd has cleanup open a file in incoming/ at the first accepted RCPT, and cleanup deletes
        it on its own schedule after the client hangs up; so wait (bounded) for that, rather than
        racing it. A message that was really queued never goes away and is returned.
        """
        give_up = time.monotonic() + deadline
        while (found := self.queued_files()) and time.monotonic() < give_up:
            time.sleep(0.05)
        return found

    def messages_queued(self) -> list[str]:
        """qmgr log lines: a message that reached the active queue (there must be none)."""
        return [
            line for line in self.log().splitlines() if "postfix/qmgr" in line and "from=<" in line
        ]

    def log(self) -> str:
        path = self.root / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def postfix(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [POSTFIX, "-c", str(self.config_dir), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def master_pid(self) -> int | None:
        try:
            return int((self.root / "spool" / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        pid = self.master_pid()
        self.postfix("stop")
        # master.pid stays behind after a stop; watch the process itself
        deadline = time.monotonic() + 10
        while pid is not None and _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid is not None and _alive(pid):
            self.postfix("abort")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _free_ports(count: int) -> list[int]:
    # bind to port 0 to let the kernel choose; the listeners are written right after
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _write_certificate(root: Path) -> None:
    write_self_signed(root, SERVER_NAME, days=90)


def start_postfix(listen: dict[str, str] | None = None) -> PostfixInstance:
    """Writes the configuration, starts master(8) and waits until every listener answers.

    `listen` maps closed/deferring/open/submission to "address:port"; default: 127.0.0.1 and
    free high ports."""
    problem = availability_problem()
    if problem:
        raise PostfixUnavailable(problem)
    # not pytest's tmp_path: its parent is root-only (0700) and the postfix user must reach
    # its queue directory
    root = Path(tempfile.mkdtemp(prefix="relaywatch-postfix-"))
    root.chmod(0o755)
    for sub in ("etc", "spool", "data"):
        (root / sub).mkdir()
    shutil.chown(root / "data", user="postfix")
    names = ("closed", "deferring", "open", "submission")
    if listen is None:
        ports = _free_ports(len(names))
        listen = {name: f"127.0.0.1:{port}" for name, port in zip(names, ports, strict=True)}
    instance = PostfixInstance(root, dict(listen))
    # Postfix insists inet_interfaces be configured addresses; 127.0.2.x only exists as part of
    # lo's 127/8, so then listen on "all" and let master.cf's host:port pin each listener
    hosts = {value.rsplit(":", 1)[0] for value in listen.values()}
    interfaces = "127.0.0.1" if hosts == {"127.0.0.1"} else "all"
    _write_certificate(root)
    (root / "etc" / "main.cf").write_text(
        MAIN_CF.format(root=root, name=SERVER_NAME, interfaces=interfaces)
    )
    (root / "etc" / "master.cf").write_text(LISTENERS.format(**listen) + SERVICES)
    start_and_wait(instance)
    return instance


def start_and_wait(instance: PostfixInstance) -> None:
    """Starts master(8) and waits until every listener greets; on failure the instance's files
    are removed and PostfixUnavailable says why (with Postfix's own log)."""
    root = instance.root
    started = instance.postfix("start")
    if started.returncode != 0:
        log = instance.log()
        shutil.rmtree(root, ignore_errors=True)
        raise PostfixUnavailable(
            f"postfix start failed ({started.returncode}): {started.stderr.strip()}\n{log}"
        )
    deadline = time.monotonic() + 20
    pending = set(instance.listen.values())
    while pending and time.monotonic() < deadline:
        for value in list(pending):
            address, _, port = value.rpartition(":")
            try:
                with socket.create_connection((address, int(port)), timeout=1) as sock:
                    sock.settimeout(2)
                    if sock.recv(100).startswith(b"220"):
                        sock.sendall(b"QUIT\r\n")
                        pending.discard(value)
            except OSError:
                pass
        if pending:
            time.sleep(0.1)
    if pending:
        log = instance.log()
        instance.stop()
        shutil.rmtree(root, ignore_errors=True)
        raise PostfixUnavailable(f"postfix listeners {sorted(pending)} never answered:\n{log}")


def require_postfix() -> PostfixInstance:
    """A started instance for a test module; skips where Postfix cannot run here, but fails
    under CI=true, so CI cannot pass without running the Postfix suites."""
    import pytest

    in_ci = os.environ.get("CI", "").lower() == "true"
    problem = availability_problem()
    if problem:
        if in_ci:
            pytest.fail(f"CI=true but the Postfix integration suite cannot run: {problem}")
        pytest.skip(problem)
    try:
        return start_postfix()
    except PostfixUnavailable as exc:
        if in_ci:
            pytest.fail(str(exc))
        pytest.skip(str(exc))


def remove(instance: PostfixInstance) -> None:
    instance.stop()
    shutil.rmtree(instance.root, ignore_errors=True)
