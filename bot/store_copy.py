"""Copies one store into another (SQLite to PostgreSQL, or back), keeping every id.

Both stores are opened (and so migrated) to this relaywatch's schema first, then every table is
copied row by row in one transaction on the target: a copy that fails half-way leaves the target
as it was. Ids are kept, so alert ids in old Slack buttons and case links still resolve; on
PostgreSQL each id sequence is then moved past the highest copied id.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bot.store import MIGRATIONS, Store
from bot.store_pg import id_tables

BATCH = 1000


class CopyRefused(Exception):
    """The target holds data and --force was not given (nothing was changed)."""


@dataclass
class CopyReport:
    rows: dict[str, int] = field(default_factory=dict)  # table → rows copied

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def tables() -> list[str]:
    """Every table of the schema, in the order the migrations create them."""
    return [
        name
        for script in MIGRATIONS
        for name in re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)", script)
    ]


def _has_id(table: str) -> bool:
    return table in id_tables(MIGRATIONS)


def holdings(store: Store) -> dict[str, int]:
    """Rows per table that are data (the containment revision counter's seed row is not)."""
    found = {}
    for table in tables():
        if table == "containment_revision":
            count = int(store.containment_revision() != 0)
        else:
            count = int(store.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
        if count:
            found[table] = count
    return found


def _rows(store: Store, table: str) -> Iterator[list[dict[str, Any]]]:
    if not _has_id(table):
        rows = [dict(row) for row in store.db.execute(f"SELECT * FROM {table}").fetchall()]
        if rows:
            yield rows
        return
    last = -1
    while True:
        batch = store.db.execute(
            f"SELECT * FROM {table} WHERE id > ? ORDER BY id LIMIT ?", (last, BATCH)
        ).fetchall()
        if not batch:
            return
        yield [dict(row) for row in batch]
        last = int(batch[-1]["id"])


def copy_store(source: Store, target: Store, force: bool = False) -> CopyReport:
    """Copies every row of `source` into `target`; refuses a target with data unless `force`
    (which first empties it, in the same transaction)."""
    held = holdings(target)
    if held and not force:
        summary = ", ".join(f"{table} {count}" for table, count in held.items())
        raise CopyRefused(f"the target store is not empty ({summary})")
    report = CopyReport()
    with target.transaction() as db:
        for table in tables():
            db.execute(f"DELETE FROM {table}")
        for table in tables():
            report.rows[table] = 0
            for batch in _rows(source, table):
                columns = list(batch[0])
                db.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) "
                    f"VALUES ({', '.join('?' for _ in columns)})",
                    [[row[c] for c in columns] for row in batch],
                )
                report.rows[table] += len(batch)
        if target.backend == "postgresql":
            for table in filter(_has_id, tables()):
                # the next id a new row gets: past every copied one
                db.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
                )
    return report
