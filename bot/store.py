"""The embedded SQLite store: watch list, check history, alerts, digest runs and the audit log.

WAL mode, one short transaction per write, and forward-only migrations keyed on PRAGMA user_version,
so a crash mid-run loses at most that run and never earlier history.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import os
import shutil
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from handlers.delisting import DelistCase
from handlers.policy.model import Containment, PolicyAlarm

log = logging.getLogger("relaywatch.store")

WATCH_KINDS = ("ip", "cidr", "domain", "server")

# MIGRATIONS[n] takes a database from schema version n to n+1. Append only; never edit one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE watch (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('ip', 'cidr', 'domain', 'server')),
        value TEXT NOT NULL,
        added_by TEXT NOT NULL DEFAULT '',
        added_at TEXT NOT NULL,
        UNIQUE (kind, value)
    );
    CREATE TABLE checks (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('ok', 'problem', 'failed')),
        result_json TEXT NOT NULL
    );
    CREATE INDEX checks_by_subject ON checks (kind, subject, finished_at);
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,
        subject_key TEXT NOT NULL,
        kind TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('open', 'closed')),
        summary TEXT NOT NULL,
        channel TEXT NOT NULL DEFAULT '',
        thread_ts TEXT NOT NULL DEFAULT '',
        opened_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        closed_at TEXT,
        acknowledged_by TEXT,
        acknowledged_at TEXT
    );
    CREATE UNIQUE INDEX one_open_alert_per_subject ON alerts (subject_key) WHERE state = 'open';
    CREATE TABLE digest_runs (
        id INTEGER PRIMARY KEY,
        scheduled_for TEXT NOT NULL UNIQUE,
        claimed_by TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL CHECK (status IN ('running', 'sent', 'failed')),
        channel TEXT NOT NULL DEFAULT '',
        ts TEXT NOT NULL DEFAULT '',
        error TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        user_id TEXT NOT NULL,
        channel_id TEXT NOT NULL DEFAULT '',
        command TEXT NOT NULL,
        args TEXT NOT NULL DEFAULT '',
        allowed INTEGER NOT NULL,
        reason TEXT NOT NULL DEFAULT ''
    );
    """,
    # 2: containment entries (the policy service enforces them), a revision counter so each
    # policy service notices a change with one cheap read, counter flushes, alarms to post.
    """
    CREATE TABLE containment (
        id INTEGER PRIMARY KEY,
        subject_kind TEXT NOT NULL
            CHECK (subject_kind IN ('account', 'host', 'sender', 'sender_domain')),
        subject TEXT NOT NULL,
        action TEXT NOT NULL CHECK (action IN ('block', 'hold', 'throttle')),
        limit_per_hour INTEGER NOT NULL DEFAULT 0,
        cut_sessions INTEGER NOT NULL DEFAULT 0,
        reason TEXT NOT NULL DEFAULT '',
        set_by TEXT NOT NULL DEFAULT '',
        set_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        channel TEXT NOT NULL DEFAULT '',
        thread_ts TEXT NOT NULL DEFAULT '',
        released_at TEXT,
        released_by TEXT NOT NULL DEFAULT '',
        reminded INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX containment_live ON containment (released_at, expires_at);
    CREATE TABLE containment_revision (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        revision INTEGER NOT NULL
    );
    INSERT INTO containment_revision (id, revision) VALUES (1, 0);
    CREATE TABLE policy_counters (
        window_start TEXT NOT NULL,
        window_seconds INTEGER NOT NULL,
        subject_kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        source TEXT NOT NULL DEFAULT '',
        messages INTEGER NOT NULL DEFAULT 0,
        recipients INTEGER NOT NULL DEFAULT 0,
        bytes INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (window_start, window_seconds, subject_kind, subject, source)
    );
    CREATE TABLE policy_alarms (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        rule TEXT NOT NULL,
        subject_kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        alarm_json TEXT NOT NULL,
        posted_at TEXT
    );
    CREATE INDEX policy_alarms_unposted ON policy_alarms (posted_at);
    """,
    # 3: delisting cases: each listing of a watched subject, followed until the list drops it.
    """
    CREATE TABLE delist_cases (
        id INTEGER PRIMARY KEY,
        subject TEXT NOT NULL,
        zone TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('listed', 'removed')),
        first_seen TEXT NOT NULL,
        codes TEXT NOT NULL DEFAULT '',
        txt TEXT NOT NULL DEFAULT '',
        alert_id INTEGER,
        cause_fixed_by TEXT NOT NULL DEFAULT '',
        cause_fixed_at TEXT,
        requested_by TEXT NOT NULL DEFAULT '',
        requested_at TEXT,
        removed_at TEXT,
        next_check_at TEXT,
        overdue_noted INTEGER NOT NULL DEFAULT 0,
        relistings INTEGER NOT NULL DEFAULT 0,
        UNIQUE (subject, zone)
    );
    CREATE INDEX delist_cases_due ON delist_cases (state, next_check_at);
    """,
    # 4: a claim with a lease for every message posted (alert opening, follow-up, digest): who
    # posts it and until when; a crashed poster's lease runs out and another process takes over.
    # A follow-up carries its text, so whoever takes over can post it. The leader lease elects the
    # one replica that runs the scheduled jobs on SQLite (PostgreSQL uses an advisory lock).
    """
    CREATE TABLE post_claims (
        claim_key TEXT PRIMARY KEY,
        claimed_by TEXT NOT NULL,
        lease_until TEXT NOT NULL,
        channel TEXT NOT NULL DEFAULT '',
        thread_ts TEXT NOT NULL DEFAULT '',
        text TEXT NOT NULL DEFAULT '',
        done_at TEXT,
        ts TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX post_claims_pending ON post_claims (done_at, lease_until);
    CREATE TABLE leader_lease (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        lease_until TEXT NOT NULL
    );
    """,
    # 5: several policy services (replicas) on one store: each adds its account messages per
    # clock window under its own name (source), thresholds are checked against the sum; and one
    # alarm per rule, subject and clock window, however many replicas cross it at once.
    """
    CREATE TABLE policy_window_counts (
        window_start TEXT NOT NULL,
        window_seconds INTEGER NOT NULL,
        subject_kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        source TEXT NOT NULL,
        messages INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (window_start, window_seconds, subject_kind, subject, source)
    );
    ALTER TABLE policy_alarms ADD COLUMN window_start TEXT;
    CREATE UNIQUE INDEX one_policy_alarm_per_window
        ON policy_alarms (rule, subject_kind, subject, window_start);
    """,
]

