"""The police watchlist: plates to alert on, why, how urgently, and until when.

Plates are stored in the canonical form of `iotwire.plates`, the edge's own parser, so a
plate typed as `68-B1 234.56` and one read by a camera as `68B123456` are the same entry.
Every change is written to the audit log in the same transaction. Expired entries stay
(the audit trail refers to them) but never match.
"""

import csv
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TextIO

from collector.alerts import audit
from iotwire.plates import PlateError, parse_plate

SCHEMA = """
CREATE TABLE IF NOT EXISTS watchlist (
    plate TEXT PRIMARY KEY, display TEXT NOT NULL, reason TEXT NOT NULL,
    priority TEXT NOT NULL, expires TEXT, added_by TEXT NOT NULL, added_at TEXT NOT NULL
);
"""


class Priority(StrEnum):
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class WatchlistError(ValueError):
    """A watchlist request that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class WatchEntry:
    plate: str
    display: str
    reason: str
    priority: Priority
    expires: datetime | None
    added_by: str
    added_at: datetime

    def active(self, now: datetime) -> bool:
        return self.expires is None or now < self.expires


@dataclass(frozen=True)
class ImportResult:
    added: int
    updated: int
    errors: list[tuple[int, str]]


def _entry(row: tuple[str, ...]) -> WatchEntry:
    plate, display, reason, priority, expires, added_by, added_at = row
    return WatchEntry(
        plate,
        display,
        reason,
        Priority(priority),
        datetime.fromisoformat(expires) if expires else None,
        added_by,
        datetime.fromisoformat(added_at),
    )


class Watchlist:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA + audit.SCHEMA)
        self.changes = 0  # commits through this connection, which data_version does not see

    def close(self) -> None:
        self.db.close()

    def add(
        self,
        text: str,
        reason: str,
        by: str,
        priority: Priority = Priority.NORMAL,
        expires: datetime | None = None,
        now: datetime | None = None,
    ) -> tuple[WatchEntry, bool]:
        """Add a plate, or update the entry it already has; returns it and whether it is
        new."""
        try:
            plate = parse_plate(text)
        except PlateError as exc:
            raise WatchlistError(f"not a Vietnamese plate: {exc}") from None
        if not reason.strip():
            raise WatchlistError("a watchlist entry needs a reason")
        now = now or datetime.now(UTC)
        if expires is not None and expires <= now:
            raise WatchlistError(f"expiry {expires.isoformat()} is already past")
        entry = WatchEntry(
            plate.canonical, plate.display, reason.strip(), priority, expires, by, now
        )
        self.db.execute("BEGIN IMMEDIATE")
        try:
            new = self.get(entry.plate) is None
            self.db.execute(
                "INSERT OR REPLACE INTO watchlist VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.plate,
                    entry.display,
                    entry.reason,
                    entry.priority.value,
                    expires.isoformat() if expires else None,
                    by,
                    now.isoformat(),
                ),
            )
            audit.record(
                self.db,
                by,
                "watchlist.add" if new else "watchlist.update",
                entry.plate,
                {
                    "reason": entry.reason,
                    "priority": entry.priority.value,
                    "expires": expires.isoformat() if expires else None,
                },
                now,
            )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.changes += 1
        return entry, new

    def remove(self, text: str, by: str) -> WatchEntry:
        try:
            canonical = parse_plate(text).canonical
        except PlateError as exc:
            raise WatchlistError(f"not a Vietnamese plate: {exc}") from None
        self.db.execute("BEGIN IMMEDIATE")
        try:
            entry = self.get(canonical)
            if entry is None:
                raise WatchlistError(f"{canonical} is not on the watchlist")
            self.db.execute("DELETE FROM watchlist WHERE plate = ?", (canonical,))
            audit.record(self.db, by, "watchlist.remove", canonical, {"reason": entry.reason})
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.changes += 1
        return entry

    def get(self, canonical: str) -> WatchEntry | None:
        row = self.db.execute("SELECT * FROM watchlist WHERE plate = ?", (canonical,)).fetchone()
        return _entry(row) if row else None

    def entries(self) -> list[WatchEntry]:
        return [_entry(r) for r in self.db.execute("SELECT * FROM watchlist ORDER BY plate")]

    def import_csv(self, source: TextIO, by: str) -> ImportResult:
        """Rows of plate, reason[, priority[, expires]] with a header line; a bad row is
        reported by its line number and the others are imported."""
        added = updated = 0
        errors: list[tuple[int, str]] = []
        reader = csv.DictReader(source)
        missing = {"plate", "reason"} - set(reader.fieldnames or ())
        if missing:
            raise WatchlistError(f"the CSV header needs {', '.join(sorted(missing))}")
        for row in reader:
            line = reader.line_num
            try:
                priority = Priority((row.get("priority") or "normal").strip().lower())
            except ValueError:
                errors.append((line, f"priority {row.get('priority')!r}: high, normal or low"))
                continue
            try:
                expires_text = (row.get("expires") or "").strip()
                expires = _aware(datetime.fromisoformat(expires_text)) if expires_text else None
                _, new = self.add(row["plate"] or "", row["reason"] or "", by, priority, expires)
            except ValueError as exc:
                errors.append((line, str(exc)))
                continue
            added, updated = added + new, updated + (not new)
        return ImportResult(added, updated, errors)


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
