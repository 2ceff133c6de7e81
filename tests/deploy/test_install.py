"""The documented deployment produces a running service: deploy/install.sh creates the user, the
config and secrets files with the right owners and modes, the state directory and the unit; then
the unit's own command starts as that user, with the unit's environment, and serves Slack (Socket
Mode against the local Slack stand-in) until SIGTERM ends it cleanly.

Runs as root on a throwaway machine (CI sets CI=true; elsewhere set RELAYWATCH_TEST_DEPLOY=1): it
creates a system user. Everything else goes into a scratch root under /tmp.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.slack_api import SlackStandIn, slash_body

ROOT = Path(__file__).resolve().parents[2]
USER = "relaywatch-ci"
SYSTEM_PYTHON = Path("/usr/bin/python3")

pytestmark = pytest.mark.skipif(
    not (
        hasattr(os, "geteuid")
        and os.geteuid() == 0
        and shutil.which("useradd")
        and shutil.which("setpriv")
        and SYSTEM_PYTHON.exists()
        and (os.environ.get("CI") == "true" or os.environ.get("RELAYWATCH_TEST_DEPLOY") == "1")
    ),
    reason="creates a system user: root on a throwaway machine (CI or RELAYWATCH_TEST_DEPLOY=1)",
)


def as_user(name: str) -> list[str]:
    return ["setpriv", f"--reuid={name}", f"--regid={name}", "--init-groups", "--"]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _owner(path: Path) -> str:
    return pwd.getpwuid(path.stat().st_uid).pw_name


@pytest.fixture(scope="module")
def installed() -> Iterator[dict[str, Path]]:
    # not pytest's tmp_path: its parents are 0700, and the service user must reach these files
    scratch = Path(tempfile.mkdtemp(prefix="relaywatch-deploy-"))
    scratch.chmod(0o755)
    paths = {
        "etc": scratch / "etc" / "relaywatch",
        "state": scratch / "var" / "lib" / "relaywatch",
        "units": scratch / "systemd",
        # the distribution's Python: the service user cannot enter root's home, where the
        # test runner's interpreter may live
        "venv": scratch / "venv",
    }
    env = {
        **os.environ,
        "RELAYWATCH_USER": USER,
        "ETC_DIR": str(paths["etc"]),
        "STATE_DIR": str(paths["state"]),
        "UNIT_DIR": str(paths["units"]),
        "VENV": str(paths["venv"]),
        "PYTHON": str(SYSTEM_PYTHON),
    }
    try:
        done = subprocess.run(
            [str(ROOT / "deploy" / "install.sh")],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "relaywatch is installed" in done.stdout
        # a second run changes nothing and overwrites nothing
        paths["etc"].joinpath("config.toml").write_text("# edited by the admin\n")
        again = subprocess.run(
            [str(ROOT / "deploy" / "install.sh")], env=env, capture_output=True, text=True
        )
        assert again.returncode == 0, again.stderr
        assert paths["etc"].joinpath("config.toml").read_text() == "# edited by the admin\n"
        paths["etc"].joinpath("config.toml").unlink()
        subprocess.run(
            [str(ROOT / "deploy" / "install.sh")], env=env, check=True, capture_output=True
        )
        yield paths
    finally:
        subprocess.run(["userdel", USER], capture_output=True)
        subprocess.run(["groupdel", USER], capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)


def test_files_have_the_owners_and_modes_the_unit_needs(installed: dict[str, Path]) -> None:
    etc, state = installed["etc"], installed["state"]
    assert (_mode(etc), _owner(etc)) == (0o750, "root")
    assert etc.stat().st_gid == pwd.getpwnam(USER).pw_gid
    assert (_mode(etc / "config.toml"), _owner(etc / "config.toml")) == (0o640, "root")
    assert (_mode(etc / "secrets.env"), _owner(etc / "secrets.env")) == (0o600, USER)
    assert (_mode(state), _owner(state)) == (0o700, USER)
    unit = (installed["units"] / "relaywatch.service").read_text()
    assert f"User={USER}" in unit and f"EnvironmentFile={etc}/secrets.env" in unit


def test_the_config_it_writes_passes_config_check_as_the_service_user(
    installed: dict[str, Path],
) -> None:
    relaywatch = installed["venv"] / "bin" / "relaywatch"
    config = installed["etc"] / "config.toml"
    done = subprocess.run(
        [*as_user(USER), str(relaywatch), "--config", str(config), "config", "check"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "STATE_DIRECTORY": str(installed["state"])},
    )
    assert done.returncode == 0, done.stderr
    assert "SLACK_BOT_TOKEN = <not set>" in done.stdout


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_systemd_accepts_the_unit(installed: dict[str, Path]) -> None:
    done = subprocess.run(
        # --man=no: the man page is installed in the venv, not where man(1) looks
        ["systemd-analyze", "verify", "--man=no", str(installed["units"] / "relaywatch.service")],
        capture_output=True,
        text=True,
    )
    problems = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        # a container without systemd as PID 1 cannot load the manager's own units
        if "relaywatch.service" in line
    ]
    assert not problems, "\n".join(problems)


def _unit(path: Path) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def _environment_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


async def test_the_unit_command_serves_slack_as_the_service_user(
    installed: dict[str, Path],
) -> None:
    etc = installed["etc"]
    (etc / "secrets.env").write_text("SLACK_BOT_TOKEN=xoxb-deploy\nSLACK_APP_TOKEN=xapp-deploy\n")
    unit = _unit(installed["units"] / "relaywatch.service")
    (user,) = unit["User"]
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    for assignment in unit.get("Environment", []):
        key, _, value = assignment.partition("=")
        env[key] = value
    for path in unit.get("EnvironmentFile", []):
        env.update(_environment_file(Path(path.lstrip("-"))))
    # what systemd sets for StateDirectory=relaywatch (here, the scratch root's state dir)
    env["STATE_DIRECTORY"] = str(installed["state"])
    (exec_start,) = unit["ExecStart"]
    slack = await SlackStandIn().start()
    env["RELAYWATCH_SLACK_API_URL"] = slack.api_url
    process = await asyncio.create_subprocess_exec(
        *as_user(user),
        *shlex.split(exec_start),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: os.umask(0o077),  # the unit's UMask=
    )
    try:
        await slack.wait_for("socket.connect", within=30)
        payload = dict(urllib.parse.parse_qsl(slash_body("/mailhealth", "help")))
        await slack.send_envelope("slash_commands", payload, "env-deploy")
        (ack,) = await slack.wait_for("socket.ack", within=10)
        assert ack.params["envelope_id"] == "env-deploy"
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await slack.stop()
    stderr = (await process.stderr.read()).decode() if process.stderr else ""
    assert code == 0, stderr
    store = installed["state"] / "relaywatch.db"
    assert _owner(store) == user
    assert _mode(store) & 0o077 == 0