# how long a poster may take before another process assumes it died and posts in its place
POST_LEASE = timedelta(minutes=2)
# a digest first refreshes stale checks (a relay battery can take minutes), so it gets longer
DIGEST_LEASE = timedelta(minutes=15)


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class WatchItem:
    kind: str
    value: str
    added_by: str
    added_at: str


@dataclass(frozen=True)
class CheckRecord:
    id: int
    kind: str
    subject: str
    started_at: str
    finished_at: str
    status: str
    result: dict[str, Any]


@dataclass(frozen=True)
class AlertRecord:
    id: int
    subject_key: str
    kind: str
    state: str
    summary: str
    channel: str
    thread_ts: str
    opened_at: str
    updated_at: str
    closed_at: str | None
    acknowledged_by: str | None
    acknowledged_at: str | None


@dataclass(frozen=True)
class DigestRun:
    id: int
    scheduled_for: str
    claimed_by: str
    started_at: str
    finished_at: str | None
    status: str
    channel: str
    ts: str
    error: str


@dataclass(frozen=True)
class PostClaim:
    """One message to post, claimed by `claimed_by` until `lease_until`; done once `done_at`."""

    claim_key: str
    claimed_by: str
    lease_until: str
    channel: str
    thread_ts: str
    text: str
    done_at: str | None
    ts: str


@dataclass(frozen=True)
class AuditEntry:
    at: str
    user_id: str
    channel_id: str
    command: str
    args: str
    allowed: bool
    reason: str


@dataclass(frozen=True)
class PendingPost:
    """A message to claim: its key, who posts it, for how long, and (for a follow-up) what."""

    claim_key: str
    claimed_by: str
    lease: timedelta = POST_LEASE
    channel: str = ""
    thread_ts: str = ""
    text: str = ""


def digest_claim_key(scheduled_for: str) -> str:
    return f"digest:{scheduled_for}"


class StoreError(Exception):
    """The store cannot be used (missing, damaged, foreign, locked, full, too new); the message is
    one line saying what is wrong with which file and what to do about it.

    `kind` lets a caller decide without parsing the message: "locked" and "full" may pass (retry
    or record later), the others need an operator."""

    def __init__(self, message: str, kind: str = "other") -> None:
        super().__init__(message)
        self.kind = kind


# how long a write waits for another process's lock before giving up with a StoreError
BUSY_TIMEOUT_SECONDS = 10.0
_USE_ANOTHER = "use another file with --store PATH (config store.path)"


def store_fault(
    path: Path | str, exc: BaseException, busy_timeout: float = BUSY_TIMEOUT_SECONDS
) -> StoreError:
    """Turns an SQLite or OS error about the store into one actionable line."""
    reason = str(exc).strip() or type(exc).__name__
    lowered = reason.lower()
    kind = "other"
    if "locked" in lowered or "busy" in lowered:
        kind = "locked"
        advice = (
            f"another process kept it locked for over {busy_timeout:g} s (store.busy_timeout); "
            f"try again, and see which process holds it with `fuser {path}`"
        )
    elif "malformed" in lowered or "not a database" in lowered or "corrupt" in lowered:
        kind = "damaged"
        advice = (
            "the file is damaged: restore it from a backup, or move it aside (relaywatch then "
            f"starts an empty store), or {_USE_ANOTHER}"
        )
    elif "full" in lowered or "no space" in lowered or "too large" in lowered or _no_room(path):
        kind = "full"
        advice = f"no room left on its file system: free some space, or {_USE_ANOTHER}"
    elif "readonly" in lowered or "read-only" in lowered or "permission" in lowered:
        kind = "unwritable"
        advice = f"this user cannot write it: fix its owner or mode, or {_USE_ANOTHER}"
    elif "unable to open" in lowered or "is a directory" in lowered:
        kind = "unopenable"
        advice = (
            "the path is not a file this user can open (a directory? a missing or unwritable "
            f"directory?): {_USE_ANOTHER}"
        )
    else:
        advice = f"restore it from a backup, or {_USE_ANOTHER}"
    return StoreError(f"store {path}: {reason}; {advice}", kind)


def _no_room(path: Path | str) -> bool:
    """SQLite reports a full disk as a plain "disk I/O error" when it cannot create its WAL or
    shared-memory file: ask the file system."""
    try:
        return shutil.disk_usage(Path(path).parent).free < (1 << 16)
    except OSError:
        return False


class _Cursor(sqlite3.Cursor):
    """A cursor whose SQLite errors are StoreErrors naming the file (see store_fault)."""

    store_path: Path | str = ""
    busy_timeout: float = BUSY_TIMEOUT_SECONDS

    def execute(self, sql: str, parameters: Any = (), /) -> _Cursor:
        try:
            try:
                return super().execute(sql, parameters)  # type: ignore[return-value]
            except UnicodeEncodeError:
                # a file name or argument that is not valid UTF-8 (surrogate escapes from the OS)
                # is stored escaped rather than refused
                return super().execute(sql, _storable(parameters))  # type: ignore[return-value]
        except sqlite3.Error as exc:
            raise store_fault(self.store_path, exc, self.busy_timeout) from exc

    def fetchone(self) -> Any:
        try:
            return super().fetchone()
        except sqlite3.Error as exc:
            raise store_fault(self.store_path, exc, self.busy_timeout) from exc

    def fetchall(self) -> list[Any]:
        try:
            return super().fetchall()
        except sqlite3.Error as exc:
            raise store_fault(self.store_path, exc, self.busy_timeout) from exc

    def __next__(self) -> Any:
        try:
            return super().__next__()
        except sqlite3.Error as exc:
            raise store_fault(self.store_path, exc, self.busy_timeout) from exc


