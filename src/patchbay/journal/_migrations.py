"""Numbered schema migrations, applied in order; ``PRAGMA user_version`` records the last one.

``MIGRATIONS[n]`` takes a schema at version ``n`` to ``n + 1``. Adding a version is appending
one function; a journal at an older version is migrated forward when opened for writing.
"""

from __future__ import annotations

from collections.abc import Callable

import apsw


def _v1(connection: apsw.Connection) -> None:
    connection.execute(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE events (
            domain TEXT NOT NULL,
            lsn INTEGER NOT NULL,
            core_generation INTEGER NOT NULL,
            kind TEXT NOT NULL,
            entity TEXT NOT NULL,
            ts REAL NOT NULL,
            payload TEXT NOT NULL,
            PRIMARY KEY (domain, lsn)
        ) WITHOUT ROWID;
        CREATE INDEX events_entity ON events (entity, lsn);
        CREATE INDEX events_kind ON events (kind, lsn);
        CREATE TABLE checkpoints (
            domain TEXT NOT NULL,
            lsn INTEGER NOT NULL,
            core_generation INTEGER NOT NULL,
            state BLOB NOT NULL,
            created REAL NOT NULL,
            PRIMARY KEY (domain, lsn)
        );
        """
    )


MIGRATIONS: list[Callable[[apsw.Connection], None]] = [_v1]
SCHEMA_VERSION = len(MIGRATIONS)
