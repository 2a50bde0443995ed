"""Plate reads and the alerts they raise, in the police database, committed together.

A read is stored once per (device, seq), so a redelivery raises nothing twice. Its alerts
are written in the same transaction as `pending`, with an audit record, and are published
from there (`delivery.py`), marked delivered only once the broker has them: a crash
between matching and publishing delays an alert, it never loses one. The same watched
plate at the same camera within `alert_window_s` is one alert, not one per pass under the
light.
"""

import json
import sqlite3
import threading
import uuid
from datetime import UTC, datetime, timedelta

from collector.alerts import audit
from collector.alerts.matching import Matcher
from collector.alerts.watchlist import Watchlist
from iotwire.messages import PlateAlert, PlateRead

SCHEMA = """
CREATE TABLE IF NOT EXISTS plate_reads (
    device TEXT NOT NULL, seq INTEGER NOT NULL, site TEXT NOT NULL, camera TEXT NOT NULL,
    ts TEXT NOT NULL, plate TEXT NOT NULL, display TEXT NOT NULL, confidence REAL NOT NULL,
    box TEXT NOT NULL, colour TEXT, crop_jpeg_b64 TEXT, received TEXT NOT NULL,
    backlog INTEGER NOT NULL, PRIMARY KEY (device, seq)
);
CREATE INDEX IF NOT EXISTS plate_reads_ts ON plate_reads (ts);
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY, device TEXT NOT NULL, seq INTEGER NOT NULL, watched TEXT NOT NULL,
    camera TEXT NOT NULL, ts TEXT NOT NULL, body TEXT NOT NULL, created TEXT NOT NULL,
    delivered TEXT
);
CREATE INDEX IF NOT EXISTS alerts_pending ON alerts (delivered);
CREATE INDEX IF NOT EXISTS alerts_recent ON alerts (watched, camera, ts);
"""


class PlateLog:
    def __init__(self, watchlist: Watchlist, alert_window_s: float = 300.0) -> None:
        self._watchlist = watchlist
        self._db: sqlite3.Connection = watchlist.db
        self._db.executescript(SCHEMA)
        self._window = timedelta(seconds=alert_window_s)
        self._matcher = Matcher(watchlist.entries())
        self._version = self._watchlist_version()
        # Reads are recorded from ingest's store thread and alerts published from the
        # event loop's: one connection, one transaction at a time.
        self._lock = threading.Lock()

    def _watchlist_version(self) -> tuple[int, int]:
        """Changes since the index was built: SQLite's data_version moves when another
        connection (the CLI) commits, the watchlist's own count when this one does.
        Both cost nothing, so every read can ask."""
        (data_version,) = self._db.execute("PRAGMA data_version").fetchone()
        return int(data_version), self._watchlist.changes

    def _current_matcher(self) -> Matcher:
        version = self._watchlist_version()
        if version != self._version:
            self._matcher, self._version = Matcher(self._watchlist.entries()), version
        return self._matcher

    def record(
        self, site: str, read: PlateRead, received: datetime, backlog: bool
    ) -> list[PlateAlert]:
        """Store the read unless it is stored already; the alerts it newly raised."""
        with self._lock:
            return self._record(site, read, received, backlog)

    def _record(
        self, site: str, read: PlateRead, received: datetime, backlog: bool
    ) -> list[PlateAlert]:
        db = self._db
        matcher = self._current_matcher()
        db.execute("BEGIN IMMEDIATE")
        try:
            fresh = db.execute(
                "INSERT OR IGNORE INTO plate_reads VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    read.device,
                    read.seq,
                    site,
                    read.camera,
                    _utc(read.ts),
                    read.text,
                    read.display,
                    read.confidence,
                    json.dumps(list(read.box)),
                    read.colour,
                    read.crop_jpeg_b64,
                    received.isoformat(),
                    int(backlog),
                ),
            ).rowcount
            alerts = self._raise(site, read, backlog, received, matcher) if fresh else []
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return alerts

    def _raise(
        self, site: str, read: PlateRead, backlog: bool, now: datetime, matcher: Matcher
    ) -> list[PlateAlert]:
        alerts = []
        for match in matcher.match(read.text, read.ts):
            entry = match.entry
            recent = self._db.execute(
                "SELECT 1 FROM alerts WHERE watched = ? AND camera = ? AND ts > ? AND ts <= ?",
                (entry.plate, read.camera, _utc(read.ts - self._window), _utc(read.ts)),
            ).fetchone()
            if recent:
                continue
            alert = PlateAlert(
                id=uuid.uuid4().hex,
                plate=read.text,
                display=read.display,
                match=match.kind.value,
                score=match.score,
                watched=entry.plate,
                reason=entry.reason,
                priority=entry.priority.value,
                site=site,
                device=read.device,
                camera=read.camera,
                ts=read.ts,
                confidence=read.confidence,
                backlog=backlog,
                crop_jpeg_b64=read.crop_jpeg_b64,
            )
            self._db.execute(
                "INSERT INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                (
                    alert.id,
                    read.device,
                    read.seq,
                    entry.plate,
                    read.camera,
                    _utc(read.ts),
                    alert.model_dump_json(),
                    now.isoformat(),
                ),
            )
            audit.record(
                self._db,
                "collector",
                "alert.raise",
                alert.id,
                {
                    "plate": read.text,
                    "watched": entry.plate,
                    "match": match.kind.value,
                    "camera": read.camera,
                    "device": read.device,
                    "backlog": backlog,
                },
                now,
            )
            alerts.append(alert)
        return alerts

    def pending(self, limit: int = 100) -> list[PlateAlert]:
        with self._lock:
            rows = self._db.execute(
                "SELECT body FROM alerts WHERE delivered IS NULL ORDER BY created LIMIT ?",
                (limit,),
            ).fetchall()
        return [PlateAlert.model_validate_json(body) for (body,) in rows]

    def delivered(self, alert: PlateAlert, channel: str) -> None:
        with self._lock:
            self._delivered(alert, channel)

    def _delivered(self, alert: PlateAlert, channel: str) -> None:
        now = datetime.now(UTC)
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(
                "UPDATE alerts SET delivered = ? WHERE id = ?", (now.isoformat(), alert.id)
            )
            audit.record(
                self._db, "collector", "alert.deliver", alert.id, {"channel": channel}, now
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise


def _utc(ts: datetime) -> str:
    """Times as UTC text, so they compare in SQL whatever offset the device sent."""
    return ts.astimezone(UTC).isoformat()