def _storable(parameters: Any) -> Any:
    def fix(value: Any) -> Any:
        if isinstance(value, str):
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value

    if isinstance(parameters, dict):
        return {key: fix(value) for key, value in parameters.items()}
    return tuple(fix(value) for value in parameters)


class _Connection(sqlite3.Connection):
    """A connection whose statements run on _Cursor, so every caller sees StoreError."""

    store_path: Path | str = ""
    busy_timeout: float = BUSY_TIMEOUT_SECONDS

    def execute(self, sql: str, parameters: Any = (), /) -> _Cursor:  # type: ignore[override]
        return self._cursor().execute(sql, parameters)

    def executemany(self, sql: str, rows: Any, /) -> _Cursor:  # type: ignore[override]
        cursor = self._cursor()
        try:
            cursor.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise store_fault(self.store_path, exc, self.busy_timeout) from exc
        return cursor

    def _cursor(self) -> _Cursor:
        cursor = self.cursor(_Cursor)
        cursor.store_path = self.store_path
        cursor.busy_timeout = self.busy_timeout
        return cursor


def _created_tables(scripts: list[str]) -> set[str]:
    """The tables the given migration scripts leave behind."""
    tables: set[str] = set()
    for script in scripts:
        for statement in _split_sql(script):
            words = statement.split()
            if [w.upper() for w in words[:2]] == ["CREATE", "TABLE"] and len(words) > 2:
                tables.add(words[2].lower())
            elif [w.upper() for w in words[:2]] == ["DROP", "TABLE"] and len(words) > 2:
                tables.discard(words[-1].lower())
    return tables


def prepare_store_file(path: Path) -> None:
    """The store's directory (0700 when we create it) and file (0600 when we create it).

    It holds log evidence with addresses and accounts, so nobody but its owner reads it. An
    existing file readable by group or others is left alone, with a warning saying how to fix it.
    """
    try:
        if not path.parent.is_dir():
            path.parent.mkdir(mode=0o700, parents=True)
        if path.is_dir():
            raise StoreError(f"store {path}: is a directory; {_USE_ANOTHER}", "unopenable")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
    except FileExistsError:
        mode = path.stat().st_mode
        if stat.S_ISREG(mode) and mode & 0o077:
            log.warning(
                "the store is readable by other users; it holds log evidence: chmod 600 %s",
                path,
                extra={"mode": oct(stat.S_IMODE(mode))},
            )
    except OSError as exc:
        raise StoreError(
            f"store {path}: cannot create it ({exc.strerror or exc}); {_USE_ANOTHER}",
            "unopenable",
        ) from None


# transaction() takes the lock itself; now() reads the clock only, so the event loop may call it
# while a worker thread waits for SQLite
_UNLOCKED = ("transaction", "now")


def _serialized(cls: type) -> type:
    """Runs every public method under the store's lock.

    The bot keeps blocking store calls off its event loop by running them in worker threads; they
    share one connection (check_same_thread=False), and the lock keeps two threads from
    interleaving statements inside each other's transactions.
    """
    for name, member in list(vars(cls).items()):
        if name.startswith("_") or name in _UNLOCKED or not inspect.isfunction(member):
            continue
        setattr(cls, name, _locked(member))
    return cls


def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self: Store, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return call


