"""A private Debian Exim 4.96 on 127.0.0.1 for the Exim log-summary suite, and eximstats.

Debian's exim4-daemon-light conflicts with postfix as a package, so .ci/run unpacks it (with
exim4-base, which carries eximstats) into .ci/cache/exim with `apt-get download` + `dpkg -x`
instead of installing it; EXIM_UNPACKED_ROOT names another unpacked tree. The binary runs with its
own configuration (-C, allowed for root), its own spool and log directory in a temp directory,
listens on a free loopback port, and delivers only into a maildir in that directory. Debian's
build fixes the exim user at "Debian-exim" (created by .ci/run when missing).

`start_exim(relay_port=N)` also lets 127.0.0.1 relay and sends mail for every other domain over
SMTP to 127.0.0.1:N; with N a closed port that mail stays queued, deferred (connection refused),
and nothing can leave the machine.
"""

from __future__ import annotations

import fcntl
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
UNPACKED = Path(os.environ.get("EXIM_UNPACKED_ROOT") or REPO / ".ci" / "cache" / "exim")
EXIM = UNPACKED / "usr" / "sbin" / "exim4"
EXIMSTATS = UNPACKED / "usr" / "sbin" / "eximstats"
EXIM_USER = "Debian-exim"
LOCAL_DOMAIN = "relaywatch.test"

CONFIG = """\
primary_hostname = mx.{domain}
domainlist local_domains = {domain}
hostlist relay_from_hosts = <; {relay_hosts}192.0.2.0/24 ; ::1
exim_path = {exim}
spool_directory = {root}/spool
log_file_path = {root}/log/%slog
pid_file_path = {root}/exim.pid
keep_environment =
log_selector = +incoming_port
message_size_limit = 2K
local_interfaces = 127.0.0.1
host_lookup =
rfc1413_hosts =
tls_advertise_hosts =
smtp_max_unknown_commands = 3
acl_smtp_rcpt = acl_check_rcpt
acl_smtp_data = acl_check_data

begin acl
acl_check_rcpt:
  deny   message = relay not permitted
         !domains = +local_domains
         !hosts = +relay_from_hosts
  deny   message = unknown user
         domains = +local_domains
         local_parts = nobody
  accept

acl_check_data:
  deny   message = content rejected
         condition = ${{if match{{$h_subject:}}{{reject-me}}}}
  accept

begin routers
{relay_router}local_user:
  driver = accept
  domains = +local_domains
  transport = local_delivery

begin transports
local_delivery:
  driver = appendfile
  directory = {root}/mail
  maildir_format
  user = {user}
{relay_transport}"""

# only with a relay port: every non-local domain goes to that port on loopback, and a failure
# there is retried for a day instead of bouncing (no retry rule would fail it at once)
RELAY_ROUTER = """\
loopback_relay:
  driver = manualroute
  domains = ! +local_domains
  route_list = * 127.0.0.1
  self = send
  transport = loopback_smtp
  no_more

"""
RELAY_TRANSPORT = """
loopback_smtp:
  driver = smtp
  port = {port}
  allow_localhost
  hosts_try_fastopen =

begin retry
*  *  F,1d,1h
"""


class EximUnavailable(Exception):
    """The unpacked Exim cannot run here (the message says why)."""


def availability_problem() -> str | None:
    if not EXIM.is_file():
        return (
            f"Debian's Exim is not unpacked at {UNPACKED} (.ci/run does it: apt-get download "
            "exim4-daemon-light exim4-base; dpkg -x)"
        )
    if not EXIMSTATS.is_file() or shutil.which("perl") is None:
        return "eximstats (exim4-base) or perl is missing"
    if os.geteuid() != 0:
        return "running Exim with its own configuration (-C) needs root"
    try:
        pwd.getpwnam(EXIM_USER)
    except KeyError:
        return f"the {EXIM_USER} user does not exist (Debian's build runs as it; .ci/run adds it)"
    probe = subprocess.run([str(EXIM), "-bV"], capture_output=True, text=True, check=False)
    if "Exim version" not in probe.stdout:
        return f"{EXIM} does not run: {(probe.stderr or probe.stdout).strip()[:200]}"
    return None


