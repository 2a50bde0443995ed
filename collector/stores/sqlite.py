"""The embedded store: one SQLite file, WAL mode, zero setup.

Readings are keyed on series + sample time, so a message delivered twice stores its
samples once. Every data message's (device, seq) goes into a ledger in the same
transaction as its data: the ledger is how the collector counts duplicates and gaps, and
because it commits with the data, the count is exact even across crashes. Sequences start
at 1, so a device's gaps are counted from 1: a lost first message is a gap like any other.
"""

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from collector.query import DeviceRow, ReadingQuery, ReadingRow
from collector.stores.base import WriteOutcome
from iotwire.messages import Health, Status, Telemetry

_SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    device TEXT NOT NULL, sensor TEXT NOT NULL, parameter TEXT NOT NULL, ts INTEGER NOT NULL,
    site TEXT NOT NULL, value REAL, unit TEXT NOT NULL, quality TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (device, sensor, parameter, ts)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS readings_by_time ON readings (ts);
CREATE TABLE IF NOT EXISTS health (
    device TEXT NOT NULL, ts INTEGER NOT NULL, site TEXT NOT NULL, seq INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (device, ts)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ledger (
    device TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, received INTEGER NOT NULL,
    PRIMARY KEY (device, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS devices (
    device TEXT PRIMARY KEY, site TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'unknown',
    version TEXT NOT NULL DEFAULT '', boot_id TEXT NOT NULL DEFAULT '',
    last_seen INTEGER, duplicates INTEGER NOT NULL DEFAULT 0
);
"""


_ROW_COLUMNS = "ts, site, device, sensor, parameter, value, unit, quality"
_ROW_ORDER = "ts, device, sensor, parameter"


def _micros(ts: datetime) -> int:
    """Exact integer microseconds since the epoch: a float would blur the series key."""
    delta = ts - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_micros(us: int) -> datetime:
    return datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000)


class SqliteStore:
    def __init__(self, path: Path, busy_timeout_s: float = 10.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        self._db.executescript(_SCHEMA)

    def write(self, site: str, message: Telemetry | Health, received: datetime) -> WriteOutcome:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                "INSERT INTO devices (device, site) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (message.device, site),
            )
            fresh = db.execute(
                "INSERT OR IGNORE INTO ledger VALUES (?, ?, ?, ?)",
                (message.device, message.seq, message.kind, _micros(received)),
            ).rowcount
            rows = self._insert(site, message) if fresh else 0
            db.execute(
                "UPDATE devices SET last_seen = max(coalesce(last_seen, 0), ?),"
                " duplicates = duplicates + ? WHERE device = ?",
                (_micros(received), 0 if fresh else 1, message.device),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return WriteOutcome(rows=rows, duplicate=not fresh)

    def _insert(self, site: str, message: Telemetry | Health) -> int:
        if isinstance(message, Health):
            body = message.model_dump_json(exclude={"v", "kind", "device", "seq", "ts"})
            return self._db.execute(
                "INSERT OR IGNORE INTO health VALUES (?, ?, ?, ?, ?)",
                (message.device, _micros(message.ts), site, message.seq, body),
            ).rowcount
        rows = [
            (
                message.device,
                sample.sensor,
                r.parameter,
                _micros(sample.ts),
                site,
                r.value,
                r.unit,
                r.quality.value,
                message.seq,
            )
            for sample in message.samples
            for r in sample.readings
        ]
        before = self._db.total_changes
        self._db.executemany("INSERT OR IGNORE INTO readings VALUES (?,?,?,?,?,?,?,?,?)", rows)
        return self._db.total_changes - before

    def record_status(self, site: str, status: Status, received: datetime) -> None:
        self._db.execute(
            "INSERT INTO devices (device, site, state, version, boot_id, last_seen)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (device) DO UPDATE SET"
            " site = excluded.site, state = excluded.state, version = excluded.version,"
            " boot_id = excluded.boot_id,"
            " last_seen = max(coalesce(last_seen, 0), excluded.last_seen)",
            (status.device, site, status.state, status.version, status.boot_id, _micros(received)),
        )

    def query(self, query: ReadingQuery) -> list[ReadingRow]:
        clauses, args = ["1=1"], []
        if query.start is not None:
            clauses.append("ts >= ?")
            args.append(_micros(query.start))
        if query.end is not None:
            clauses.append("ts < ?")
            args.append(_micros(query.end))
        for column, wanted in (("device", query.devices), ("parameter", query.parameters)):
            if wanted:
                clauses.append(f"{column} IN ({','.join('?' * len(wanted))})")
                args.extend(wanted)
        # Only fixed clause text is interpolated; every value is a bound parameter.
        where = " AND ".join(clauses)
        sql = f"SELECT {_ROW_COLUMNS} FROM readings WHERE {where} ORDER BY {_ROW_ORDER} LIMIT ?"  # noqa: S608
        return [
            ReadingRow(_from_micros(ts), *rest)
            for ts, *rest in self._db.execute(sql, (*args, query.limit))
        ]

    def devices(self) -> list[DeviceRow]:
        sql = """
            SELECT d.device, d.site, d.state, d.version, d.last_seen, d.duplicates,
                   count(l.seq), coalesce(max(l.seq) - count(l.seq), 0)
            FROM devices d LEFT JOIN ledger l ON l.device = d.device
            GROUP BY d.device ORDER BY d.device
        """
        return [
            DeviceRow(
                device=device,
                site=site,
                state=state,
                version=version,
                last_seen=_from_micros(last_seen) if last_seen is not None else None,
                messages=messages,
                duplicates=duplicates,
                gaps=gaps,
            )
            for device, site, state, version, last_seen, duplicates, messages, gaps in (
                self._db.execute(sql)
            )
        ]

    def close(self) -> None:
        self._db.close()
