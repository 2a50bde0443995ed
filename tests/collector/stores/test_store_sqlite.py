"""What only the SQLite store does: exact row counts and its own purge. What both
stores do is in test_store_contract."""

from datetime import timedelta

from collector.config import RetentionSettings
from collector.query import AggregateQuery, ReadingQuery
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