@dataclass
class EximInstance:
    root: Path
    port: int

    @property
    def config(self) -> Path:
        return self.root / "exim.conf"

    @property
    def mainlog(self) -> Path:
        return self.root / "log" / "mainlog"

    def exim(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(EXIM), "-C", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def queue_size(self) -> int:
        counted = self.exim("-bpc")
        return int(counted.stdout.strip()) if counted.stdout.strip().isdigit() else -1

    def settled(self, deadline: float = 20.0) -> None:
        """Waits until every received message has been delivered and logged Completed."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            text = self.mainlog.read_text() if self.mainlog.exists() else ""
            received = set(re.findall(r"^\S+ \S+ (\S+) <= ", text, re.M))
            completed = set(re.findall(r"^\S+ \S+ (\S+) Completed$", text, re.M))
            if received <= completed and self.queue_size() == 0:
                return
            time.sleep(0.1)
        raise AssertionError(f"Exim did not finish delivering:\n{self.mainlog.read_text()}")

    def deferrals(self) -> int:
        """Recipients logged deferred (==) so far."""
        text = self.mainlog.read_text() if self.mainlog.exists() else ""
        return len(re.findall(r"^\S+ \S+ \S+ == ", text, re.M))

    def idle(self, deferrals: int, deadline: float = 20.0) -> None:
        """Waits until `deferrals` recipients in all were logged deferred and no delivery process
        still holds a queued message (Exim locks each message's -D file while it works on it)."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.deferrals() >= deferrals and not any(
                _locked(data) for data in (self.root / "spool" / "input").glob("*-D")
            ):
                return
            time.sleep(0.1)
        log = self.mainlog.read_text() if self.mainlog.exists() else ""
        raise AssertionError(f"Exim did not settle with {deferrals} deferrals:\n{log}")

    def stop(self) -> None:
        pid_file = self.root / "exim.pid"
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGTERM)
            except (ProcessLookupError, ValueError):
                pass


def eximstats(log: Path) -> str:
    done = subprocess.run(
        ["perl", str(EXIMSTATS), str(log)], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


def grand_totals(report: str) -> dict[str, list[str]]:
    """eximstats' "Grand total summary" rows: name → the figures after it."""
    rows: dict[str, list[str]] = {}
    section = report.split("Grand total summary", 1)[1].split("\n\n", 1)[0]
    for line in section.splitlines():
        found = re.match(r"^\s+(Received|Delivered|Rejects|Temp Rejects)\s+(.*)$", line)
        if found:
            rows[found.group(1)] = found.group(2).split()
    return rows


def league(report: str, title: str) -> dict[str, int]:
    """One "Top 50 … by message count" table: label → count."""
    table = report.split(title, 1)[1].split("\n\n", 1)[0]
    found: dict[str, int] = {}
    for line in table.splitlines()[3:]:
        count, _, label = line.strip().partition("   ")
        if count.isdigit():
            found[label.strip()] = int(count)
    return found


def _locked(data_file: Path) -> bool:
    try:
        with data_file.open("r+b") as handle:
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB, 0, 0)  # released on close
    except FileNotFoundError:
        return False  # delivered or removed meanwhile
    except OSError:
        return True
    return False


def require_exim(relay_port: int | None = None) -> EximInstance:
    """A started instance for a test module; skips where Exim cannot run here, but fails under
    CI=true (.ci/run unpacks Exim there), so CI cannot pass without running the suite."""
    import pytest

    in_ci = os.environ.get("CI", "").lower() == "true"
    problem = availability_problem()
    try:
        if problem:
            raise EximUnavailable(problem)
        return start_exim(relay_port)
    except EximUnavailable as exc:
        if in_ci:
            pytest.fail(f"CI=true but the Exim integration suite cannot run: {exc}")
        pytest.skip(str(exc))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_exim(relay_port: int | None = None) -> EximInstance:
    problem = availability_problem()
    if problem:
        raise EximUnavailable(problem)
    # not pytest's tmp_path: the exim user must reach the spool, log and mail directories
    root = Path(tempfile.mkdtemp(prefix="relaywatch-exim-"))
    root.chmod(0o755)
    for sub in ("spool", "log", "mail"):
        (root / sub).mkdir()
        shutil.chown(root / sub, user=EXIM_USER, group=EXIM_USER)
    instance = EximInstance(root, _free_port())
    relaying = relay_port is not None
    instance.config.write_text(
        CONFIG.format(
            root=root,
            exim=EXIM,
            domain=LOCAL_DOMAIN,
            user=EXIM_USER,
            relay_hosts="127.0.0.1 ; " if relaying else "",
            relay_router=RELAY_ROUTER if relaying else "",
            relay_transport=RELAY_TRANSPORT.format(port=relay_port) if relaying else "",
        )
    )
    started = instance.exim(
        "-bd", "-oX", f"127.0.0.1:{instance.port}", "-oP", str(root / "exim.pid")
    )
    if started.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise EximUnavailable(f"exim -bd failed: {started.stderr.strip()[:300]}")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", instance.port), timeout=1) as sock:
                sock.settimeout(5)
                if sock.recv(100).startswith(b"220"):
                    sock.sendall(b"QUIT\r\n")
                    return instance
        except OSError:
            time.sleep(0.1)
    instance.stop()
    shutil.rmtree(root, ignore_errors=True)
    raise EximUnavailable("the Exim daemon never answered on its port")


def remove(instance: EximInstance) -> None:
    instance.stop()
    shutil.rmtree(instance.root, ignore_errors=True)
