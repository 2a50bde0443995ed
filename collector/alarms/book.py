"""The alarms' own database: each alarm's lifecycle, its append-only history, the
silences, the deliveries still owed, and where evaluation stands.

An alarm is raised once per rule and subject: a unique index admits one active alarm per
pair, so a restarted collector that finds the condition still holding keeps the alarm it
had instead of raising a second. Every change (raised, resolved, acknowledged, a silence)
commits with its history row and the deliveries it owes, so a crash delays a delivery and
never loses one. Triggers make the history append-only.
"""

import json
import sqlite3
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from collector.alarms.events import AlarmEvent, Breach, Event, Subject
from collector.config import AlarmRule
from collector.i18n import services
from collector.query import from_micros, to_micros
from iotruntime.sqlite_files import open_sqlite, write_transaction

_ = services.gettext

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alarms (
    id TEXT PRIMARY KEY, rule TEXT NOT NULL, rule_type TEXT NOT NULL, subject TEXT NOT NULL,
    device TEXT NOT NULL, severity TEXT NOT NULL, roles TEXT NOT NULL, message TEXT NOT NULL,
    value REAL, limit_value REAL, unit TEXT, regulation TEXT, clause TEXT, averaging TEXT,
    state TEXT NOT NULL, raised_at INTEGER NOT NULL, resolved_at INTEGER,
    acked_by TEXT, acked_at INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS alarms_one_active ON alarms (rule, subject)
    WHERE state = 'active';
CREATE INDEX IF NOT EXISTS alarms_by_time ON alarms (raised_at);
CREATE TABLE IF NOT EXISTS history (
    n INTEGER PRIMARY KEY AUTOINCREMENT, alarm TEXT, ts INTEGER NOT NULL,
    event TEXT NOT NULL, actor TEXT NOT NULL, detail TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS history_kept BEFORE UPDATE ON history
    BEGIN SELECT RAISE(ABORT, 'alarm history is append-only'); END;
CREATE TRIGGER IF NOT EXISTS history_not_deleted BEFORE DELETE ON history
    BEGIN SELECT RAISE(ABORT, 'alarm history is append-only'); END;
CREATE TABLE IF NOT EXISTS silences (
    id INTEGER PRIMARY KEY AUTOINCREMENT, rule TEXT, device TEXT, until INTEGER NOT NULL,
    actor TEXT NOT NULL, reason TEXT NOT NULL, created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    alarm TEXT NOT NULL, event TEXT NOT NULL, channel TEXT NOT NULL, body TEXT NOT NULL,
    state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL,
    error TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (alarm, event, channel)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (channel, state, next_at);
CREATE TABLE IF NOT EXISTS positions (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
ACTIVE = "active"
RESOLVED = "resolved"
PENDING = "pending"
SENT = "sent"
DEAD = "dead"
SYSTEM = "collector"
_COLUMNS = (
    "id, rule, rule_type, subject, device, severity, roles, message, value, limit_value, "
    "unit, regulation, clause, averaging, state, raised_at, resolved_at, acked_by, acked_at"
)


@dataclass(frozen=True)
class Alarm:
    id: str
    rule: str
    rule_type: str
    subject: str
    device: str
    severity: str
    roles: tuple[str, ...]
    message: str
    value: float | None
    limit: float | None
    unit: str | None
    regulation: str | None
    clause: str | None
    averaging: str | None
    state: str
    raised_at: datetime
    resolved_at: datetime | None
    acked_by: str | None
    acked_at: datetime | None

    def event(self, event: Event, ts: datetime) -> AlarmEvent:
        return AlarmEvent(
            event=event,
            id=self.id,
            rule=self.rule,
            rule_type=self.rule_type,
            severity=self.severity,
            roles=self.roles,
            device=self.device,
            subject=self.subject,
            message=self.message,
            value=self.value,
            limit=self.limit,
            unit=self.unit,
            regulation=self.regulation,
            clause=self.clause,
            averaging=self.averaging,
            raised_at=self.raised_at,
            resolved_at=self.resolved_at,
            ts=ts,
        )


@dataclass(frozen=True)
class Silence:
    id: int
    rule: str | None
    device: str | None
    until: datetime
    actor: str
    reason: str

    def covers(self, rule: str, device: str) -> bool:
        return self.rule in (None, rule) and self.device in (None, device)


@dataclass(frozen=True)
class HistoryEntry:
    n: int
    alarm: str | None
    ts: datetime
    event: str
    actor: str
    detail: str


@dataclass(frozen=True)
class Delivery:
    alarm: str
    event: str
    channel: str
    body: bytes
    attempts: int


def _alarm(row: Sequence[object]) -> Alarm:
    (id_, rule, rule_type, subject, device, severity, roles, message, value, limit) = row[:10]
    (unit, regulation, clause, averaging, state, raised, resolved, acked_by, acked) = row[10:]
    return Alarm(
        str(id_),
        str(rule),
        str(rule_type),
        str(subject),
        str(device),
        str(severity),
        tuple(json.loads(str(roles))),
        str(message),
        value if isinstance(value, float) else None,
        limit if isinstance(limit, float) else None,
        unit if isinstance(unit, str) else None,
        regulation if isinstance(regulation, str) else None,
        clause if isinstance(clause, str) else None,
        averaging if isinstance(averaging, str) else None,
        str(state),
        from_micros(int(str(raised))),
        from_micros(int(str(resolved))) if resolved is not None else None,
        acked_by if isinstance(acked_by, str) else None,
        from_micros(int(str(acked))) if acked is not None else None,
    )


class UnknownAlarmError(LookupError):
    """No alarm has that id."""


class AlarmBook:
    """The database, shared by the evaluator, the senders, the API and the CLI; one
    connection, each change under a lock in a transaction of its own."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = open_sqlite(path, busy_timeout_s=10)
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def _rows(self, sql: str, args: Sequence[object] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            return list(self._db.execute(sql, args))

    # The lifecycle.

    def active(self) -> dict[tuple[str, str], Alarm]:
        """The active alarms by (rule, subject): what evaluation starts from after a
        restart."""
        rows = self._rows(f"SELECT {_COLUMNS} FROM alarms WHERE state = ?", (ACTIVE,))  # noqa: S608
        return {(a.rule, a.subject): a for a in map(_alarm, rows)}

    def raise_alarm(
        self,
        rule: AlarmRule,
        subject: Subject,
        breach: Breach,
        now: datetime,
        channels: Sequence[str],
    ) -> Alarm | None:
        """Raise an alarm unless one is active for the rule and subject (None then)."""
        alarm = Alarm(
            uuid.uuid4().hex,
            rule.name,
            rule.type,
            subject.name,
            subject.device,
            rule.severity,
            tuple(rule.roles),
            breach.message,
            breach.value,
            breach.limit,
            breach.unit,
            breach.regulation,
            breach.clause,
            breach.averaging,
            ACTIVE,
            now,
            None,
            None,
            None,
        )
        with write_transaction(self._db, self._lock) as db:
            try:
                db.execute(
                    f"INSERT INTO alarms ({_COLUMNS}) VALUES ({', '.join('?' * 19)})",  # noqa: S608
                    (
                        alarm.id,
                        alarm.rule,
                        alarm.rule_type,
                        alarm.subject,
                        alarm.device,
                        alarm.severity,
                        json.dumps(alarm.roles),
                        alarm.message,
                        alarm.value,
                        alarm.limit,
                        alarm.unit,
                        alarm.regulation,
                        alarm.clause,
                        alarm.averaging,
                        ACTIVE,
                        to_micros(now),
                        None,
                        None,
                        None,
                    ),
                )
            except sqlite3.IntegrityError:
                return None
            _record(db, alarm.id, now, Event.RAISED, SYSTEM, alarm.message)
            _owe(db, alarm.event(Event.RAISED, now), channels, now)
        return alarm

    def resolve(self, alarm: Alarm, now: datetime, detail: str, channels: Sequence[str]) -> Alarm:
        with write_transaction(self._db, self._lock) as db:
            db.execute(
                "UPDATE alarms SET state = ?, resolved_at = ? WHERE id = ? AND state = ?",
                (RESOLVED, to_micros(now), alarm.id, ACTIVE),
            )
            resolved = _fetch(db, alarm.id)
            _record(db, alarm.id, now, Event.RESOLVED, SYSTEM, detail)
            _owe(db, resolved.event(Event.RESOLVED, now), channels, now)
        return resolved

    def acknowledge(self, alarm_id: str, actor: str, now: datetime) -> Alarm:
        """Someone has seen it; acknowledging twice keeps the first."""
        with write_transaction(self._db, self._lock) as db:
            found = _fetch(db, alarm_id)
            if found.acked_by is not None:
                return found
            db.execute(
                "UPDATE alarms SET acked_by = ?, acked_at = ? WHERE id = ?",
                (actor, to_micros(now), alarm_id),
            )
            _record(db, alarm_id, now, Event.ACKNOWLEDGED, actor, "")
            return _fetch(db, alarm_id)

    def silence(
        self,
        rule: str | None,
        device: str | None,
        until: datetime,
        actor: str,
        reason: str,
        now: datetime,
    ) -> Silence:
        """Raise nothing for the rule, the device or both until `until` (a maintenance
        window); alarms already active stay so until they clear."""
        if rule is None and device is None:
            raise ValueError(_("a silence names a rule, a device or both"))
        with write_transaction(self._db, self._lock) as db:
            cursor = db.execute(
                "INSERT INTO silences (rule, device, until, actor, reason, created)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (rule, device, to_micros(until), actor, reason, to_micros(now)),
            )
            detail = f"rule={rule or '*'} device={device or '*'} until={until.isoformat()}"
            _record(db, None, now, Event.SILENCED, actor, f"{detail}: {reason}")
            silence_id = cursor.lastrowid
        return Silence(int(silence_id or 0), rule, device, until, actor, reason)

    def silences(self, now: datetime) -> list[Silence]:
        rows = self._rows(
            "SELECT id, rule, device, until, actor, reason FROM silences WHERE until > ?",
            (to_micros(now),),
        )
        return [
            Silence(
                int(str(i)),
                r if isinstance(r, str) else None,
                d if isinstance(d, str) else None,
                from_micros(int(str(u))),
                str(a),
                str(why),
            )
            for i, r, d, u, a, why in rows
        ]

    def alarms(self, *, active_only: bool = False, limit: int = 200) -> list[Alarm]:
        where = "WHERE state = 'active'" if active_only else ""
        sql = f"SELECT {_COLUMNS} FROM alarms {where} ORDER BY raised_at DESC LIMIT ?"  # noqa: S608
        return [_alarm(row) for row in self._rows(sql, (limit,))]

    def get(self, alarm_id: str) -> Alarm:
        with self._lock:
            return _fetch(self._db, alarm_id)

    def history(self, alarm_id: str | None = None) -> list[HistoryEntry]:
        """Every change, in order; of one alarm with `alarm_id`."""
        if alarm_id is not None:
            return self._history("WHERE alarm = ? ORDER BY n", (alarm_id,))
        return self._history("ORDER BY n", ())

    def history_after(self, n: int, limit: int = 500) -> list[HistoryEntry]:
        """The changes after number `n`, for a stream that resumes where it left off."""
        return self._history("WHERE n > ? ORDER BY n LIMIT ?", (n, limit))

    def last_change(self) -> int:
        [(n,)] = self._rows("SELECT coalesce(max(n), 0) FROM history")
        return int(str(n))

    def _history(self, where: str, args: Sequence[object]) -> list[HistoryEntry]:
        sql = f"SELECT n, alarm, ts, event, actor, detail FROM history {where}"  # noqa: S608
        return [
            HistoryEntry(
                int(str(n)),
                a if isinstance(a, str) else None,
                from_micros(int(str(ts))),
                str(e),
                str(actor),
                str(d),
            )
            for n, a, ts, e, actor, d in self._rows(sql, args)
        ]

    # Deliveries.

    def due(self, channel: str, now: datetime, limit: int = 100) -> list[Delivery]:
        rows = self._rows(
            "SELECT alarm, event, channel, body, attempts FROM deliveries"
            " WHERE channel = ? AND state = ? AND next_at <= ? ORDER BY next_at LIMIT ?",
            (channel, PENDING, to_micros(now), limit),
        )
        return [
            Delivery(str(a), str(e), str(c), str(b).encode(), int(str(n))) for a, e, c, b, n in rows
        ]

    def next_attempt(self, channel: str) -> datetime | None:
        [(first,)] = self._rows(
            "SELECT min(next_at) FROM deliveries WHERE channel = ? AND state = ?",
            (channel, PENDING),
        )
        return from_micros(int(str(first))) if first is not None else None

    def delivered(self, delivery: Delivery, attempts: int) -> None:
        self._set_delivery(delivery, SENT, attempts, None, "")

    def failed(
        self, delivery: Delivery, attempts: int, retry_at: datetime | None, error: str
    ) -> None:
        """Retried at `retry_at`; dead-lettered when there is none."""
        self._set_delivery(delivery, PENDING if retry_at else DEAD, attempts, retry_at, error)

    def _set_delivery(
        self, d: Delivery, state: str, attempts: int, retry_at: datetime | None, error: str
    ) -> None:
        with write_transaction(self._db, self._lock) as db:
            db.execute(
                "UPDATE deliveries SET state = ?, attempts = ?, error = ?,"
                " next_at = coalesce(?, next_at) WHERE alarm = ? AND event = ? AND channel = ?",
                (
                    state,
                    attempts,
                    error[:500],
                    to_micros(retry_at) if retry_at else None,
                    d.alarm,
                    d.event,
                    d.channel,
                ),
            )

    def delivery_counts(self) -> dict[tuple[str, str], int]:
        """Deliveries by (channel, state), for the metrics."""
        rows = self._rows("SELECT channel, state, count(*) FROM deliveries GROUP BY 1, 2")
        return {(str(c), str(s)): int(str(n)) for c, s, n in rows}

    # Where evaluation stands, kept across restarts.

    def position(self, name: str) -> str | None:
        rows = self._rows("SELECT value FROM positions WHERE name = ?", (name,))
        return str(rows[0][0]) if rows else None

    def set_positions(self, values: dict[str, str]) -> None:
        if not values:
            return
        with write_transaction(self._db, self._lock) as db:
            db.executemany(
                "INSERT INTO positions (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                list(values.items()),
            )


def _fetch(db: sqlite3.Connection, alarm_id: str) -> Alarm:
    row = db.execute(f"SELECT {_COLUMNS} FROM alarms WHERE id = ?", (alarm_id,)).fetchone()  # noqa: S608
    if row is None:
        raise UnknownAlarmError(_("no alarm {id}").format(id=alarm_id))
    return _alarm(row)


def _record(
    db: sqlite3.Connection,
    alarm: str | None,
    now: datetime,
    event: Event,
    actor: str,
    detail: str,
) -> None:
    db.execute(
        "INSERT INTO history (alarm, ts, event, actor, detail) VALUES (?, ?, ?, ?, ?)",
        (alarm, to_micros(now), event.value, actor, detail),
    )


def _owe(db: sqlite3.Connection, event: AlarmEvent, channels: Sequence[str], now: datetime) -> None:
    body = event.model_dump_json()
    db.executemany(
        "INSERT OR IGNORE INTO deliveries (alarm, event, channel, body, state, next_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [(event.id, event.event.value, c, body, PENDING, to_micros(now)) for c in channels],
    )
