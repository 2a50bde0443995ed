"""The police watchlist: plates to alert on, why, how urgently, and until when.

Plates are stored in the canonical form of `iotwire.plate_formats`, the edge's own parser, so a
plate typed as `68-B1 234.56` and one read by a camera as `68B123456` are the same entry.
Every change is written to the audit log in the same transaction. Expired entries stay
(the audit trail refers to them) but never match.
"""

import csv
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TextIO

from collector.i18n import services
from collector.police import audit
from collector.police.database import PoliceDb
from iotwire.plate_formats import PlateError, parse_plate

_ = services.gettext


class Priority(StrEnum):
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class WatchlistError(ValueError):
    """A watchlist request that cannot be carried out; the message says why."""


class NotWatchedError(WatchlistError):
    """The plate has no entry to change."""


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


def _bump_version(db: sqlite3.Connection) -> None:
    """Every change moves the version, which the matcher asks before each read."""
    db.execute("UPDATE watchlist_version SET n = n + 1")


class Watchlist:
    def __init__(self, db: PoliceDb) -> None:
        self.db = db

    def version(self) -> int:
        """Moves with every change, from any process: one row read, cheap enough to ask
        before matching each plate read."""
        [(n,)] = self.db.rows("SELECT n FROM watchlist_version")
        return int(n)

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
            plate = parse_plate(text, typed=True)
        except PlateError as exc:
            raise WatchlistError(_("not a Vietnamese plate: {why}").format(why=exc)) from None
        if not reason.strip():
            raise WatchlistError(_("a watchlist entry needs a reason"))
        now = now or datetime.now(UTC)
        if expires is not None and expires <= now:
            raise WatchlistError(
                _("expiry {expires} is already past").format(expires=expires.isoformat())
            )
        entry = WatchEntry(
            plate.canonical, plate.display, reason.strip(), priority, expires, by, now
        )
        with self.db.transaction() as db:
            new = _get(db, entry.plate) is None
            db.execute(
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
                db,
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
            _bump_version(db)
        return entry, new

    def remove(self, text: str, by: str) -> WatchEntry:
        try:
            canonical = parse_plate(text, typed=True).canonical
        except PlateError as exc:
            raise WatchlistError(_("not a Vietnamese plate: {why}").format(why=exc)) from None
        with self.db.transaction() as db:
            entry = _get(db, canonical)
            if entry is None:
                raise NotWatchedError(_("{plate} is not on the watchlist").format(plate=canonical))
            db.execute("DELETE FROM watchlist WHERE plate = ?", (canonical,))
            audit.record(db, by, "watchlist.remove", canonical, {"reason": entry.reason})
            _bump_version(db)
        return entry

    def get(self, canonical: str) -> WatchEntry | None:
        rows = self.db.rows("SELECT * FROM watchlist WHERE plate = ?", (canonical,))
        return _entry(rows[0]) if rows else None

    def entries(self) -> list[WatchEntry]:
        return [_entry(r) for r in self.db.rows("SELECT * FROM watchlist ORDER BY plate")]

    def import_csv(self, source: TextIO, by: str) -> ImportResult:
        """Rows of plate, reason[, priority[, expires]] with a header line; a bad row is
        reported by its line number and the others are imported."""
        added = updated = 0
        errors: list[tuple[int, str]] = []
        reader = csv.DictReader(source)
        missing = {"plate", "reason"} - set(reader.fieldnames or ())
        if missing:
            raise WatchlistError(
                _("the CSV header needs {columns}").format(columns=", ".join(sorted(missing)))
            )
        for row in reader:
            line = reader.line_num
            try:
                priority = Priority((row.get("priority") or "normal").strip().lower())
            except ValueError:
                given = repr(row.get("priority"))
                errors.append(
                    (line, _("priority {given}: high, normal or low").format(given=given))
                )
                continue
            try:
                expires_text = (row.get("expires") or "").strip()
                expires = _aware(datetime.fromisoformat(expires_text)) if expires_text else None
                new = self.add(row["plate"] or "", row["reason"] or "", by, priority, expires)[1]
            except ValueError as exc:
                errors.append((line, str(exc)))
                continue
            added, updated = added + new, updated + (not new)
        return ImportResult(added, updated, errors)


def _get(db: sqlite3.Connection, canonical: str) -> WatchEntry | None:
    row = db.execute("SELECT * FROM watchlist WHERE plate = ?", (canonical,)).fetchone()
    return _entry(row) if row else None


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
