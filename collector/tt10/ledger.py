"""What was sent to the authority, kept on disk so that a restart neither loses a file
nor sends one twice.

One row per file name: the content hash last seen on disk, the hash last sent, and a
state. `pending` files go out oldest interval first; a sent file stays `sent` however
often the directory is looked at; a sent file whose content changed afterwards (an
export rewritten over it with late data) is `held`, not sent again on its own, since the
authority would receive two different values under one name: `resend` releases it. Each
send is also recorded in `sends`, the history an operator shows the authority.

The link's state (when the server last took a file, the last error, when the next try
is) is kept here too, so `collector tt10 status`, and any other process, read what the
running collector sees. SQLite in WAL through `iotruntime.sqlite_files`: 0600, and a
reader never blocks the uploader.
"""

import hashlib
import json
import os
import re
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from iotruntime.sqlite_files import open_sqlite, write_transaction

NAME = re.compile(r"^[A-Za-z0-9-]+_[A-Za-z0-9-]+_[A-Za-z0-9-]+_(\d{14})\.txt$")
"""`Province_Facility_Station_yyyyMMddHHmmss.txt`, the names the writer gives."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    name TEXT PRIMARY KEY,
    stamp TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'held')),
    sent_sha256 TEXT,
    sent_at TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS files_state ON files (state, stamp);
CREATE TABLE IF NOT EXISTS sends (
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    sent_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS link (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    state TEXT NOT NULL,
    last_success TEXT,
    last_attempt TEXT,
    last_error TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    next_attempt TEXT
);
"""


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Pending:
    name: str
    sha256: str
    resend: bool
    """Sent before and asked for again: the server's copy is to be replaced."""


@dataclass(frozen=True)
class LinkState:
    """`idle` before the first attempt, `ok` after a success, `retrying` after a failure."""

    state: str
    last_success: datetime | None
    last_attempt: datetime | None
    last_error: str | None
    failures: int
    next_attempt: datetime | None


