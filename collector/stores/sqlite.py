"""The embedded store: one SQLite file, WAL mode, zero setup.

Readings are keyed on series + sample time, so a message delivered twice stores its
samples once. Every data message's (device, epoch, seq) goes into a ledger in the same
transaction as its data: the ledger is how the collector counts duplicates and gaps, and
because it commits with the data, the count is exact even across crashes. A box that lost
its state counts again from 1 under a new epoch (iotwire/messages.py), so each epoch's
gaps are counted from 1 on its own: a lost first message is a gap like any other. The
empty epoch stands for agents older than epochs.

The counts people read (`devices()`) are kept beside the ledger and move in the same
transaction: per device its duplicates, per (device, epoch) its messages and highest
number. Files made before epochs are migrated when opened (`_migrate`).
"""

import logging
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from collector.config import RetentionSettings
from collector.i18n import services
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
from iotwire.messages import Health, PlateRead, Quality, Status, Telemetry

_ = services.gettext

log = logging.getLogger(__name__)

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
    device TEXT NOT NULL, epoch TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL,
    received INTEGER NOT NULL,
    PRIMARY KEY (device, epoch, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS devices (
    device TEXT PRIMARY KEY, site TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'unknown',
    version TEXT NOT NULL DEFAULT '', boot_id TEXT NOT NULL DEFAULT '',
    last_seen INTEGER, duplicates INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS epochs (
    device TEXT NOT NULL, epoch TEXT NOT NULL,
    messages INTEGER NOT NULL, max_seq INTEGER NOT NULL,
    PRIMARY KEY (device, epoch)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

# A file made before epochs: its ledger is keyed (device, seq) and its devices table
# holds the counts (or, older still, only the duplicates). Everything in it came from
# agents older than epochs, so the ledger moves over under the empty epoch, and the counts
# of that epoch are taken from the ledger, which holds them whichever the file's age.
_EPOCH_LEDGER = """
CREATE TABLE ledger_by_epoch (
    device TEXT NOT NULL, epoch TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL,
    received INTEGER NOT NULL,
    PRIMARY KEY (device, epoch, seq)
) WITHOUT ROWID;
INSERT INTO ledger_by_epoch SELECT device, '', seq, kind, received FROM ledger;
DROP TABLE ledger;
ALTER TABLE ledger_by_epoch RENAME TO ledger;
CREATE TABLE epochs (
    device TEXT NOT NULL, epoch TEXT NOT NULL,
    messages INTEGER NOT NULL, max_seq INTEGER NOT NULL,
    PRIMARY KEY (device, epoch)
) WITHOUT ROWID;
INSERT INTO epochs SELECT device, '', count(*), max(seq) FROM ledger GROUP BY device;
"""
# The devices table's own counts, now per epoch in `epochs`.
_PER_DEVICE_COUNTS = ("messages", "max_seq")


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


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    """Bring a file made before epochs to the current schema, in one transaction. Checked
    again once the write lock is held: two processes opening an old file at once (the
    collector and a CLI command) migrate it once."""
    if not _is_before_epochs(db):
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        if _is_before_epochs(db):
            log.info("%s: moving the ledger to per-epoch counts, once", path)
            for statement in filter(str.strip, _EPOCH_LEDGER.split(";")):
                db.execute(statement)
            for column in sorted(set(_PER_DEVICE_COUNTS) & _columns(db, "devices")):
                db.execute(f"ALTER TABLE devices DROP COLUMN {column}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _is_before_epochs(db: sqlite3.Connection) -> bool:
    ledger = _columns(db, "ledger")
    return bool(ledger) and "epoch" not in ledger


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


_LEDGER_GAP = 64
"""A box's numbers in one batch further apart than this are looked up in the ledger
apart: each range read costs at most this many entries per message of the batch."""

_INSERT_READING = "INSERT OR IGNORE INTO readings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_ReadingRow = tuple[str, str, str, int, str, float | None, str, str, int]
_QUALITY_TEXT = {quality: quality.value for quality in Quality}


def _reading_rows(site: str, message: Telemetry) -> list[_ReadingRow]:
    device, seq = message.device, message.seq
    return [
        (
            device,
            sample.sensor,
            r.parameter,
            ts,
            site,
            r.value,
            r.unit,
            _QUALITY_TEXT[r.quality],
            seq,
        )
        for sample in message.samples
        for ts in (to_micros(sample.ts),)
        for r in sample.readings
    ]


class _ReadingsIgnoredError(Exception):
    """Readings written at once were not all new: the batch is written message by
    message instead."""


@dataclass
class _DeviceCounts:
    site: str
    last_seen: int
    duplicates: int = 0


class _BatchCounts:
    """What a batch adds to the counts `devices()` reads, gathered while its messages
    are written and stored once per device and per epoch at the end of the batch: a
    batch of 500 messages from 50 boxes updates 50 rows of each, not 500."""

    def __init__(self) -> None:
        self._devices: dict[str, _DeviceCounts] = {}
        self._epochs: dict[tuple[str, str], tuple[int, int]] = {}

    def add(self, site: str, device: str, epoch: str, seq: int, received: int, fresh: bool) -> None:
        counts = self._devices.get(device)
        if counts is None:
            counts = self._devices[device] = _DeviceCounts(site, received)
        counts.last_seen = max(counts.last_seen, received)
        if not fresh:
            counts.duplicates += 1
            return
        messages, max_seq = self._epochs.get((device, epoch), (0, 0))
        self._epochs[device, epoch] = (messages + 1, max(max_seq, seq))

    def store(self, db: sqlite3.Connection) -> None:
        # A device's site is the one it was first heard from, until its status says.
        db.executemany(
            "INSERT INTO devices (device, site, last_seen, duplicates) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (device) DO UPDATE SET"
            " last_seen = max(coalesce(last_seen, 0), excluded.last_seen),"
            " duplicates = duplicates + excluded.duplicates",
            [(d, c.site, c.last_seen, c.duplicates) for d, c in self._devices.items()],
        )
        db.executemany(
            "INSERT INTO epochs VALUES (?, ?, ?, ?) ON CONFLICT (device, epoch) DO UPDATE SET"
            " messages = messages + excluded.messages,"
            " max_seq = max(max_seq, excluded.max_seq)",
            [(d, e, messages, max_seq) for (d, e), (messages, max_seq) in self._epochs.items()],
        )


class SqliteStore:
    def __init__(
        self,
        path: Path,
        retention: RetentionSettings | None = None,
        busy_timeout_s: float = 10.0,
    ) -> None:
        self._retention = retention or RetentionSettings()
        self._db = open_sqlite(path, synchronous_full=True, busy_timeout_s=busy_timeout_s)
        _migrate(self._db, path)
        self._db.executescript(_SCHEMA)
        # Ingest and the rollup run in different threads; one connection means one
        # transaction at a time, or one thread's COMMIT would end the other's.
        self._lock = threading.RLock()

    def begin_batch(self, batch: Sequence[ReceivedMessage]) -> PendingBatch:
        """SQLite works in this process, so there is nothing to overlap: the batch is
        committed before this returns."""
        outcomes = self.write_batch(batch)
        return PendingBatch(lambda: outcomes)

    def write_batch(self, batch: Sequence[ReceivedMessage]) -> list[WriteOutcome]:
        """One transaction for the whole batch: one fsync however many messages. The
        ledger is asked once per run of a box's numbers which of them it holds, and the
        new entries and all their readings go in with one statement each, rather than a
        few per message. Only when some reading was there already (a sample sent again
        under a new number) is the batch written again message by message, so that each
        outcome counts exactly the rows its message added."""
        with self._lock:
            try:
                return self._transaction(batch, one_by_one=False)
            except _ReadingsIgnoredError:
                return self._transaction(batch, one_by_one=True)

    def _transaction(
        self, batch: Sequence[ReceivedMessage], *, one_by_one: bool
    ) -> list[WriteOutcome]:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            outcomes = self._write(batch, one_by_one=one_by_one)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return outcomes

    def _write(self, batch: Sequence[ReceivedMessage], *, one_by_one: bool) -> list[WriteOutcome]:
        held = self._held(batch)
        counts = _BatchCounts()
        entries: list[tuple[str, str, int, str, int]] = []
        fresh: list[ReceivedMessage] = []
        new: list[bool] = []
        last_received, received = None, 0
        for delivery in batch:
            message = delivery.message
            epoch = message.epoch or ""
            if delivery.received is not last_received:  # one arrival time for the batch
                last_received, received = delivery.received, to_micros(delivery.received)
            key = (message.device, epoch, message.seq)
            is_new = key not in held
            if is_new:
                held.add(key)  # the same message twice in one batch: the second repeats
                entries.append((*key, message.kind, received))
                fresh.append(delivery)
            new.append(is_new)
            counts.add(delivery.site, message.device, epoch, message.seq, received, is_new)
        self._db.executemany("INSERT INTO ledger VALUES (?, ?, ?, ?, ?)", entries)
        rows = iter(self._insert_each(fresh) if one_by_one else self._insert_all(fresh))
        counts.store(self._db)
        return [
            WriteOutcome(rows=next(rows), duplicate=False)
            if is_new
            else WriteOutcome(rows=0, duplicate=True)
            for is_new in new
        ]

    def _held(self, batch: Sequence[ReceivedMessage]) -> set[tuple[str, str, int]]:
        """Which of the batch's (device, epoch, seq) the ledger holds: one range read per
        run of a box's numbers, a run broken where they lie more than `_LEDGER_GAP` apart,
        so a resent message among new ones never reads the ledger between them."""
        numbers: dict[tuple[str, str], list[int]] = {}
        for delivery in batch:
            message = delivery.message
            numbers.setdefault((message.device, message.epoch or ""), []).append(message.seq)
        held: set[tuple[str, str, int]] = set()
        for (device, epoch), seqs in numbers.items():
            seqs.sort()
            first = seqs[0]
            for seq, following in zip(seqs, [*seqs[1:], None], strict=True):
                if following is not None and following - seq <= _LEDGER_GAP:
                    continue
                held.update(
                    (device, epoch, found)
                    for (found,) in self._db.execute(
                        "SELECT seq FROM ledger WHERE device = ? AND epoch = ?"
                        " AND seq BETWEEN ? AND ?",
                        (device, epoch, first, seq),
                    )
                )
                if following is not None:
                    first = following
        return held

    def _insert_all(self, fresh: Sequence[ReceivedMessage]) -> list[int]:
        """Rows each message added, its readings written with everyone else's. Raises
        _ReadingsIgnoredError when not every reading went in: whose did not is unknown."""
        readings: list[_ReadingRow] = []
        added: list[int] = []
        for delivery in fresh:
            message = delivery.message
            if isinstance(message, Telemetry):
                rows = _reading_rows(delivery.site, message)
                readings += rows
                added.append(len(rows))
            else:
                added.append(self._insert(delivery.site, message))
        before = self._db.total_changes
        self._db.executemany(_INSERT_READING, readings)
        if self._db.total_changes - before != len(readings):
            raise _ReadingsIgnoredError
        return added

    def _insert_each(self, fresh: Sequence[ReceivedMessage]) -> list[int]:
        return [self._insert(delivery.site, delivery.message) for delivery in fresh]

    def _insert(self, site: str, message: Telemetry | Health | PlateRead) -> int:
        if isinstance(message, PlateRead):
            return 0
        if isinstance(message, Health):
            body = message.model_dump_json(exclude={"v", "kind", "device", "seq", "ts"})
            return self._db.execute(
                "INSERT OR IGNORE INTO health VALUES (?, ?, ?, ?, ?)",
                (message.device, to_micros(message.ts), site, message.seq, body),
            ).rowcount
        before = self._db.total_changes
        self._db.executemany(_INSERT_READING, _reading_rows(site, message))
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
                raise ValueError(
                    _("the hourly rollup answers whole hours, not {window}").format(
                        window=query.window
                    )
                )
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
            _last_time,
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
        """Each epoch counts its gaps from 1; the empty epoch (agents older than epochs)
        is no reset, so a box's upgrade to its first epoch is not one either."""
        sql = """
            SELECT d.device, d.site, d.state, d.version, d.last_seen, d.duplicates,
                   coalesce(sum(e.messages), 0), coalesce(sum(e.max_seq - e.messages), 0),
                   max(coalesce(sum(e.epoch != ''), 0) - 1, 0)
            FROM devices d LEFT JOIN epochs e USING (device)
            GROUP BY d.device ORDER BY d.device
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
                state_resets=resets,
            )
            for device, site, state, version, last_seen, duplicates, messages, gaps, resets in (
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
