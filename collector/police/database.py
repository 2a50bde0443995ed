"""The police database: watchlist, plate reads, alerts, their deliveries and the audit
log, in one SQLite file, so a change and its audit record always commit together.

One connection serves the ingest thread, the alert publishers and the API. SQLite allows
one writer at a time anyway; a lock around each transaction makes that explicit inside
the process, and `BEGIN IMMEDIATE` does it between processes (the CLI, a second
collector). All tables are declared here, so the next reader sees the whole of what is
kept about people in one place.
"""

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collector.i18n import services
from collector.police.confusions import fold
from iotruntime.sqlite_files import open_sqlite, write_transaction

_ = services.gettext

SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS watchlist (
    plate TEXT PRIMARY KEY, display TEXT NOT NULL, reason TEXT NOT NULL,
    priority TEXT NOT NULL, expires TEXT, added_by TEXT NOT NULL, added_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS watchlist_version (n INTEGER NOT NULL);
INSERT INTO watchlist_version SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM watchlist_version);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, subject TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_at ON audit (at);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TABLE IF NOT EXISTS plate_reads (
    device TEXT NOT NULL, seq INTEGER NOT NULL, site TEXT NOT NULL, camera TEXT NOT NULL,
    ts TEXT NOT NULL, plate TEXT NOT NULL, display TEXT NOT NULL, confidence REAL NOT NULL,
    box TEXT NOT NULL, colour TEXT, crop_jpeg_b64 TEXT, received TEXT NOT NULL,
    backlog INTEGER NOT NULL, PRIMARY KEY (device, seq)
);
CREATE INDEX IF NOT EXISTS plate_reads_ts ON plate_reads (ts);
CREATE INDEX IF NOT EXISTS plate_reads_plate ON plate_reads (plate, ts);
CREATE TABLE IF NOT EXISTS plate_texts (
    plate TEXT PRIMARY KEY, reversed TEXT NOT NULL, folded TEXT NOT NULL,
    last_seen TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS plate_texts_reversed ON plate_texts (reversed);
CREATE INDEX IF NOT EXISTS plate_texts_folded ON plate_texts (folded);
CREATE TABLE IF NOT EXISTS alerts (
    n INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
    device TEXT NOT NULL, read_seq INTEGER NOT NULL, watched TEXT NOT NULL,
    camera TEXT NOT NULL, ts TEXT NOT NULL, body TEXT NOT NULL, created TEXT NOT NULL,
    acked_at TEXT, acked_by TEXT, ack_note TEXT
);
DROP INDEX IF EXISTS alerts_recent;
CREATE INDEX IF NOT EXISTS alerts_at_pole ON alerts (watched, device, ts);
CREATE INDEX IF NOT EXISTS alerts_read ON alerts (device, read_seq);
CREATE INDEX IF NOT EXISTS alerts_created ON alerts (created);
CREATE TABLE IF NOT EXISTS alert_deliveries (
    alert TEXT NOT NULL, channel TEXT NOT NULL, state TEXT NOT NULL,
    attempts INTEGER NOT NULL, next_at TEXT NOT NULL, last_error TEXT, updated TEXT NOT NULL,
    PRIMARY KEY (alert, channel)
);
CREATE INDEX IF NOT EXISTS alert_deliveries_due ON alert_deliveries (channel, state, next_at);
CREATE TABLE IF NOT EXISTS dispatches (
    alert TEXT NOT NULL, unit TEXT NOT NULL, created TEXT NOT NULL,
    acked_at TEXT, acked_by TEXT, ack_note TEXT, PRIMARY KEY (alert, unit)
);
CREATE INDEX IF NOT EXISTS dispatches_open ON dispatches (created) WHERE acked_at IS NULL;
CREATE TABLE IF NOT EXISTS photos (
    id TEXT PRIMARY KEY, uploaded TEXT NOT NULL, by TEXT NOT NULL, case_ref TEXT NOT NULL,
    image BLOB NOT NULL, plates TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS photos_uploaded ON photos (uploaded);
CREATE TABLE IF NOT EXISTS escalations (
    alert TEXT PRIMARY KEY, at TEXT NOT NULL, reason TEXT NOT NULL
);
"""


class PoliceDbError(Exception):
    """A police database this version cannot use, and why."""


class PoliceDb:
    def __init__(self, path: Path) -> None:
        self._db = open_sqlite(path, busy_timeout_s=10)
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version not in range(SCHEMA_VERSION + 1):
            self._db.close()
            raise PoliceDbError(
                _("{path}: schema version {version}; this collector knows {known}").format(
                    path=path, version=version, known=SCHEMA_VERSION
                )
            )
        self._lock = threading.Lock()
        self._db.executescript(SCHEMA)
        with self.transaction() as db:
            if version == 1:
                _index_plate_texts(db)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, committed when the block ends and rolled back if it
        raises."""
        with write_transaction(self._db, self._lock) as db:
            yield db

    def rows(self, sql: str, args: tuple[Any, ...] | list[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()


def plate_text_row(plate: str, last_seen: str) -> tuple[str, str, str, str]:
    """A distinct plate as plate search looks it up (collector/police/search.py): as
    read, reversed (a leading wildcard is a trailing one there) and with OCR confusions
    folded together."""
    return plate, plate[::-1], fold(plate), last_seen


def _index_plate_texts(db: sqlite3.Connection) -> None:
    """Version 1 kept reads without the distinct plates search needs: index them once."""
    db.executemany(
        "INSERT OR REPLACE INTO plate_texts VALUES (?, ?, ?, ?)",
        (
            plate_text_row(plate, last)
            for plate, last in db.execute("SELECT plate, max(ts) FROM plate_reads GROUP BY plate")
        ),
    )


def utc_text(ts: datetime) -> str:
    """Times as UTC text, so they compare as strings in SQL whatever offset the device
    sent."""
    return ts.astimezone(UTC).isoformat()
