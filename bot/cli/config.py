"""`relaywatch config check`: print the effective configuration, secrets masked."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from bot.cli.context import CliContext
from bot.config import effective_config_toml
from bot.exitcodes import ExitCode

INIT_EPILOG = """\
examples:
  relaywatch config init                       # ~/.config/relaywatch/config.toml + secrets.env
  sudo relaywatch config init /etc/relaywatch/config.toml
  relaywatch config init ./relaywatch.toml --secrets ./secrets.env
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "config",
        help="inspect the configuration",
        description="Inspect relaywatch's configuration.",
        epilog="examples: relaywatch config check; relaywatch config init",
    )
    actions = parser.add_subparsers(dest="config_action", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check",
        help="validate and print the effective configuration (secrets masked)",
        description=(
            "Load defaults, the config file and RELAYWATCH_* variables, validate and print the "
            "result as TOML with secrets masked. Exit 2 with a one-line reason when invalid."
        ),
        epilog="example: relaywatch --config /etc/relaywatch/config.toml config check",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.set_defaults(run=run_check)
    init = actions.add_parser(
        "init",
        help="write a commented config file with every key, and an owner-only secrets file",
        description=(
            "Write a config file listing every key with its default and what it does (commented "
            "out), and a secrets file (mode 0600) beside it for the Slack tokens. Never "
            "overwrites: an existing config file is an error, an existing secrets file is kept."
        ),
        epilog=INIT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    init.add_argument(
        "path", nargs="?", help="the config file (default: ~/.config/relaywatch/config.toml)"
    )
    init.add_argument(
        "--secrets", metavar="PATH", help="the secrets file (default: secrets.env beside it)"
    )
    init.set_defaults(run=run_init)


def run_check(args: argparse.Namespace, ctx: CliContext) -> int:
    ctx.print(effective_config_toml(ctx.config).rstrip("\n"))
    return ExitCode.OK


def default_init_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "relaywatch" / "config.toml"


def run_init(args: argparse.Namespace, ctx: CliContext) -> int:
    from bot.config_template import SECRETS_TEMPLATE, render_config_template

    config_path = Path(args.path) if args.path else default_init_path()
    secrets_path = Path(args.secrets) if args.secrets else config_path.with_name("secrets.env")
    if config_path.exists():
        ctx.error(f"{config_path} exists; not overwriting it (move it aside or name another path)")
        return ExitCode.USAGE
    keep_secrets = (
        secrets_path.exists()
    )  # an existing secrets file is kept as it is, never rewritten
    try:
        config_path.parent.mkdir(parents=True, exist_ok=True)
        secrets_path.parent.mkdir(parents=True, exist_ok=True)
        text = render_config_template(str(config_path), str(secrets_path.resolve()))
        if not keep_secrets:
            _write_new(secrets_path, SECRETS_TEMPLATE, 0o600)
        _write_new(config_path, text, 0o644)
    except OSError as exc:
        ctx.error(f"cannot write {exc.filename}: {exc.strerror}")
        return ExitCode.INCOMPLETE
    ctx.print(f"wrote {config_path} (every key, commented out)")
    if keep_secrets:
        ctx.print(f"kept the existing {secrets_path}")
        if secrets_path.stat().st_mode & 0o077:
            ctx.error(
                f"{secrets_path} is readable by group or others; run chmod 600 {secrets_path}"
            )
    else:
        ctx.print(f"wrote {secrets_path} (mode 0600): add the Slack tokens there")
    ctx.print(f"next: edit both, then `relaywatch --config {config_path} config check`")
    return ExitCode.OK


def _write_new(path: Path, text: str, mode: int) -> None:
    # O_EXCL: never clobber a file that appeared since the check; the mode is set at creation,
    # so a secrets file is never readable by others even for a moment
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(path, mode)  # the umask may have narrowed it; this is the mode we promise
