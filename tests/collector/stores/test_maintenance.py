"""The collector's upkeep: rollups over the late window, the purge, and the heartbeat rule."""

import asyncio
import logging
import sqlite3
from datetime import timedelta

from collector.config import RetentionSettings
from collector.query import AggregateQuery, DeviceRow, ReadingQuery
from collector.stores.base import ReceivedMessage
from collector.stores.maintenance import hour_floor, maintain, maintain_once
from collector.stores.sqlite import SqliteStore
from tests.collector.stores.store_cases import T0, message


def test_a_pass_rolls_up_the_late_window_and_purges_what_is_past_retention(tmp_path):
    retention = RetentionSettings(raw_days=2, hourly_days=30, late_hours=6)
    store = SqliteStore(tmp_path / "s.sqlite", retention)
    # One sample an hour for three days, then one late sample in an hour already rolled up.
    store.write_batch(
        [
            ReceivedMessage("dd", message("air-1", h + 1, h * 60, pm10=float(h)), T0)
            for h in range(72)
        ]
    )
    now = T0 + timedelta(hours=72, minutes=30)
    rolled, purged = maintain_once(store, retention, now)
    assert rolled == 6  # the six complete hours before `now`
    assert purged == 25  # raw samples of hours 0 to 24, more than two days before `now`
    store.write_batch([ReceivedMessage("dd", message("air-1", 100, 70 * 60 + 30, pm10=1000.0), T0)])
    maintain_once(store, retention, now)
    hour_70 = T0 + timedelta(hours=70)
    [row] = store.aggregate(
        AggregateQuery(start=hour_70, end=hour_70 + timedelta(hours=1), window=timedelta(hours=1)),
        rollup=True,
    )
    assert row.values == ((70.0 + 1000.0) / 2,)
    assert len(store.query(ReadingQuery(limit=1000))) == 47 + 1
    assert hour_floor(now) == T0 + timedelta(hours=72)


def test_an_online_device_unheard_for_too_long_is_silent():
    row = DeviceRow("air-1", "dd", "online", "1.0", T0, 10, 0, 0, 0)
    limit = timedelta(minutes=5)
    assert row.state_at(T0 + timedelta(minutes=4), limit) == "online"
    assert row.state_at(T0 + timedelta(minutes=6), limit) == "silent"
    offline = DeviceRow("air-1", "dd", "offline", "1.0", T0, 10, 0, 0, 0)
    assert offline.state_at(T0 + timedelta(days=1), limit) == "offline"
    never = DeviceRow("air-2", "dd", "online", "1.0", None, 0, 0, 0, 0)
    assert never.state_at(T0, limit) == "silent"


def test_a_collector_that_was_stopped_catches_up_on_the_hours_it_missed(tmp_path):
    retention = RetentionSettings(raw_days=30, late_hours=6)
    store = SqliteStore(tmp_path / "s.sqlite", retention)
    store.write_batch(
        [
            ReceivedMessage("dd", message("air-1", h + 1, h * 60, pm10=float(h)), T0)
            for h in range(72)
        ]
    )
    store.roll_up(T0, T0 + timedelta(hours=1))  # then the collector stopped for three days
    rolled, _ = maintain_once(store, retention, T0 + timedelta(hours=72, minutes=5))
    assert rolled == 71
    assert store.rollup_horizon() == T0 + timedelta(hours=72)
    hourly = store.aggregate(
        AggregateQuery(start=T0, end=T0 + timedelta(hours=72), window=timedelta(hours=1)),
        rollup=True,
    )
    assert [r.values for r in hourly] == [(float(h),) for h in range(72)]


def test_upkeep_that_fails_on_a_locked_database_is_logged_and_tried_again(tmp_path, caplog):
    path = tmp_path / "s.sqlite"
    store = SqliteStore(path, RetentionSettings(every_s=1), busy_timeout_s=0.05)
    store.write_batch([ReceivedMessage("dd", message("air-1", 1, 0, pm10=1.0), T0)])
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # a backup or another process holds the file

    async def main() -> None:
        stop = asyncio.Event()
        upkeep = asyncio.create_task(maintain(store, RetentionSettings(every_s=1), stop))
        await asyncio.sleep(1.5)
        holder.execute("COMMIT")
        await asyncio.sleep(1.5)
        stop.set()
        await upkeep

    with caplog.at_level(logging.INFO, logger="collector.stores.maintenance"):
        asyncio.run(main())
    holder.close()
    store.close()
    messages = [r.getMessage() for r in caplog.records]
    assert any("rollup and purge failed" in m for m in messages)
    assert any(m.startswith("rollup:") for m in messages)  # the run after the lock went
