"""What only the SQLite store does: exact row counts and its own purge. What both
stores do is in test_store_contract."""

import sqlite3
from contextlib import closing
from datetime import timedelta

import pytest

from collector.config import RetentionSettings
from collector.query import AggregateQuery, ReadingQuery, to_micros
from collector.stores.base import ReceivedMessage
from collector.stores.sqlite import SqliteStore
from iotwire.messages import ClockSync, Health
from tests.collector.stores.store_cases import T0, message, write


def test_a_resent_sample_under_a_new_number_adds_no_row(tmp_path):
    store = SqliteStore(tmp_path / "s.sqlite")
    write(store, "dd", message("air-1", 1, 0, pm10=1.0))
    outcome = write(store, "dd", message("air-1", 2, 0, pm10=1.0))
    assert (outcome.rows, outcome.duplicate) == (0, False)


def test_purge_keeps_raw_data_and_rollups_for_their_own_times(tmp_path):
    store = SqliteStore(tmp_path / "s.sqlite", RetentionSettings(raw_days=2, hourly_days=10))
    store.write_batch(
        [
            ReceivedMessage("dd", message("air-1", day + 1, day * 1440, pm10=day), T0)
            for day in range(6)
        ]
    )
    store.roll_up(T0, T0 + timedelta(days=6))
    now = T0 + timedelta(days=5, hours=1)
    deleted = store.purge(now)
    assert deleted == 4  # raw readings older than day 3 + 1 h; every rollup is kept
    assert [r.ts for r in store.query(ReadingQuery())] == [T0 + timedelta(days=d) for d in (4, 5)]
    hourly = store.aggregate(
        AggregateQuery(start=T0, end=T0 + timedelta(days=6), window=timedelta(hours=1)),
        rollup=True,
    )
    assert len(hourly) == 6
    assert store.purge(T0 + timedelta(days=12)) == 2 + 2  # raw days 4, 5; hours of days 0, 1


def test_health_is_kept_with_its_counters(tmp_path):
    store = SqliteStore(tmp_path / "s.sqlite")
    health = Health(
        device="air-1",
        seq=1,
        ts=T0,
        clock=ClockSync.SYNCED,
        boot_id="b1",
        uptime_s=12.0,
        load1=0.3,
        mem_used_pct=40.0,
        disk_used_pct=20.0,
        outbox_depth=3,
        outbox_dropped=0,
        source_errors={"aqms": 2},
    )
    [outcome] = store.write_batch([ReceivedMessage("dd", health, T0)])
    assert (outcome.rows, outcome.duplicate) == (1, False)
    [device] = store.devices()
    assert device.messages == 1


# The schema of files made before epochs, as that store created it: the ledger keyed
# (device, seq), the counts per device. Files older still kept no counts in `devices`.
_BEFORE_EPOCHS = """
CREATE TABLE readings (
    device TEXT NOT NULL, sensor TEXT NOT NULL, parameter TEXT NOT NULL, ts INTEGER NOT NULL,
    site TEXT NOT NULL, value REAL, unit TEXT NOT NULL, quality TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (device, sensor, parameter, ts)
) WITHOUT ROWID;
CREATE TABLE ledger (
    device TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, received INTEGER NOT NULL,
    PRIMARY KEY (device, seq)
) WITHOUT ROWID;
CREATE TABLE devices (
    device TEXT PRIMARY KEY, site TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'unknown',
    version TEXT NOT NULL DEFAULT '', boot_id TEXT NOT NULL DEFAULT '',
    last_seen INTEGER, duplicates INTEGER NOT NULL DEFAULT 0{counts}
);
CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
_COUNTS = ",\n    messages INTEGER NOT NULL DEFAULT 0, max_seq INTEGER NOT NULL DEFAULT 0"


@pytest.mark.parametrize("counted", [True, False], ids=["with-counts", "older"])
def test_a_file_made_before_epochs_keeps_its_counts_and_takes_new_epochs(tmp_path, counted):
    path = tmp_path / "s.sqlite"
    old = sqlite3.connect(path)
    old.executescript(_BEFORE_EPOCHS.format(counts=_COUNTS if counted else ""))
    # air-1: seq 1, 2, 4 (3 lost), two repeats; air-2: seq 1.
    for device, seq in (("air-1", 1), ("air-1", 2), ("air-1", 4), ("air-2", 1)):
        at = to_micros(T0) + seq * 60_000_000
        old.execute("INSERT INTO ledger VALUES (?, ?, 'telemetry', ?)", (device, seq, at))
        old.execute(
            "INSERT INTO readings VALUES (?, 'aqms', 'pm10', ?, 'dd', 1.0, 'µg/m³', 'ok', ?)",
            (device, at, seq),
        )
    for device, duplicates, messages, max_seq in (("air-1", 2, 3, 4), ("air-2", 0, 1, 1)):
        old.execute(
            "INSERT INTO devices (device, site, state, version, last_seen, duplicates)"
            " VALUES (?, 'dd', 'online', '1.0', ?, ?)",
            (device, to_micros(T0), duplicates),
        )
        if counted:
            old.execute(
                "UPDATE devices SET messages = ?, max_seq = ? WHERE device = ?",
                (messages, max_seq, device),
            )
    old.commit()
    old.close()

    def accounts(store: SqliteStore) -> list[tuple[str, str, int, int, int, int]]:
        return [
            (d.device, d.state, d.messages, d.duplicates, d.gaps, d.state_resets)
            for d in store.devices()
        ]

    with closing(SqliteStore(path)) as store:
        assert accounts(store) == [
            ("air-1", "online", 3, 2, 1, 0),
            ("air-2", "online", 1, 0, 0, 0),
        ]
        assert len(store.query(ReadingQuery())) == 4
        outcomes = store.write_batch(
            [
                ReceivedMessage("dd", m, T0)
                for m in (
                    message("air-1", 2, 2, pm10=1.0),  # a repeat from the old agent
                    message("air-1", 5, 5, pm10=1.0),  # and its next message
                    message("air-1", 1, 6, epoch="0123456789abcdef", pm10=1.0),  # upgraded
                    message("air-1", 1, 7, epoch="fedcba9876543210", pm10=1.0),  # reset
                )
            ]
        )
        assert [(o.rows, o.duplicate) for o in outcomes] == [
            (0, True),
            (1, False),
            (1, False),
            (1, False),
        ]
    with closing(SqliteStore(path)) as store:  # opened again: nothing moves twice
        assert accounts(store) == [
            ("air-1", "online", 6, 3, 1, 1),
            ("air-2", "online", 1, 0, 0, 0),
        ]
    with closing(sqlite3.connect(path)) as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(devices)")}
    assert not columns & {"messages", "max_seq"}  # counted per epoch now, not twice
