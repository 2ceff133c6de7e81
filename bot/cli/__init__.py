"""The `relaywatch` command line.

Each subcommand is one module in this package exposing `register(subparsers)`, which adds its parser
and sets `run=<callable(args, ctx) -> int>`; adding a module adds the subcommand.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import pkgutil
import sys
from collections.abc import Sequence

from bot.cli.context import CliContext
from bot.config import ConfigError
from bot.exitcodes import ExitCode
from bot.failure import new_error_id, one_line
from bot.logsetup import configure_logging
from bot.store import StoreError

log = logging.getLogger("relaywatch")

EPILOG = """\
exit codes: 0 nothing wrong, 1 a problem was found (listed, open relay, suspects),
            2 usage or configuration error, 3 a check could not complete

examples:
  relaywatch blacklist 192.0.2.10
  relaywatch relaycheck mx.example.com:25 --json
  relaywatch mailsummary --since 24h
  relaywatch serve            # shell adapter when no Slack tokens are set
"""


class UsageErrorParser(argparse.ArgumentParser):
    """argparse, but usage errors are one line plus a hint, exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        from bot.render.terminal import visible  # the message can quote what was typed

        self.exit(
            ExitCode.USAGE, f"{self.prog}: error: {visible(message)} (see {self.prog} --help)\n"
        )


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; when argv names one subcommand, only its module is imported (fast start)."""
    parser = UsageErrorParser(
        prog="relaywatch",
        description=(
            "Keep a mail server off the spam lists: check DNS blocklists, test for an open relay, "
            "and find compromised hosts or accounts in the mail logs."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", metavar="PATH", help="TOML config file (env RELAYWATCH_CONFIG)")
    parser.add_argument(
        "--store",
        metavar="PATH",
        help="the SQLite store file (default: store.path in the config, env RELAYWATCH_STORE_PATH)",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr")
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=UsageErrorParser
    )
    names = _command_names()
    wanted = _requested_command(argv, names)
    for name in [wanted] if wanted else names:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def _command_names() -> list[str]:
    """Subcommand modules; each module is named after the subcommand it adds."""
    package = importlib.import_module(__name__)
    return sorted(
        info.name
        for info in pkgutil.iter_modules(package.__path__)
        if not info.name.startswith("_") and info.name != "context"
    )


def _requested_command(argv: Sequence[str] | None, names: list[str]) -> str | None:
    # The first word that is not a global option names the subcommand. Help and unknown words
    # need every subcommand registered, so they get None.
    words = list(sys.argv[1:] if argv is None else argv)
    while words:
        word = words.pop(0)
        if word in ("--config", "--store"):
            words = words[1:]
        elif (
            word.startswith(("--config=", "--store="))
            or word in ("-q", "--quiet")
            or (word.startswith("-v") and set(word[1:]) == {"v"})
            or word == "--verbose"
        ):
            continue
        else:
            return word if word in names else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    configure_logging(-1 if args.quiet else args.verbose)
    # a file name or log field that is not valid UTF-8 is shown escaped, not a UnicodeEncodeError
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    run = getattr(args, "run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return ExitCode.USAGE
    ctx = CliContext(config_path=args.config, store_path=getattr(args, "store", None))
    try:
        code = int(run(args, ctx))
        sys.stdout.flush()  # a full disk or a closed pipe shows here, not at interpreter exit
        return code
    except ConfigError as exc:
        from bot.render.terminal import visible

        print(f"relaywatch: {visible(str(exc))}", file=sys.stderr)
        return ExitCode.USAGE
    except StoreError as exc:
        # the check could not complete (its result, if any, was printed before this)
        print(f"relaywatch: {exc}", file=sys.stderr)
        return ExitCode.INCOMPLETE
    except KeyboardInterrupt:
        print("relaywatch: interrupted", file=sys.stderr)
        return ExitCode.INCOMPLETE
    except BrokenPipeError:
        # the reader went away (`relaywatch … | head`): not an error worth a traceback; point
        # stdout at devnull so the interpreter's final flush does not fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.OK
    except Exception as exc:
        return _unexpected(exc, args.verbose)
    finally:
        try:
            ctx.close()
        except Exception as exc:  # closing a broken store must not turn a result into a trace
            log.debug("closing the store failed: %s", one_line(exc))


def _unexpected(exc: Exception, verbosity: int) -> int:
    """A bug or an environment fault: one line with an error id (the traceback only with -vv).

    Exit 3, "could not complete": exit 1 would claim a problem was found."""
    error_id = new_error_id()
    try:
        sys.stdout.flush()
    except OSError:
        # stdout itself failed (a full disk): what it holds cannot go anywhere, and a second
        # failure at interpreter exit would print a traceback-like message
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    # -vv (debug logging) shows the traceback, tied to the message by the error id
    log.debug("unexpected error", exc_info=True, extra={"error_id": error_id})
    print(
        f"relaywatch: could not complete: {one_line(exc)} (error id {error_id}"
        + ("" if verbosity >= 2 else "; run with -vv for the traceback")
        + ")",
        file=sys.stderr,
    )
    return ExitCode.INCOMPLETE


def entry() -> None:
    try:
        code = main()
    except SystemExit:
        raise
    except Exception as exc:  # outside main's handling (parsing, logging set-up): one line too
        code = _unexpected(exc, 2 if "-vv" in sys.argv else 0)
    sys.exit(code)