@_serialized
class Store:
    """One SQLite file or one PostgreSQL database (a `postgresql://` URL; bot/store_pg.py speaks
    the same SQL to it); safe to call from several threads (calls are serialized)."""

    def __init__(
        self,
        path: Path | str,
        clock: Callable[[], datetime] = utc_now,
        busy_timeout: float = BUSY_TIMEOUT_SECONDS,
    ) -> None:
        self.clock = clock
        self.busy_timeout = busy_timeout
        self._lock = threading.RLock()
        if isinstance(path, str) and path.startswith(("postgresql://", "postgres://")):
            self.path: Path | str = path  # reopening elsewhere (a worker thread) takes this
            self.backend = "postgresql"
            self._open_postgres(path)
            self.migrate()
            return
        self.path = Path(path)
        self.backend = "sqlite"
        if str(path) != ":memory:":
            prepare_store_file(self.path)
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a transaction is exactly
            # what `transaction()` wraps.
            self.db = sqlite3.connect(
                str(path),
                isolation_level=None,
                timeout=busy_timeout,
                check_same_thread=False,
                factory=_Connection,
            )
        except sqlite3.Error as exc:
            raise store_fault(path, exc, busy_timeout) from None
        self.db.store_path = path  # type: ignore[attr-defined]
        self.db.busy_timeout = busy_timeout  # type: ignore[attr-defined]
        try:
            self.db.row_factory = sqlite3.Row
            self._refuse_foreign()  # before anything writes (even journal_mode changes the file)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.migrate()
        except BaseException:
            self.db.close()
            raise

    def _refuse_foreign(self) -> None:
        """A database that is not ours is refused by its tables, whatever its user_version says:
        migrating (or writing) someone else's file would damage it."""
        tables = {
            str(row[0]).lower()
            for row in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not str(row[0]).startswith("sqlite_")
        }
        version = self.schema_version
        if version > len(MIGRATIONS):
            return  # migrate() refuses it as newer than this program, and writes nothing
        expected = _created_tables(MIGRATIONS[:version])
        if (version == 0 and tables) or not expected <= tables:
            missing = sorted(expected - tables)
            found = ", ".join(sorted(tables)[:5]) or "no tables"
            raise StoreError(
                f"store {self.path}: not a relaywatch store (schema version {version}, "
                f"{found}{', …' if len(tables) > 5 else ''}"
                + (f"; missing {', '.join(missing[:5])}" if missing else "")
                + f"); move it aside or {_USE_ANOTHER}",
                "foreign",
            )

    def _open_postgres(self, url: str) -> None:
        import psycopg  # only a PostgreSQL store needs it

        from bot import store_pg

        try:
            self.db: Any = store_pg.PgConnection(url, store_pg.id_tables(MIGRATIONS))
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StoreError(f"cannot open store {store_pg.redact(url)}: {reason}") from None

    @property
    def location(self) -> str:
        """Where the store is, fit for messages (a PostgreSQL URL without its password)."""
        if self.backend == "postgresql":
            from bot.store_pg import redact

            return redact(str(self.path))
        return str(self.path)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> None:
        version = self._checked_version()
        while version < len(MIGRATIONS):
            # the version is read again under the write lock: of two processes starting at once,
            # the second finds the first one's work done instead of running it twice
            with self.transaction():
                version = self._checked_version()
                if version == len(MIGRATIONS):
                    break
                for statement in _split_sql(MIGRATIONS[version]):
                    self.db.execute(statement)
                version += 1
                self.db.execute(f"PRAGMA user_version = {version}")

    def _checked_version(self) -> int:
        version = self.schema_version
        if version > len(MIGRATIONS):
            raise StoreError(
                f"store {self.location} has schema version {version}, newer than this relaywatch "
                f"({len(MIGRATIONS)}); upgrade relaywatch",
                "newer",
            )
        return version

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        # IMMEDIATE takes the write lock up front, so two processes never interleave a
        # read-then-write (the digest claim relies on this).
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                # SQLite may already have rolled back (a full disk does): a failing ROLLBACK must
                # not hide the error that caused it
                if self.db.in_transaction:
                    with suppress(StoreError, *self._backend_errors()):
                        self.db.execute("ROLLBACK")
                raise
            try:
                self.db.execute("COMMIT")
            except (StoreError, *self._backend_errors()):
                if self.db.in_transaction:
                    with suppress(StoreError, *self._backend_errors()):
                        self.db.execute("ROLLBACK")
                raise

    def _backend_errors(self) -> tuple[type[BaseException], ...]:
        if self.backend != "postgresql":
            return ()
        import psycopg

        return (psycopg.Error,)

    def now(self) -> str:
        return iso(self.clock())

    # -- watch list -------------------------------------------------------------------------

    def add_watch(self, kind: str, value: str, added_by: str = "") -> bool:
        """Adds an item; False when it was already there."""
        if kind not in WATCH_KINDS:
            raise ValueError(f"watch kind must be one of {', '.join(WATCH_KINDS)}")
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO watch (kind, value, added_by, added_at) VALUES (?, ?, ?, ?)",
                (kind, value, added_by, self.now()),
            )
            return cursor.rowcount == 1

    def remove_watch(self, kind: str, value: str) -> bool:
        with self.transaction() as db:
            cursor = db.execute("DELETE FROM watch WHERE kind = ? AND value = ?", (kind, value))
            return cursor.rowcount == 1

    def watch_list(self, kind: str | None = None) -> list[WatchItem]:
        query = "SELECT kind, value, added_by, added_at FROM watch"
        params: tuple[str, ...] = ()
        if kind:
            query += " WHERE kind = ?"
            params = (kind,)
        rows = self.db.execute(query + " ORDER BY kind, value", params).fetchall()
        return [WatchItem(**dict(row)) for row in rows]

    # -- check history ----------------------------------------------------------------------

    def record_check(
        self,
        kind: str,
        subject: str,
        status: str,
        result: dict[str, Any],
        started_at: datetime | None = None,
    ) -> int:
        finished = self.now()
        started = iso(started_at) if started_at else finished
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO checks (kind, subject, started_at, finished_at, status, result_json) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (kind, subject, started, finished, status, json.dumps(result, sort_keys=True)),
            )
            return int(cursor.lastrowid or 0)

    def checks(
        self, kind: str, subject: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[CheckRecord]:
        """Newest first."""
        query = "SELECT * FROM checks WHERE kind = ?"
        params: list[Any] = [kind]
        if subject is not None:
            query += " AND subject = ?"
            params.append(subject)
        if since is not None:
            query += " AND finished_at >= ?"
            params.append(iso(since))
        query += " ORDER BY finished_at DESC, id DESC LIMIT ?"
        params.append(limit)
        return [_check(row) for row in self.db.execute(query, params).fetchall()]

    def check(self, check_id: int) -> CheckRecord | None:
        row = self.db.execute("SELECT * FROM checks WHERE id = ?", (check_id,)).fetchone()
        return _check(row) if row else None

    def latest_check(self, kind: str, subject: str) -> CheckRecord | None:
        found = self.checks(kind, subject, limit=1)
        return found[0] if found else None

    # -- alerts -----------------------------------------------------------------------------

    def open_alert(self, subject_key: str) -> AlertRecord | None:
        row = self.db.execute(
            "SELECT * FROM alerts WHERE subject_key = ? AND state = 'open'", (subject_key,)
        ).fetchone()
        return AlertRecord(**dict(row)) if row else None

    def latest_alert(self, subject_key: str) -> AlertRecord | None:
        row = self.db.execute(
            "SELECT * FROM alerts WHERE subject_key = ? ORDER BY id DESC LIMIT 1", (subject_key,)
        ).fetchone()
        return AlertRecord(**dict(row)) if row else None

    def create_alert(
        self, subject_key: str, kind: str, summary: str, channel: str = "", thread_ts: str = ""
    ) -> AlertRecord | None:
        """Opens an alert; None when one is already open for this subject (one alert per change)."""
        now = self.now()
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO alerts (subject_key, kind, state, summary, channel, "
                "thread_ts, opened_at, updated_at) VALUES (?, ?, 'open', ?, ?, ?, ?, ?)",
                (subject_key, kind, summary, channel, thread_ts, now, now),
            )
            if cursor.rowcount != 1:
                return None
        return self.open_alert(subject_key)

    def set_alert_thread(self, alert_id: int, channel: str, thread_ts: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE alerts SET channel = ?, thread_ts = ?, updated_at = ? WHERE id = ?",
                (channel, thread_ts, self.now(), alert_id),
            )

    def update_alert(
        self,
        alert: AlertRecord,
        summary: str,
        close: bool = False,
        follow_up: PendingPost | None = None,
    ) -> bool:
        """Updates `alert` only if nobody changed it since it was read; False if someone did.

        Compare-and-set inside the write transaction: when two bot processes see the same change,
        exactly one of them wins and posts the follow-up. `follow_up` is claimed for the winner in
        the same transaction, so a winner that dies before posting leaves it for another process.
        """
        now = self.now()
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE alerts SET summary = ?, updated_at = ?, state = ?, closed_at = ? "
                "WHERE id = ? AND state = 'open' AND updated_at = ? AND summary = ?",
                (
                    summary,
                    now,
                    "closed" if close else "open",
                    now if close else None,
                    alert.id,
                    alert.updated_at,
                    alert.summary,
                ),
            )
            if cursor.rowcount != 1:
                return False
            if follow_up is not None:
                self._insert_claim(db, follow_up)
            return True

    def acknowledge_alert(self, alert_id: int, user_id: str) -> bool:
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE alerts SET acknowledged_by = ?, acknowledged_at = ? WHERE id = ?",
                (user_id, self.now(), alert_id),
            )
            return cursor.rowcount == 1

    def alert(self, alert_id: int) -> AlertRecord | None:
        row = self.db.execute("SELECT * FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        return AlertRecord(**dict(row)) if row else None

    def alerts(self, state: str | None = None) -> list[AlertRecord]:
        query = "SELECT * FROM alerts"
        params: tuple[str, ...] = ()
        if state:
            query += " WHERE state = ?"
            params = (state,)
        rows = self.db.execute(query + " ORDER BY id", params).fetchall()
        return [AlertRecord(**dict(row)) for row in rows]

    # -- posting claims (exactly-once messages) ---------------------------------------------

    def claim_post(
        self,
        claim_key: str,
        claimed_by: str,
        lease: timedelta = POST_LEASE,
        channel: str = "",
        thread_ts: str = "",
        text: str = "",
    ) -> bool:
        """Claims the message `claim_key` for `claimed_by`: True for exactly one process.

        A claim nobody finished whose lease ran out (its poster crashed, or gave it back after a
        failed post) is taken over; a live or finished one is not.
        """
        with self.transaction() as db:
            if self._insert_claim(
                db, PendingPost(claim_key, claimed_by, lease, channel, thread_ts, text)
            ):
                return True
            return self._take_over_claim(db, claim_key, claimed_by, lease)

    def finish_post(self, claim_key: str, claimed_by: str, ts: str = "") -> bool:
        """Marks a claimed message posted; False when the claim is no longer ours."""
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE post_claims SET done_at = ?, ts = ? "
                "WHERE claim_key = ? AND claimed_by = ? AND done_at IS NULL",
                (self.now(), ts, claim_key, claimed_by),
            )
            return cursor.rowcount == 1

    def release_post(self, claim_key: str, claimed_by: str) -> None:
        """Gives a claim back after a failed post, so the next attempt (any process) may retry."""
        with self.transaction() as db:
            db.execute(
                "UPDATE post_claims SET lease_until = ? "
                "WHERE claim_key = ? AND claimed_by = ? AND done_at IS NULL",
                (self.now(), claim_key, claimed_by),
            )

    def renew_post(self, claim_key: str, claimed_by: str, lease: timedelta = POST_LEASE) -> bool:
        """Extends our live lease; False if it ran out and another process took the claim."""
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE post_claims SET lease_until = ? "
                "WHERE claim_key = ? AND claimed_by = ? AND done_at IS NULL",
                (iso(self.clock() + lease), claim_key, claimed_by),
            )
            return cursor.rowcount == 1

    def post_claim(self, claim_key: str) -> PostClaim | None:
        row = self.db.execute(
            "SELECT * FROM post_claims WHERE claim_key = ?", (claim_key,)
        ).fetchone()
        return PostClaim(**dict(row)) if row else None

    def abandoned_posts(self, prefix: str, limit: int = 100) -> list[PostClaim]:
        """Claims under `prefix` nobody finished whose lease ran out, oldest first."""
        rows = self.db.execute(
            "SELECT * FROM post_claims WHERE done_at IS NULL AND lease_until <= ? "
            "AND substr(claim_key, 1, ?) = ? ORDER BY lease_until, claim_key LIMIT ?",
            (self.now(), len(prefix), prefix, limit),
        ).fetchall()
        return [PostClaim(**dict(row)) for row in rows]

    def _insert_claim(self, db: Any, post: PendingPost) -> bool:
        cursor = db.execute(
            "INSERT OR IGNORE INTO post_claims (claim_key, claimed_by, lease_until, channel, "
            "thread_ts, text) VALUES (?, ?, ?, ?, ?, ?)",
            (
                post.claim_key,
                post.claimed_by,
                iso(self.clock() + post.lease),
                post.channel,
                post.thread_ts,
                post.text,
            ),
        )
        return cursor.rowcount == 1

    def _take_over_claim(self, db: Any, claim_key: str, claimed_by: str, lease: timedelta) -> bool:
        cursor = db.execute(
            "UPDATE post_claims SET claimed_by = ?, lease_until = ? "
            "WHERE claim_key = ? AND done_at IS NULL AND lease_until <= ?",
            (claimed_by, iso(self.clock() + lease), claim_key, self.now()),
        )
        return cursor.rowcount == 1

    # -- scheduler leadership (SQLite: a lease row; PostgreSQL: an advisory lock) ------------

    def hold_leadership(self, name: str, holder: str, lease: timedelta) -> bool:
        """Takes or renews the leadership `name` for `holder`; False while another holds it.

        SQLite: a lease row, renewed by each call, taken over once it ran out. PostgreSQL: a
        session advisory lock, released by the server the moment the holder's connection dies.
        """
        if self.backend == "postgresql":
            return bool(self.db.hold_leadership(name))
        until = iso(self.clock() + lease)
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO leader_lease (name, holder, lease_until) VALUES (?, ?, ?)",
                (name, holder, until),
            )
            if cursor.rowcount == 1:
                return True
            cursor = db.execute(
                "UPDATE leader_lease SET holder = ?, lease_until = ? "
                "WHERE name = ? AND (holder = ? OR lease_until <= ?)",
                (holder, until, name, holder, self.now()),
            )
            return cursor.rowcount == 1

    def resign_leadership(self, name: str, holder: str) -> None:
        if self.backend == "postgresql":
            self.db.resign_leadership(name)
            return
        with self.transaction() as db:
            db.execute("DELETE FROM leader_lease WHERE name = ? AND holder = ?", (name, holder))

    # -- digest runs ------------------------------------------------------------------------

    def claim_digest(
        self, scheduled_for: str, claimed_by: str, lease: timedelta = DIGEST_LEASE
    ) -> DigestRun | None:
        """Claims the digest due at `scheduled_for`; None if another run (any process) has it.

        A run still 'running' whose sender's lease ran out (it died) is taken over.
        """
        key = digest_claim_key(scheduled_for)
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO digest_runs (scheduled_for, claimed_by, started_at, status) "
                "VALUES (?, ?, ?, 'running')",
                (scheduled_for, claimed_by, self.now()),
            )
            if cursor.rowcount == 1:
                self._insert_claim(db, PendingPost(key, claimed_by, lease))
            elif self._take_over_claim(db, key, claimed_by, lease):
                db.execute(
                    "UPDATE digest_runs SET claimed_by = ?, started_at = ? "
                    "WHERE scheduled_for = ? AND status = 'running'",
                    (claimed_by, self.now(), scheduled_for),
                )
            else:
                return None
        return self.digest_run(scheduled_for)

    def digest_abandoned(self, scheduled_for: str) -> bool:
        """True when the digest's run is still 'running' but its sender's lease ran out."""
        claim = self.post_claim(digest_claim_key(scheduled_for))
        run = self.digest_run(scheduled_for)
        return (
            run is not None
            and run.status == "running"
            and claim is not None
            and claim.done_at is None
            and claim.lease_until <= self.now()
        )

    def finish_digest(
        self, run_id: int, status: str, channel: str = "", ts: str = "", error: str = ""
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE digest_runs SET status = ?, finished_at = ?, channel = ?, ts = ?, "
                "error = ? WHERE id = ?",
                (status, self.now(), channel, ts, error, run_id),
            )
            db.execute(
                "UPDATE post_claims SET done_at = ?, ts = ? WHERE claim_key = "
                "(SELECT 'digest:' || scheduled_for FROM digest_runs WHERE id = ?)",
                (self.now(), ts, run_id),
            )

    def digest_run(self, scheduled_for: str) -> DigestRun | None:
        row = self.db.execute(
            "SELECT * FROM digest_runs WHERE scheduled_for = ?", (scheduled_for,)
        ).fetchone()
        return DigestRun(**dict(row)) if row else None

    def digest_runs(self, limit: int = 50) -> list[DigestRun]:
        rows = self.db.execute(
            "SELECT * FROM digest_runs ORDER BY scheduled_for DESC LIMIT ?", (limit,)
        ).fetchall()
        return [DigestRun(**dict(row)) for row in rows]

    # -- audit ------------------------------------------------------------------------------

    def audit(
        self,
        user_id: str,
        command: str,
        args: str,
        allowed: bool,
        reason: str = "",
        channel_id: str = "",
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO audit (at, user_id, channel_id, command, args, allowed, reason) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (self.now(), user_id, channel_id, command, args, int(allowed), reason),
            )

    def audit_log(self, limit: int = 100) -> list[AuditEntry]:
        rows = self.db.execute(
            "SELECT at, user_id, channel_id, command, args, allowed, reason FROM audit "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [AuditEntry(**{**dict(row), "allowed": bool(row["allowed"])}) for row in rows]

    # -- containment (enforced by the policy service) --------------------------------------

    def add_containment(
        self,
        subject_kind: str,
        subject: str,
        action: str,
        expires_at: datetime,
        reason: str = "",
        set_by: str = "",
        limit_per_hour: int = 0,
        cut_sessions: bool = False,
        channel: str = "",
        thread_ts: str = "",
    ) -> Containment:
        """Adds an entry, replacing (releasing) any active entry for the same subject."""
        now = self.now()
        with self.transaction() as db:
            db.execute(
                "UPDATE containment SET released_at = ?, released_by = ? "
                "WHERE subject_kind = ? AND subject = ? AND released_at IS NULL "
                "AND expires_at > ?",
                (now, f"replaced by {set_by}".strip(), subject_kind, subject, now),
            )
            cursor = db.execute(
                "INSERT INTO containment (subject_kind, subject, action, limit_per_hour, "
                "cut_sessions, reason, set_by, set_at, expires_at, channel, thread_ts) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    subject_kind,
                    subject,
                    action,
                    limit_per_hour,
                    int(cut_sessions),
                    reason,
                    set_by,
                    now,
                    iso(expires_at),
                    channel,
                    thread_ts,
                ),
            )
            new_id = int(cursor.lastrowid or 0)
            self._bump_containment_revision(db)
        found = self.containment(new_id)
        assert found is not None
        return found

    def containment(self, entry_id: int) -> Containment | None:
        row = self.db.execute("SELECT * FROM containment WHERE id = ?", (entry_id,)).fetchone()
        return _containment(row) if row else None

    def active_containments(self) -> list[Containment]:
        """Entries neither released nor expired at the store's clock, oldest first."""
        rows = self.db.execute(
            "SELECT * FROM containment WHERE released_at IS NULL AND expires_at > ? ORDER BY id",
            (self.now(),),
        ).fetchall()
        return [_containment(row) for row in rows]

    def containments(self, limit: int = 200) -> list[Containment]:
        """Every entry, newest first (history for `contain list --all` and the audit)."""
        rows = self.db.execute(
            "SELECT * FROM containment ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [_containment(row) for row in rows]

    def release_containment(self, subject_kind: str, subject: str, released_by: str) -> int:
        """Releases the active entries for a subject; how many were released."""
        now = self.now()
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE containment SET released_at = ?, released_by = ? "
                "WHERE subject_kind = ? AND subject = ? AND released_at IS NULL "
                "AND expires_at > ?",
                (now, released_by, subject_kind, subject, now),
            )
            if cursor.rowcount:
                self._bump_containment_revision(db)
            return cursor.rowcount

    def mark_containment_reminded(self, entry_id: int) -> bool:
        """Compare-and-set: True for exactly one caller, which posts the reminder."""
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE containment SET reminded = 1 WHERE id = ? AND reminded = 0", (entry_id,)
            )
            return cursor.rowcount == 1

    def lapsed_containments(self, since: datetime) -> list[Containment]:
        """Entries that ran out (not released) after `since` whose lapse nobody has posted yet."""
        rows = self.db.execute(
            "SELECT * FROM containment WHERE released_at IS NULL AND expires_at <= ? "
            "AND expires_at > ? AND reminded < 2 ORDER BY id",
            (self.now(), iso(since)),
        ).fetchall()
        return [_containment(row) for row in rows]

    def mark_containment_lapse_noted(self, entry_id: int) -> bool:
        """Compare-and-set (reminded becomes 2): True for one caller only, which posts the note."""
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE containment SET reminded = 2 WHERE id = ? AND reminded < 2", (entry_id,)
            )
            return cursor.rowcount == 1

    def containment_revision(self) -> int:
        """Bumped by every change; a policy service rereads the entries only when it moved."""
        row = self.db.execute("SELECT revision FROM containment_revision WHERE id = 1").fetchone()
        return int(row[0]) if row else 0

    def _bump_containment_revision(self, db: Any) -> None:
        db.execute("UPDATE containment_revision SET revision = revision + 1 WHERE id = 1")
        if self.backend == "postgresql":
            # delivered at commit to every replica listening (bot.store_changes)
            db.execute("SELECT pg_notify('relaywatch_containment', '')")

    # -- policy counters and alarms ----------------------------------------------------------

    def flush_policy_counters(
        self,
        window_start: datetime,
        window_seconds: int,
        rows: list[tuple[str, str, str, int, int, int]],
    ) -> None:
        """Adds (subject_kind, subject, source, messages, recipients, bytes) rows to a window."""
        start = iso(window_start)
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO policy_counters (window_start, window_seconds, subject_kind, subject, "
                "source, messages, recipients, bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (window_start, window_seconds, subject_kind, subject, source) "
                "DO UPDATE SET messages = policy_counters.messages + excluded.messages, "
                "recipients = policy_counters.recipients + excluded.recipients, "
                "bytes = policy_counters.bytes + excluded.bytes",
                [(start, window_seconds, *row) for row in rows],
            )

    def policy_counter_totals(
        self, subject_kind: str, subject: str, since: datetime
    ) -> tuple[int, int, int]:
        """(messages, recipients, bytes) summed over every source since a time."""
        row = self.db.execute(
            "SELECT COALESCE(SUM(messages), 0), COALESCE(SUM(recipients), 0), "
            "COALESCE(SUM(bytes), 0) FROM policy_counters "
            "WHERE subject_kind = ? AND subject = ? AND window_start >= ?",
            (subject_kind, subject, iso(since)),
        ).fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    def prune_policy_counters(self, before: datetime) -> int:
        with self.transaction() as db:
            return db.execute(
                "DELETE FROM policy_counters WHERE window_start < ?", (iso(before),)
            ).rowcount

    def add_policy_window_counts(
        self, source: str, rows: list[tuple[datetime, int, str, str, int]]
    ) -> None:
        """Adds one replica's (window_start, window_seconds, subject_kind, subject, messages)."""
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO policy_window_counts (window_start, window_seconds, subject_kind, "
                "subject, source, messages) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (window_start, window_seconds, subject_kind, subject, source) "
                "DO UPDATE SET messages = policy_window_counts.messages + excluded.messages",
                [
                    (iso(start), seconds, kind, subject, source, n)
                    for start, seconds, kind, subject, n in rows
                ],
            )

    def policy_window_totals_over(
        self, window_start: datetime, window_seconds: int, subject_kind: str, limit: int
    ) -> list[tuple[str, int, int]]:
        """(subject, messages summed over every source, how many sources) for the subjects over
        `limit` in one clock window: the store does the sum, only those over come back."""
        rows = self.db.execute(
            "SELECT subject, SUM(messages), COUNT(*) FROM policy_window_counts "
            "WHERE window_start = ? AND window_seconds = ? AND subject_kind = ? "
            "GROUP BY subject HAVING SUM(messages) > ? ORDER BY subject",
            (iso(window_start), window_seconds, subject_kind, limit),
        ).fetchall()
        return [(str(row[0]), int(row[1]), int(row[2])) for row in rows]

    def prune_policy_window_counts(self, before: datetime, window_seconds: int) -> int:
        with self.transaction() as db:
            return db.execute(
                "DELETE FROM policy_window_counts WHERE window_seconds = ? AND window_start < ?",
                (window_seconds, iso(before)),
            ).rowcount

    def record_policy_alarm(self, alarm: PolicyAlarm) -> int:
        """The new alarm's id; 0 when one for the same rule, subject and clock window is there
        already (another replica, or this one, raised it first): it is not recorded twice."""
        payload = {
            "rule": alarm.rule,
            "subject_kind": alarm.subject_kind,
            "subject": alarm.subject,
            "count": alarm.count,
            "threshold": alarm.threshold,
            "window_seconds": alarm.window_seconds,
            "at": iso(alarm.at),
            "client_addresses": list(alarm.client_addresses),
            "sample_recipients": list(alarm.sample_recipients),
            "policy_context": alarm.policy_context,
            "detail": alarm.detail,
        }
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO policy_alarms (at, rule, subject_kind, subject, "
                "alarm_json, window_start) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    iso(alarm.at),
                    alarm.rule,
                    alarm.subject_kind,
                    alarm.subject,
                    json.dumps(payload, sort_keys=True),
                    iso(alarm.clock_window()),
                ),
            )
            # rowcount, not lastrowid: SQLite leaves lastrowid at the previous insert when ignored
            return int(cursor.lastrowid or 0) if cursor.rowcount == 1 else 0

    def unposted_policy_alarms(self, limit: int = 100) -> list[tuple[int, PolicyAlarm]]:
        rows = self.db.execute(
            "SELECT id, alarm_json FROM policy_alarms WHERE posted_at IS NULL ORDER BY id LIMIT ?",
            (limit,),
        ).fetchall()
        return [(int(row["id"]), _alarm(json.loads(row["alarm_json"]))) for row in rows]

    def claim_policy_alarm(self, alarm_id: int) -> bool:
        """Compare-and-set: True for exactly one poster."""
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE policy_alarms SET posted_at = ? WHERE id = ? AND posted_at IS NULL",
                (self.now(), alarm_id),
            )
            return cursor.rowcount == 1

    # -- delisting cases --------------------------------------------------------------------

    def open_delist_case(
        self, subject: str, zone: str, codes: tuple[str, ...], txt: str, alert_id: int | None
    ) -> DelistCase | None:
        """A case for a new listing; None when one exists (a removed one is reopened by
        save_delist_case, which counts the relisting)."""
        now = self.now()
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO delist_cases (subject, zone, state, first_seen, codes, txt, "
                "alert_id, next_check_at) VALUES (?, ?, 'listed', ?, ?, ?, ?, ?)",
                (subject, zone, now, ",".join(codes), txt[:500], alert_id, now),
            )
            if cursor.rowcount != 1:
                return None
        return self.delist_case(subject, zone)

    def delist_case(self, subject: str, zone: str) -> DelistCase | None:
        row = self.db.execute(
            "SELECT * FROM delist_cases WHERE subject = ? AND zone = ?", (subject, zone)
        ).fetchone()
        return _delist_case(row) if row else None

    def delist_cases(
        self, state: str | None = None, subject: str | None = None
    ) -> list[DelistCase]:
        query, params = "SELECT * FROM delist_cases WHERE 1 = 1", []
        if state:
            query += " AND state = ?"
            params.append(state)
        if subject:
            query += " AND subject = ?"
            params.append(subject)
        rows = self.db.execute(query + " ORDER BY first_seen, id", params).fetchall()
        return [_delist_case(row) for row in rows]

    def due_delist_cases(self, now: datetime) -> list[DelistCase]:
        rows = self.db.execute(
            "SELECT * FROM delist_cases WHERE state = 'listed' AND next_check_at IS NOT NULL "
            "AND next_check_at <= ? ORDER BY next_check_at, id",
            (iso(now),),
        ).fetchall()
        return [_delist_case(row) for row in rows]

    def save_delist_case(self, before: DelistCase, after: DelistCase) -> bool:
        """Compare-and-set on the fields a step changes: True for exactly one writer."""
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE delist_cases SET state = ?, removed_at = ?, next_check_at = ?, "
                "overdue_noted = ?, relistings = ?, cause_fixed_by = ?, cause_fixed_at = ?, "
                "requested_by = ?, requested_at = ?, alert_id = ? "
                "WHERE id = ? AND state = ? AND relistings = ? AND overdue_noted = ? "
                "AND COALESCE(next_check_at, '') = ?",
                (
                    after.state,
                    _iso_or_none(after.removed_at),
                    _iso_or_none(after.next_check_at),
                    int(after.overdue_noted),
                    after.relistings,
                    after.cause_fixed_by,
                    _iso_or_none(after.cause_fixed_at),
                    after.requested_by,
                    _iso_or_none(after.requested_at),
                    after.alert_id,
                    before.id,
                    before.state,
                    before.relistings,
                    int(before.overdue_noted),
                    _iso_or_none(before.next_check_at) or "",
                ),
            )
            return cursor.rowcount == 1

    def mark_delist_case(self, case_id: int, field: str, user_id: str) -> bool:
        """Records who fixed the cause / requested removal of an open case, and when."""
        if field not in ("cause_fixed", "requested"):
            raise ValueError("field must be cause_fixed or requested")
        with self.transaction() as db:
            cursor = db.execute(
                f"UPDATE delist_cases SET {field}_by = ?, {field}_at = ? "
                "WHERE id = ? AND state = 'listed'",
                (user_id, self.now(), case_id),
            )
            return cursor.rowcount == 1


