"""`relaywatch store migrate --from sqlite:PATH --to postgresql://…`: history to another store."""

from __future__ import annotations

import argparse
from pathlib import Path

from bot.cli.context import CliContext
from bot.exitcodes import ExitCode
from bot.store import Store, StoreError
from bot.store_copy import CopyRefused, copy_store, holdings
from bot.store_pg import is_postgres, redact, with_password

EPILOG = """\
stores: sqlite:PATH (or a plain path) | postgresql://user@host[:port]/database
        (a PostgreSQL password comes from RELAYWATCH_STORE_PASSWORD or secrets_file)

examples:
  relaywatch store migrate --from sqlite:/var/lib/relaywatch/relaywatch.db \\
      --to postgresql://relaywatch@db.example.com/relaywatch
  relaywatch store migrate --from sqlite:old.db --to postgresql://rw@127.0.0.1/rw --force

Stop every relaywatch process on the source first, then point store.url at the target.
Both stores are brought to this relaywatch's schema; the copy is one transaction on the target
and keeps every id (alert buttons and delisting cases still resolve); --force empties a target
that already holds data.

exit codes: 0 copied, 2 usage error or a target with data (nothing changed),
            3 a store could not be opened, read or written (the target is unchanged)
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "store",
        help="store maintenance: copy history from SQLite to PostgreSQL",
        description="Store maintenance.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="store_action", metavar="ACTION", required=True)
    migrate = actions.add_parser(
        "migrate",
        help="copy every table to another store, keeping ids",
        description="Copy every table of one store into another, keeping ids.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    migrate.add_argument("--from", dest="source", required=True, metavar="STORE")
    migrate.add_argument("--to", dest="target", required=True, metavar="STORE")
    migrate.add_argument("--force", action="store_true", help="empty a target that holds data")
    migrate.set_defaults(run=run)


def location(spec: str, password: str) -> str:
    """`sqlite:PATH` → PATH; a PostgreSQL URL gets the configured password unless it has one."""
    if is_postgres(spec):
        return with_password(spec, password)
    return spec.removeprefix("sqlite:")


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    password = ctx.config.secrets.relaywatch_store_password
    source_at, target_at = location(args.source, password), location(args.target, password)
    if not source_at or not target_at:
        ctx.error("store migrate: --from and --to each need a store (see --help)")
        return ExitCode.USAGE
    if not is_postgres(source_at) and not Path(source_at).is_file():
        ctx.error(f"store migrate: no store file at {source_at}")
        return ExitCode.USAGE
    if source_at == target_at:
        ctx.error("store migrate: --from and --to name the same store")
        return ExitCode.USAGE
    try:
        with Store(source_at) as source, Store(target_at) as target:
            try:
                report = copy_store(source, target, force=args.force)
            except CopyRefused as exc:
                ctx.error(f"store migrate: {exc}; nothing changed (--force replaces it)")
                return ExitCode.USAGE
            copied = holdings(target)
    except StoreError as exc:
        ctx.error(f"store migrate: {exc}")
        return ExitCode.INCOMPLETE
    except Exception as exc:  # the database's own error (sqlite3 or psycopg), as one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        ctx.error(f"store migrate: copy failed, the target is unchanged: {first}")
        return ExitCode.INCOMPLETE
    for table, count in report.rows.items():
        ctx.print(f"{table:<22} {count:>8}")
    where = redact(target_at) if is_postgres(target_at) else target_at
    ctx.print(f"copied {report.total} rows to {where}")
    if any(copied.get(t, 0) != n for t, n in report.rows.items() if t != "containment_revision"):
        ctx.error("store migrate: the target's row counts differ from what was copied")
        return ExitCode.INCOMPLETE
    return ExitCode.OK
