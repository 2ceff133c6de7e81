"""`relaywatch policy serve|check`: the Postfix/Exim policy service and its main.cf safety check."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import subprocess
from pathlib import Path

from bot.cli.context import CliContext
from bot.exitcodes import ExitCode
from handlers.policy.check import PolicyCheckResult, check_policy

EPILOG = """\
examples:
  relaywatch policy serve                          # listen where [policy] listen says
  relaywatch policy serve --listen 127.0.0.1:10040
  relaywatch policy serve --listen unix:/var/spool/postfix/private/relaywatch
  relaywatch policy check                          # reads `postconf -n`
  relaywatch policy check --main-cf /etc/postfix/main.cf --json

exit codes (check): 0 safe, 1 a problem found, 2 usage error, 3 could not read the configuration
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "policy",
        help="run the Postfix/Exim policy service, or check main.cf's wiring to it",
        description=(
            "The policy service counts what clients submit, raises flood alarms and enforces "
            "containment entries (block, hold, throttle). `serve` runs only the service (the bot "
            "may run elsewhere, sharing the store); `check` reads Postfix's configuration and "
            "flags unsafe wiring."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="policy_action", metavar="ACTION", required=True)
    serve = actions.add_parser(
        "serve",
        help="run the policy service until stopped",
        description="Run the policy service until SIGTERM or Ctrl-C.",
        epilog="example:\n  relaywatch policy serve --listen 127.0.0.1:10040",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "--listen",
        help="override [policy] listen: host:port, [v6]:port or unix:/path (comma-separated)",
    )
    serve.set_defaults(run=run_serve)
    check = actions.add_parser(
        "check",
        help="check Postfix's policy-service wiring",
        description=(
            "Read `postconf -n` (or a main.cf) and flag a policy service that fails closed, a "
            "long timeout, permissive smtpd_relay_restrictions, a policy service placed where an "
            "answer could permit relaying, and Postfix older than 3.0."
        ),
        epilog=(
            "examples:\n  relaywatch policy check\n"
            "  relaywatch policy check --main-cf main.cf --json"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("--main-cf", metavar="FILE", help="read this main.cf, not `postconf -n`")
    check.add_argument(
        "--master-cf",
        metavar="FILE",
        help="read this master.cf's -o overrides, not `postconf -P` (default with --main-cf: none)",
    )
    check.add_argument(
        "--postfix-version", metavar="X.Y", help="assume this Postfix version (default: postconf's)"
    )
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.set_defaults(run=run_check)


# -- serve ------------------------------------------------------------------------------------


def run_serve(args: argparse.Namespace, ctx: CliContext) -> int:
    from bot.policy.server import PolicyService, ServiceSettings

    settings = ServiceSettings.from_config(ctx.config, args.listen)
    if not settings.endpoints:
        ctx.error(
            'nowhere to listen: set [policy] listen (e.g. "127.0.0.1:10040") or pass --listen'
        )
        return ExitCode.USAGE

    async def main() -> int:
        service = PolicyService(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, stop.set)
        try:
            await service.start()
        except OSError as exc:
            ctx.error(f"cannot listen on {args.listen or ctx.config.policy.listen}: {exc}")
            return ExitCode.INCOMPLETE
        ctx.error(f"policy service listening on {', '.join(service.addresses)}")
        try:
            await stop.wait()
        finally:
            await service.stop()
        return ExitCode.OK

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return ExitCode.OK


# -- check ------------------------------------------------------------------------------------


class ReadError(Exception):
    """The configuration could not be read (the message says why)."""


def _postconf(*args: str) -> str:
    postconf = shutil.which("postconf") or "/usr/sbin/postconf"
    if not Path(postconf).exists():
        raise ReadError("postconf not found: is Postfix installed? (or pass --main-cf FILE)")
    done = subprocess.run(
        [postconf, *args], capture_output=True, text=True, timeout=30, check=False
    )
    if done.returncode != 0:
        raise ReadError(f"postconf {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def _version(given: str | None) -> str:
    if given:
        return given
    try:
        return _postconf("-d", "-h", "mail_version").strip()
    except (ReadError, OSError, subprocess.TimeoutExpired):
        return ""


def run_check(args: argparse.Namespace, ctx: CliContext) -> int:
    if args.main_cf:
        try:
            text = Path(args.main_cf).read_text(errors="replace")
        except OSError as exc:
            ctx.error(f"cannot read {args.main_cf}: {exc.strerror}")
            return ExitCode.USAGE
    else:
        try:
            text = _postconf("-n")
        except (ReadError, OSError, subprocess.TimeoutExpired) as exc:
            ctx.error(str(exc))
            return ExitCode.INCOMPLETE
    master = ""
    if args.master_cf:
        try:
            master = Path(args.master_cf).read_text(errors="replace")
        except OSError as exc:
            ctx.error(f"cannot read {args.master_cf}: {exc.strerror}")
            return ExitCode.USAGE
    elif not args.main_cf:
        try:
            master = _postconf("-P")
        except (ReadError, OSError, subprocess.TimeoutExpired) as exc:
            ctx.error(str(exc))
            return ExitCode.INCOMPLETE
    result = check_policy(text, _version(args.postfix_version), master)
    if args.json:
        ctx.print_json(as_json(result))
    else:
        ctx.print(as_text(result))
    return ExitCode.PROBLEM if result.problems else ExitCode.OK


def as_json(result: PolicyCheckResult) -> dict:
    return {
        "postfix_version": result.version,
        "policy_services": [
            {
                "service": s.scope or "main.cf",
                "parameter": s.parameter,
                "endpoint": s.endpoint,
                "options": s.options,
            }
            for s in result.services
        ],
        "findings": [
            {
                "code": f.code,
                "severity": f.severity,
                "service": f.scope or "main.cf",
                "parameter": f.parameter,
                "message": f.message,
            }
            for f in result.findings
        ],
        "problems": len(result.problems),
    }


def as_text(result: PolicyCheckResult) -> str:
    lines = [f"Postfix {result.version or 'version unknown'}"]
    for service in result.services:
        options = ", ".join(f"{k}={v}" for k, v in service.options.items()) or "no options"
        where = f"{service.scope} " if service.scope else ""
        lines.append(f"policy service {service.endpoint} in {where}{service.parameter} ({options})")
    for finding in result.findings:
        mark = "PROBLEM" if finding.severity == "problem" else "note"
        lines.append(f"{mark}: {finding.message}")
    if not result.problems:
        lines.append("OK: the policy service is wired safely")
    return "\n".join(lines)