@dataclass(frozen=True)
class UploadStatus:
    """What `collector tt10 status` shows, and what a wall display reads."""

    link: LinkState
    pending: int
    sent: int
    held: int
    oldest_pending: str | None
    held_names: tuple[str, ...]


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Ledger:
    def __init__(self, path: Path) -> None:
        self._db: sqlite3.Connection = open_sqlite(path, synchronous_full=True, busy_timeout_s=10.0)
        self._lock = threading.Lock()
        with write_transaction(self._db, self._lock) as db:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("INSERT OR IGNORE INTO link (id, state) VALUES (1, 'idle')")

    def close(self) -> None:
        self._db.close()

    def scan(self, directory: Path) -> int:
        """Record the station data files in `directory`: new ones to send, changed ones
        to send (if unsent) or to hold (if sent). Files whose size and modification time
        are as recorded are not read again. Returns how many became pending."""
        with self._lock:
            rows = self._db.execute("SELECT name, size, mtime_ns FROM files").fetchall()
        known = {name: (size, mtime_ns) for name, size, mtime_ns in rows}
        added = 0
        for path in sorted(directory.iterdir()):
            match = NAME.match(path.name)
            if match is None or not path.is_file():
                continue
            info = path.stat()
            if known.get(path.name) == (info.st_size, info.st_mtime_ns):
                continue
            added += self._record(path.name, match.group(1), path.read_bytes(), info)
        return added

    def _record(self, name: str, stamp: str, data: bytes, info: os.stat_result) -> int:
        digest = sha256_of(data)
        with write_transaction(self._db, self._lock) as db:
            row = db.execute(
                "SELECT state, sent_sha256 FROM files WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO files (name, stamp, size, mtime_ns, sha256, state)"
                    " VALUES (?, ?, ?, ?, ?, 'pending')",
                    (name, stamp, info.st_size, info.st_mtime_ns, digest),
                )
                return 1
            state, sent = row
            if state == "sent" and sent != digest:
                state = "held"
            elif state == "held" and sent == digest:
                state = "sent"
            db.execute(
                "UPDATE files SET size = ?, mtime_ns = ?, sha256 = ?, state = ? WHERE name = ?",
                (info.st_size, info.st_mtime_ns, digest, state, name),
            )
        return 0

    def pending(self) -> list[Pending]:
        """The files to send, oldest interval first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT name, sha256, sent_sha256 IS NOT NULL FROM files"
                " WHERE state = 'pending' ORDER BY stamp, name"
            ).fetchall()
        return [Pending(name, digest, bool(resend)) for name, digest, resend in rows]

    def sent(self, name: str, digest: str) -> None:
        now = _now()
        with write_transaction(self._db, self._lock) as db:
            db.execute(
                "UPDATE files SET state = CASE WHEN sha256 = ? THEN 'sent' ELSE 'held' END,"
                " sent_sha256 = ?, sent_at = ?, attempts = attempts + 1, last_error = NULL"
                " WHERE name = ?",
                (digest, digest, now, name),
            )
            db.execute(
                "INSERT INTO sends (name, sha256, sent_at) VALUES (?, ?, ?)", (name, digest, now)
            )
            db.execute(
                "UPDATE link SET state = 'ok', last_success = ?, last_attempt = ?,"
                " last_error = NULL, failures = 0, next_attempt = NULL WHERE id = 1",
                (now, now),
            )

    def failures(self) -> int:
        """Failed attempts since the last success: the next backoff grows with it."""
        with self._lock:
            (failures,) = self._db.execute("SELECT failures FROM link WHERE id = 1").fetchone()
        return int(failures)

    def failed(self, name: str | None, error: str, next_attempt: datetime) -> None:
        """Record a failed attempt, on `name` if one file was being sent."""
        with write_transaction(self._db, self._lock) as db:
            if name is not None:
                db.execute(
                    "UPDATE files SET attempts = attempts + 1, last_error = ? WHERE name = ?",
                    (error, name),
                )
            db.execute(
                "UPDATE link SET state = 'retrying', last_attempt = ?, last_error = ?,"
                " failures = failures + 1, next_attempt = ? WHERE id = 1",
                (_now(), error, next_attempt.isoformat()),
            )

    def forget(self, name: str) -> None:
        """A file deleted from the directory before it was sent: nothing left to send."""
        with write_transaction(self._db, self._lock) as db:
            db.execute("DELETE FROM files WHERE name = ?", (name,))

    def resend(self, names: list[str], since_stamp: str | None) -> list[str]:
        """Mark files to go again: those named, and those of intervals ending at or after
        `since_stamp` (local yyyyMMddHHmmss). Returns the names marked, so an unknown name
        can be told apart."""
        with write_transaction(self._db, self._lock) as db:
            marked = [
                row[0]
                for row in db.execute(
                    "SELECT name FROM files WHERE name IN (SELECT value FROM json_each(?))"
                    " OR (? IS NOT NULL AND stamp >= ?) ORDER BY stamp, name",
                    (json.dumps(names), since_stamp, since_stamp),
                )
            ]
            db.executemany(
                "UPDATE files SET state = 'pending' WHERE name = ?", [(n,) for n in marked]
            )
        return marked

    def sends_of(self, name: str) -> list[tuple[str, datetime]]:
        """Each time `name` was sent: its content hash and when."""
        with self._lock:
            rows = self._db.execute(
                "SELECT sha256, sent_at FROM sends WHERE name = ? ORDER BY rowid", (name,)
            ).fetchall()
        return [(digest, datetime.fromisoformat(at)) for digest, at in rows]

    def status(self) -> UploadStatus:
        with self._lock:
            self._db.execute("BEGIN")
            try:
                return self._status()
            finally:
                self._db.execute("COMMIT")

    def _status(self) -> UploadStatus:
        """Read in one transaction, so the counts and the link agree."""
        counts = dict(
            self._db.execute("SELECT state, count(*) FROM files GROUP BY state").fetchall()
        )
        (oldest,) = self._db.execute(
            "SELECT min(stamp) FROM files WHERE state = 'pending'"
        ).fetchone()
        held = tuple(
            r[0]
            for r in self._db.execute(
                "SELECT name FROM files WHERE state = 'held' ORDER BY stamp, name LIMIT 50"
            )
        )
        row = self._db.execute(
            "SELECT state, last_success, last_attempt, last_error, failures, next_attempt"
            " FROM link WHERE id = 1"
        ).fetchone()
        link = LinkState(row[0], _time(row[1]), _time(row[2]), row[3], int(row[4]), _time(row[5]))
        return UploadStatus(
            link,
            counts.get("pending", 0),
            counts.get("sent", 0),
            counts.get("held", 0),
            oldest,
            held,
        )