def _check(row: sqlite3.Row) -> CheckRecord:
    data = dict(row)
    data["result"] = json.loads(data.pop("result_json"))
    return CheckRecord(**data)


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _containment(row: sqlite3.Row) -> Containment:
    data = dict(row)
    return Containment(
        id=data["id"],
        subject_kind=data["subject_kind"],
        subject=data["subject"],
        action=data["action"],
        reason=data["reason"],
        set_by=data["set_by"],
        set_at=datetime.fromisoformat(data["set_at"]),
        expires_at=datetime.fromisoformat(data["expires_at"]),
        limit_per_hour=data["limit_per_hour"],
        cut_sessions=bool(data["cut_sessions"]),
        channel=data["channel"],
        thread_ts=data["thread_ts"],
        released_at=_moment(data["released_at"]),
        released_by=data["released_by"],
        reminded=bool(data["reminded"]),
    )


def _alarm(data: dict[str, Any]) -> PolicyAlarm:
    return PolicyAlarm(
        rule=data["rule"],
        subject_kind=data["subject_kind"],
        subject=data["subject"],
        count=int(data["count"]),
        threshold=int(data["threshold"]),
        window_seconds=int(data["window_seconds"]),
        at=datetime.fromisoformat(data["at"]),
        client_addresses=tuple(data.get("client_addresses", ())),
        sample_recipients=tuple(data.get("sample_recipients", ())),
        policy_context=data.get("policy_context", ""),
        detail=dict(data.get("detail", {})),
    )


def _iso_or_none(moment: datetime | None) -> str | None:
    return iso(moment) if moment is not None else None


def _delist_case(row: sqlite3.Row) -> DelistCase:
    data = dict(row)
    return DelistCase(
        id=data["id"],
        subject=data["subject"],
        zone=data["zone"],
        first_seen=datetime.fromisoformat(data["first_seen"]),
        state=data["state"],
        codes=tuple(c for c in data["codes"].split(",") if c),
        txt=data["txt"],
        alert_id=data["alert_id"],
        cause_fixed_by=data["cause_fixed_by"],
        cause_fixed_at=_moment(data["cause_fixed_at"]),
        requested_by=data["requested_by"],
        requested_at=_moment(data["requested_at"]),
        removed_at=_moment(data["removed_at"]),
        next_check_at=_moment(data["next_check_at"]),
        overdue_noted=bool(data["overdue_noted"]),
        relistings=data["relistings"],
    )


def _split_sql(script: str) -> list[str]:
    # Our migration scripts contain no semicolons inside literals, so a plain split is exact.
    return [part.strip() for part in script.split(";") if part.strip()]
