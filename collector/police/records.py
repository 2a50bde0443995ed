"""Plate reads and the alerts they raise, committed together, and what police do with
the alerts afterwards.

A read is stored once per (device, seq), so a redelivery raises nothing twice. Its alerts
are written in the same transaction, with their delivery rows (deliveries.py) and an
audit record: a crash between matching and sending delays an alert, it never loses one.
The same watched plate at the same pole (the camera box) within `window_s` is one alert,
not one per pass under the light; a camera's name says nothing of where it is (every
pole may have a `north`), so it does not key the window. Only a box registered as a
camera pole raises alerts: a plate read from any other box, which only a stolen or
misused credential sends, is counted and kept out of the log. A read older than the
reads' retention is personal data the collector may no longer keep: it is counted and
dropped, and raises nothing.
"""

import dataclasses
import json
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from collector.fleet.registry import RegisteredDevice
from collector.i18n import services
from collector.police import audit, deliveries
from collector.police.database import PoliceDb, plate_text_row, utc_text
from collector.police.dispatch import Unit, dispatch
from collector.police.matching import Match, Matcher
from collector.police.watchlist import Watchlist
from iotwire.messages import PlateAlert, PlateRead, Pole

_ = services.gettext

PLATE_TEXT_UPSERT = (
    "INSERT INTO plate_texts VALUES (?, ?, ?, ?) ON CONFLICT (plate)"
    " DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)"
)
Locate = Callable[[str], RegisteredDevice | None]


