"""The embedded store: one SQLite file, WAL mode, zero setup.

Readings are keyed on series + sample time, so a message delivered twice stores its
samples once. Every data message's (device, seq) goes into a ledger in the same
transaction as its data: the ledger is how the collector counts duplicates and gaps, and
because it commits with the data, the count is exact even across crashes. Sequences start
at 1, so a device's gaps are counted from 1: a lost first message is a gap like any other.
"""

import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from collector.config import RetentionSettings
from collector.query import (
    Aggregate,
    AggregateQuery,
    AggregateRow,
    DeviceRow,
    LatestQuery,
    ReadingQuery,
    ReadingRow,
    aggregate_order,
    from_micros,
    latest_order,
    to_micros,
)
from collector.stores.base import PendingBatch, ReceivedMessage, WriteOutcome
from iotruntime.sqlite_files import open_sqlite
from iotwire.messages import Health, PlateRead, Status, Telemetry

_SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    device TEXT NOT NULL, sensor TEXT NOT NULL, parameter TEXT NOT NULL, ts INTEGER NOT NULL,
    site TEXT NOT NULL, value REAL, unit TEXT NOT NULL, quality TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (device, sensor, parameter, ts)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS readings_by_time ON readings (ts);
CREATE TABLE IF NOT EXISTS readings_hourly (
    device TEXT NOT NULL, sensor TEXT NOT NULL, parameter TEXT NOT NULL, hour INTEGER NOT NULL,
    site TEXT NOT NULL, unit TEXT NOT NULL,
    mean REAL NOT NULL, min REAL NOT NULL, max REAL NOT NULL, last REAL NOT NULL,
    count INTEGER NOT NULL, sum REAL NOT NULL,
    PRIMARY KEY (device, sensor, parameter, hour, site, unit)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS readings_hourly_by_time ON readings_hourly (hour);
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
    last_seen INTEGER, duplicates INTEGER NOT NULL DEFAULT 0,
    messages INTEGER NOT NULL DEFAULT 0, max_seq INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

# Files made before the devices table kept its own counts get them from the ledger once.
_COUNTED_COLUMNS = """
ALTER TABLE devices ADD COLUMN messages INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN max_seq INTEGER NOT NULL DEFAULT 0;
UPDATE devices SET
    messages = (SELECT count(*) FROM ledger l WHERE l.device = devices.device),
    max_seq = (SELECT coalesce(max(seq), 0) FROM ledger l WHERE l.device = devices.device);
"""


_ROW_COLUMNS = "ts, site, device, sensor, parameter, value, unit, quality"
_ROW_ORDER = "ts, device, sensor, parameter"
_SERIES = "device, sensor, parameter, site, unit"
_USABLE = "quality = 'ok' AND value IS NOT NULL"
_HOUR_US = 3_600_000_000


def _window_start(column: str, window_us: int) -> str:
    """Epoch-aligned window start, floor division also for times before 1970."""
    w = int(window_us)
    return f"({column} - (({column} % {w}) + {w}) % {w})"


def _filters(
    column_of_time: str,
    start: datetime | None,
    end: datetime | None,
    devices: tuple[str, ...],
    parameters: tuple[str, ...],
) -> tuple[str, list[object]]:
    clauses = ["1=1"]
    args: list[object] = []
    if start is not None:
        clauses.append(f"{column_of_time} >= ?")
        args.append(to_micros(start))
    if end is not None:
        clauses.append(f"{column_of_time} < ?")
        args.append(to_micros(end))
    for column, wanted in (("device", devices), ("parameter", parameters)):
        if wanted:
            clauses.append(f"{column} IN ({','.join('?' * len(wanted))})")
            args.extend(wanted)
    return " AND ".join(clauses), args


class SqliteStore:
    def __init__(
        self,
        path: Path,
        retention: RetentionSettings | None = None,
        busy_timeout_s: float = 10.0,
    ) -> None:
        self._retention = retention or RetentionSettings()
        self._db = open_sqlite(path, synchronous_full=True, busy_timeout_s=busy_timeout_s)
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(devices)")}
        if "messages" not in columns:
            self._db.executescript(f"BEGIN;{_COUNTED_COLUMNS}COMMIT;")
        # Ingest and the rollup run in different threads; one connection means one
        # transaction at a time, or one thread's COMMIT would end the other's.
        self._lock = threading.RLock()

    def begin_batch(self, batch: Sequence[ReceivedMessage]) -> PendingBatch:
        """SQLite works in this process, so there is nothing to overlap: the batch is
        committed before this returns."""
        outcomes = self.write_batch(batch)
        return PendingBatch(lambda: outcomes)

    def write_batch(self, batch: Sequence[ReceivedMessage]) -> list[WriteOutcome]:
        """One transaction for the whole batch: one fsync however many messages."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                outcomes = [self._write_one(d) for d in batch]
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return outcomes

    def _write_one(self, delivery: ReceivedMessage) -> WriteOutcome:
        db, message, site = self._db, delivery.message, delivery.site
        received = to_micros(delivery.received)
        db.execute(
            "INSERT INTO devices (device, site) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (message.device, site),
        )
        fresh = db.execute(
            "INSERT OR IGNORE INTO ledger VALUES (?, ?, ?, ?)",
            (message.device, message.seq, message.kind, received),
        ).rowcount
        rows = self._insert(site, message) if fresh else 0
        # The device's counts move in the same transaction as its ledger, so reading
        # them costs one row per device however long the history.
        db.execute(
            "UPDATE devices SET last_seen = max(coalesce(last_seen, 0), ?),"
            " duplicates = duplicates + ?, messages = messages + ?,"
            " max_seq = max(max_seq, ?) WHERE device = ?",
            (received, 0 if fresh else 1, 1 if fresh else 0, message.seq, message.device),
        )
        return WriteOutcome(rows=rows, duplicate=not fresh)

    def _insert(self, site: str, message: Telemetry | Health | PlateRead) -> int:
        if isinstance(message, PlateRead):
            return 0
        if isinstance(message, Health):
            body = message.model_dump_json(exclude={"v", "kind", "device", "seq", "ts"})
            return self._db.execute(
                "INSERT OR IGNORE INTO health VALUES (?, ?, ?, ?, ?)",
                (message.device, to_micros(message.ts), site, message.seq, body),
            ).rowcount
        rows = [
            (
                message.device,
                sample.sensor,
                r.parameter,
                to_micros(sample.ts),
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
        with self._lock:
            self._record_status(site, status, received)

    def _record_status(self, site: str, status: Status, received: datetime) -> None:
        self._db.execute(
            "INSERT INTO devices (device, site, state, version, boot_id, last_seen)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (device) DO UPDATE SET"
            " site = excluded.site, state = excluded.state, version = excluded.version,"
            " boot_id = excluded.boot_id,"
            " last_seen = max(coalesce(last_seen, 0), excluded.last_seen)",
            (
                status.device,
                site,
                status.state,
                status.version,
                status.boot_id,
                to_micros(received),
            ),
        )

    def _rows(self, sql: str, args: Sequence[object]) -> list[tuple[Any, ...]]:
        """A read, never in the middle of another thread's write transaction."""
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # Only fixed clause text is interpolated into the statements below; every value is a
    # bound parameter.

    def query(self, query: ReadingQuery) -> list[ReadingRow]:
        where, args = _filters("ts", query.start, query.end, query.devices, query.parameters)
        sql = f"SELECT {_ROW_COLUMNS} FROM readings WHERE {where} ORDER BY {_ROW_ORDER} LIMIT ?"  # noqa: S608
        return [
            ReadingRow(from_micros(ts), *rest)
            for ts, *rest in self._rows(sql, (*args, query.limit))
        ]

    def aggregate(self, query: AggregateQuery, *, rollup: bool = False) -> list[AggregateRow]:
        window_us = int(query.window.total_seconds()) * 1_000_000
        if rollup:
            if window_us % _HOUR_US:
                raise ValueError(f"the hourly rollup answers whole hours, not {query.window}")
            table, time, usable = "readings_hourly", "hour", "1=1"
            columns = "sum(sum) / sum(count), min(min), max(max), sum(count), max(hour)"
            last = "last"
        else:
            table, time, usable = "readings", "ts", _USABLE
            columns = "avg(value), min(value), max(value), count(value), max(ts)"
            last = "value"
        where, args = _filters(time, query.start, query.end, query.devices, query.parameters)
        sql = f"""
            WITH w AS (
                SELECT {_window_start(time, window_us)} AS win, {_SERIES},
                       {columns} AS last_time
                FROM {table} WHERE {usable} AND {where}
                GROUP BY win, {_SERIES}
            )
            SELECT w.*, r.{last} FROM w JOIN {table} r
              ON r.device = w.device AND r.sensor = w.sensor AND r.parameter = w.parameter
             AND r.site = w.site AND r.unit = w.unit AND r.{time} = w.last_time
        """  # noqa: S608
        rows = []
        for (
            win,
            device,
            sensor,
            parameter,
            site,
            unit,
            mean,
            low,
            high,
            count,
            _,
            last_value,
        ) in self._rows(sql, args):
            found = {
                Aggregate.MEAN: mean,
                Aggregate.MIN: low,
                Aggregate.MAX: high,
                Aggregate.LAST: last_value,
                Aggregate.COUNT: count,
            }
            rows.append(
                AggregateRow(
                    window_start=from_micros(win),
                    site=site,
                    device=device,
                    sensor=sensor,
                    parameter=parameter,
                    unit=unit,
                    values=tuple(float(found[f]) for f in query.functions),
                )
            )
        return sorted(rows, key=aggregate_order)

    def latest(self, query: LatestQuery) -> list[ReadingRow]:
        where, args = _filters("ts", None, None, query.devices, query.parameters)
        if query.at is not None:
            where += " AND ts <= ?"
            args.append(to_micros(query.at))
        sql = f"""
            WITH m AS (
                SELECT {_SERIES}, max(ts) AS ts FROM readings
                WHERE {_USABLE} AND {where} GROUP BY {_SERIES}
            )
            SELECT {", ".join(f"r.{c.strip()}" for c in _ROW_COLUMNS.split(","))}
            FROM m JOIN readings r USING (device, sensor, parameter, ts)
        """  # noqa: S608
        rows = [ReadingRow(from_micros(ts), *rest) for ts, *rest in self._rows(sql, args)]
        return sorted(rows, key=latest_order)

    def devices(self) -> list[DeviceRow]:
        sql = """
            SELECT device, site, state, version, last_seen, duplicates, messages,
                   max_seq - messages
            FROM devices ORDER BY device
        """
        return [
            DeviceRow(
                device=device,
                site=site,
                state=state,
                version=version,
                last_seen=from_micros(last_seen) if last_seen is not None else None,
                messages=messages,
                duplicates=duplicates,
                gaps=gaps,
            )
            for device, site, state, version, last_seen, duplicates, messages, gaps in (
                self._rows(sql, ())
            )
        ]

    def roll_up(self, start: datetime, end: datetime) -> int:
        where, args = _filters("ts", start, end, (), ())
        hour = _window_start("ts", _HOUR_US)
        sql = f"""
            INSERT OR REPLACE INTO readings_hourly
            WITH w AS (
                SELECT {hour} AS hour, {_SERIES}, avg(value) AS mean, min(value) AS min,
                       max(value) AS max, count(value) AS count, sum(value) AS sum,
                       max(ts) AS last_ts
                FROM readings WHERE {_USABLE} AND {where} GROUP BY hour, {_SERIES}
            )
            SELECT w.device, w.sensor, w.parameter, w.hour, w.site, w.unit,
                   w.mean, w.min, w.max, r.value, w.count, w.sum
            FROM w JOIN readings r ON r.device = w.device AND r.sensor = w.sensor
             AND r.parameter = w.parameter AND r.ts = w.last_ts
        """  # noqa: S608
        with self._lock, self._db:
            rows = self._db.execute(sql, args).rowcount
            self._db.execute(
                "INSERT INTO meta VALUES ('rolled_until', ?) ON CONFLICT (name)"
                " DO UPDATE SET value = max(value, excluded.value)",
                (to_micros(end),),
            )
            return rows

    def rollup_horizon(self) -> datetime | None:
        rows = self._rows("SELECT value FROM meta WHERE name = 'rolled_until'", ())
        return from_micros(rows[0][0]) if rows else None

    def purge(self, now: datetime) -> int:
        raw_before = to_micros(now - timedelta(days=self._retention.raw_days))
        hourly_before = to_micros(now - timedelta(days=self._retention.hourly_days))
        with self._lock, self._db:
            return sum(
                self._db.execute(sql, (before,)).rowcount
                for sql, before in (
                    ("DELETE FROM readings WHERE ts < ?", raw_before),
                    ("DELETE FROM health WHERE ts < ?", raw_before),
                    ("DELETE FROM readings_hourly WHERE hour < ?", hourly_before),
                )
            )

    def close(self) -> None:
        self._db.close()