class AlertError(ValueError):
    """An alert request that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class AlertRecord:
    n: int  # the order alerts were raised in; the SSE stream's event id
    alert: PlateAlert
    created: datetime
    acked_at: datetime | None
    acked_by: str | None
    ack_note: str | None


def _record(row: tuple[int, str, str, str | None, str | None, str | None]) -> AlertRecord:
    n, body, created, acked_at, acked_by, note = row
    return AlertRecord(
        n,
        PlateAlert.model_validate_json(body),
        datetime.fromisoformat(created),
        datetime.fromisoformat(acked_at) if acked_at else None,
        acked_by,
        note,
    )


def _pole(registered: RegisteredDevice) -> Pole:
    where = registered.location
    return Pole(
        name=registered.name, lat=where.lat if where else None, lon=where.lon if where else None
    )


_ALERT_COLUMNS = "SELECT n, body, created, acked_at, acked_by, ack_note FROM alerts"


class PlateLog:
    def __init__(
        self,
        db: PoliceDb,
        channels: Sequence[str] = (deliveries.MQTT,),
        window_s: float = 300.0,
        reads_days: int = 30,
        locate: Locate | None = None,
        units: Sequence[Unit] = (),
    ) -> None:
        self._db = db
        self._watchlist = Watchlist(db)
        self._channels = tuple(channels)
        self._window = timedelta(seconds=window_s)
        self._keep_reads = timedelta(days=reads_days)
        self._locate = locate or (lambda _: None)
        self._units = tuple(units)
        self._version = self._watchlist.version()
        self._matcher = Matcher(self._watchlist.entries())
        self.too_old = 0
        self.not_from_a_camera = 0

    def _current_matcher(self) -> Matcher:
        version = self._watchlist.version()
        if version != self._version:
            self._matcher, self._version = Matcher(self._watchlist.entries()), version
        return self._matcher

    def record(
        self, site: str, read: PlateRead, received: datetime, backlog: bool
    ) -> list[PlateAlert]:
        """Store the read unless it is stored already; the alerts it newly raised."""
        if read.ts < received - self._keep_reads:
            self.too_old += 1
            return []
        registered = self._locate(read.device)
        if registered is not None and not registered.kind.sends_plates:
            self.not_from_a_camera += 1
            return []
        matches = self._current_matcher().match(read.text, read.ts)
        with self._db.transaction() as db:
            fresh = db.execute(
                "INSERT OR IGNORE INTO plate_reads VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    read.device,
                    read.seq,
                    site,
                    read.camera,
                    utc_text(read.ts),
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
            if not fresh:
                return []
            db.execute(PLATE_TEXT_UPSERT, plate_text_row(read.text, utc_text(read.ts)))
            return [
                alert
                for match in matches
                if (alert := self._raise(db, site, read, match, registered, backlog, received))
            ]

    def _raise(
        self,
        db: sqlite3.Connection,
        site: str,
        read: PlateRead,
        match: Match,
        registered: RegisteredDevice | None,
        backlog: bool,
        now: datetime,
    ) -> PlateAlert | None:
        entry = match.entry
        pole = _pole(registered) if registered is not None else None
        recent = db.execute(
            "SELECT 1 FROM alerts WHERE watched = ? AND device = ? AND ts > ? AND ts <= ?",
            (entry.plate, read.device, utc_text(read.ts - self._window), utc_text(read.ts)),
        ).fetchone()
        if recent:
            return None
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
            pole=pole,
            ts=read.ts,
            confidence=read.confidence,
            backlog=backlog,
            crop_jpeg_b64=read.crop_jpeg_b64,
        )
        db.execute(
            "INSERT INTO alerts (id, device, read_seq, watched, camera, ts, body, created)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                alert.id,
                read.device,
                read.seq,
                entry.plate,
                read.camera,
                utc_text(read.ts),
                alert.model_dump_json(),
                now.isoformat(),
            ),
        )
        deliveries.schedule(db, alert.id, self._channels, now)
        dispatch(db, self._units, alert.id, read.device, registered, now)
        audit.record(
            db,
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
        return alert


class AlertLog:
    """Alerts as police see them: listed, streamed in the order raised, acknowledged."""

    def __init__(self, db: PoliceDb) -> None:
        self._db = db

    def get(self, alert_id: str) -> AlertRecord | None:
        rows = self._db.rows(f"{_ALERT_COLUMNS} WHERE id = ?", (alert_id,))
        return _record(rows[0]) if rows else None

    def recent(
        self, since: datetime | None = None, unacknowledged: bool = False, limit: int = 100
    ) -> list[AlertRecord]:
        """Newest first."""
        clauses, args = [], []
        if since is not None:
            clauses.append("created >= ?")
            args.append(since.astimezone(UTC).isoformat())
        if unacknowledged:
            clauses.append("acked_at IS NULL")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._db.rows(f"{_ALERT_COLUMNS} {where} ORDER BY n DESC LIMIT ?", [*args, limit])
        return [_record(r) for r in rows]

    def after(self, n: int, limit: int = 100) -> list[AlertRecord]:
        """Alerts raised after the one numbered `n`, in order: what a stream resumes with."""
        rows = self._db.rows(f"{_ALERT_COLUMNS} WHERE n > ? ORDER BY n LIMIT ?", (n, limit))
        return [_record(r) for r in rows]

    def last_number(self) -> int:
        [(n,)] = self._db.rows("SELECT coalesce(max(n), 0) FROM alerts")
        return int(n)

    def streamed(self, alert_id: str, channel: str) -> None:
        """An alert went out on a stream to a signed-in officer: audited, not retried."""
        with self._db.transaction() as db:
            audit.record(db, "collector", "alert.deliver", alert_id, {"channel": channel})

    def acknowledge(
        self, alert_id: str, by: str, note: str = "", now: datetime | None = None
    ) -> AlertRecord:
        """An officer has the alert in hand; a second acknowledgement is refused, so the
        record says who took it first."""
        now = now or datetime.now(UTC)
        with self._db.transaction() as db:
            row = db.execute(f"{_ALERT_COLUMNS} WHERE id = ?", (alert_id,)).fetchone()
            if row is None:
                raise AlertError(_("no alert {id}").format(id=repr(alert_id)))
            found = _record(row)
            if found.acked_by is not None:
                raise AlertError(
                    _("alert {id} was acknowledged already by {by}").format(
                        id=alert_id, by=found.acked_by
                    )
                )
            db.execute(
                "UPDATE alerts SET acked_at = ?, acked_by = ?, ack_note = ? WHERE id = ?",
                (now.isoformat(), by, note, alert_id),
            )
            audit.record(db, by, "alert.acknowledge", alert_id, {"note": note}, now)
        return dataclasses.replace(found, acked_at=now, acked_by=by, ack_note=note)
