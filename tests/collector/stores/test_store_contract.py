"""One suite, both stores: the SQLite file and a real InfluxDB 1.6 server must store each
sample once, account for every message and answer every query with the same rows."""

import math
import random
from contextlib import closing
from datetime import timedelta

import pytest

from collector.query import Aggregate, AggregateQuery, LatestQuery, ReadingQuery
from collector.stores.base import ReceivedMessage, Store
from collector.stores.sqlite import SqliteStore
from iotwire.messages import Quality, Status, Telemetry
from tests.collector.stores.store_cases import T0, influx_store, message, with_quality, write

ALL = (Aggregate.MEAN, Aggregate.MIN, Aggregate.MAX, Aggregate.LAST, Aggregate.COUNT)


@pytest.fixture(params=["sqlite", pytest.param("influxdb", marks=pytest.mark.servers)])
def store(request, tmp_path):
    if request.param == "sqlite":
        sqlite = SqliteStore(tmp_path / "s.sqlite")
        yield sqlite
        sqlite.close()
    else:
        with influx_store(request.getfixturevalue("influxd").url) as influx:
            yield influx


def test_a_redelivered_message_is_stored_once_and_counted(store: Store):
    first = write(store, "dd", message("air-1", 1, 0, pm10=20.0, pm2_5=9.5))
    again = write(store, "dd", message("air-1", 1, 0, pm10=20.0, pm2_5=9.5))
    assert (first.rows, first.duplicate) == (2, False)
    assert (again.rows, again.duplicate) == (0, True)
    assert len(store.query(ReadingQuery())) == 2
    [device] = store.devices()
    assert (device.messages, device.duplicates, device.gaps) == (1, 1, 0)


def test_a_message_twice_in_one_batch_is_one_message_and_one_duplicate(store: Store):
    twice = [ReceivedMessage("dd", message("air-1", 1, 0, pm10=1.0), T0)] * 2
    outcomes = store.write_batch(twice)
    assert [o.duplicate for o in outcomes] == [False, True]
    [device] = store.devices()
    assert (device.messages, device.duplicates) == (1, 1)


def test_a_repeat_in_the_batch_begun_next_is_a_duplicate_though_the_first_is_unfinished(
    store: Store,
):
    # The commit process begins a batch while the server still writes the one before:
    # the second batch's lookup cannot see the first's ledger yet, and must not need to.
    first = store.begin_batch(
        [ReceivedMessage("dd", message("air-1", s, s, pm10=1.0), T0) for s in (1, 2)]
    )
    second = store.begin_batch(
        [ReceivedMessage("dd", message("air-1", s, s, pm10=1.0), T0) for s in (2, 3)]
    )
    assert [o.duplicate for o in first.outcomes()] == [False, False]
    assert [o.duplicate for o in second.outcomes()] == [True, False]
    assert len(store.query(ReadingQuery())) == 3
    [device] = store.devices()
    assert (device.messages, device.duplicates, device.gaps) == (3, 1, 0)


def test_gaps_are_the_missing_sequence_numbers(store: Store):
    store.write_batch(
        [ReceivedMessage("dd", message("air-1", seq, seq, pm10=1.0), T0) for seq in (1, 2, 5, 6, 9)]
    )
    [device] = store.devices()
    assert (device.messages, device.gaps) == (5, 4)


def test_a_lost_first_message_is_a_gap_too(store: Store):
    for seq in (3, 4, 5):
        write(store, "dd", message("air-1", seq, seq, pm10=1.0))
    [device] = store.devices()
    assert (device.messages, device.gaps) == (3, 2)


def test_same_sample_time_under_a_new_sequence_number_is_one_row(store: Store):
    # An agent whose outbox was wiped re-sends a sample with a fresh number: the series
    # key (device, sensor, parameter, time) still keeps one row.
    write(store, "dd", message("air-1", 1, 0, pm10=1.0))
    outcome = write(store, "dd", message("air-1", 2, 0, pm10=1.0))
    assert not outcome.duplicate
    assert len(store.query(ReadingQuery())) == 1


def test_query_filters_by_time_device_and_parameter(store: Store):
    for minute in range(10):
        write(store, "dd", message("air-1", minute + 1, minute, pm10=minute, no2=2 * minute))
        write(store, "at", message("air-2", minute + 1, minute, pm10=100 + minute))
    rows = store.query(
        ReadingQuery(
            start=T0 + timedelta(minutes=3),
            end=T0 + timedelta(minutes=6),
            devices=("air-1",),
            parameters=("pm10",),
        )
    )
    assert [(r.ts, r.value) for r in rows] == [
        (T0 + timedelta(minutes=m), float(m)) for m in (3, 4, 5)
    ]
    assert {(r.site, r.sensor, r.unit, r.quality) for r in rows} == {("dd", "aqms", "µg/m³", "ok")}
    assert len(store.query(ReadingQuery(devices=("air-2",), limit=4))) == 4


def test_a_fault_reading_keeps_its_tick_without_a_value(store: Store):
    write(store, "dd", message("air-1", 1, 0, pm10=None, no2=4.0))
    rows = {r.parameter: r for r in store.query(ReadingQuery())}
    assert (rows["pm10"].value, rows["pm10"].quality) == (None, "fault")
    assert (rows["no2"].value, rows["no2"].quality) == (4.0, "ok")


def test_sample_times_keep_their_microseconds(store: Store):
    precise = message("air-1", 1, 0, pm10=1.0)
    sample = precise.samples[0].model_copy(update={"ts": T0.replace(microsecond=123457)})
    write(store, "dd", precise.model_copy(update={"samples": (sample,)}))
    [row] = store.query(ReadingQuery())
    assert row.ts == T0.replace(microsecond=123457)


def test_status_messages_set_a_device_state(store: Store):
    for state in ("online", "offline"):
        store.record_status(
            "dd",
            Status(device="air-1", seq=0, state=state, ts=T0, version="1.2.0", boot_id="b1"),
            T0 + timedelta(seconds=1 if state == "online" else 2),
        )
    [device] = store.devices()
    assert (device.device, device.site, device.state, device.version) == (
        "air-1",
        "dd",
        "offline",
        "1.2.0",
    )
    assert device.last_seen == T0 + timedelta(seconds=2)


def test_aggregates_use_only_ok_values_in_epoch_aligned_windows(store: Store):
    # Minutes 0..29 of air-1: value = minute; minute 7 calibrating, minute 8 a fault.
    for minute in range(30):
        msg = message("air-1", minute + 1, minute, pm10=None if minute == 8 else float(minute))
        write(store, "dd", with_quality(msg, Quality.CALIBRATING) if minute == 7 else msg)
    rows = store.aggregate(
        AggregateQuery(
            start=T0, end=T0 + timedelta(hours=1), window=timedelta(minutes=10), functions=ALL
        )
    )
    first = [m for m in range(10) if m not in (7, 8)]
    assert [(r.window_start, r.values) for r in rows] == [
        (T0, (sum(first) / len(first), 0.0, 9.0, 9.0, float(len(first)))),
        (T0 + timedelta(minutes=10), (14.5, 10.0, 19.0, 19.0, 10.0)),
        (T0 + timedelta(minutes=20), (24.5, 20.0, 29.0, 29.0, 10.0)),
    ]
    assert {(r.device, r.sensor, r.parameter, r.site, r.unit) for r in rows} == {
        ("air-1", "aqms", "pm10", "dd", "µg/m³")
    }


def test_latest_gives_each_series_its_newest_ok_value(store: Store):
    write(store, "dd", message("air-1", 1, 0, pm10=1.0, no2=2.0))
    write(store, "dd", message("air-1", 2, 1, pm10=3.0, no2=None))
    write(store, "at", message("air-2", 1, 5, pm10=7.0))
    rows = store.latest(LatestQuery())
    assert [(r.device, r.parameter, r.ts, r.value) for r in rows] == [
        ("air-1", "no2", T0, 2.0),
        ("air-1", "pm10", T0 + timedelta(minutes=1), 3.0),
        ("air-2", "pm10", T0 + timedelta(minutes=5), 7.0),
    ]
    earlier = store.latest(LatestQuery(devices=("air-1",), parameters=("pm10",), at=T0))
    assert [(r.ts, r.value) for r in earlier] == [(T0, 1.0)]


def test_the_hourly_rollup_answers_like_the_raw_data(store: Store):
    rng = random.Random(7)
    deliveries = [
        ReceivedMessage(
            "dd", message(device, seq, seq * 7.5, pm10=round(rng.uniform(0, 80), 3)), T0
        )
        for device in ("air-1", "air-2")
        for seq in range(1, 40)
    ]
    store.write_batch(deliveries)
    hours = store.roll_up(T0, T0 + timedelta(hours=6))
    assert hours == 2 * 5  # 39 samples 7.5 minutes apart span five hours, per device
    for window in (timedelta(hours=1), timedelta(hours=2)):
        query = AggregateQuery(start=T0, end=T0 + timedelta(hours=6), window=window, functions=ALL)
        raw = store.aggregate(query)
        rolled = store.aggregate(query, rollup=True)
        assert [(r.device, r.window_start) for r in rolled] == [
            (r.device, r.window_start) for r in raw
        ]
        for a, b in zip(raw, rolled, strict=True):
            assert all(
                math.isclose(x, y, rel_tol=1e-12) for x, y in zip(a.values, b.values, strict=True)
            )


def test_the_same_data_gives_the_same_answers_in_both_stores(tmp_path, influxd):
    rng = random.Random(11)
    deliveries = [
        ReceivedMessage(
            site,
            message(
                device,
                seq,
                seq * 3 + rng.random(),
                pm10=rng.uniform(0, 90),
                no2=None if rng.random() < 0.1 else rng.uniform(0, 40),
            ),
            T0,
        )
        for site, device in (("dd", "air-1"), ("at", "air-2"), ("dd", "air-3"))
        for seq in range(1, 60)
    ]
    answers = []
    with closing(SqliteStore(tmp_path / "s.sqlite")) as sqlite, influx_store(influxd.url) as influx:
        for store in (sqlite, influx):
            answers.append(_everything(store, deliveries))
    sqlite_answers, influx_answers = answers
    raw_a, raw_b = sqlite_answers[0], influx_answers[0]
    assert raw_a == raw_b
    for rows_a, rows_b in zip(sqlite_answers[1:3], influx_answers[1:3], strict=True):
        assert len(rows_a) == len(rows_b) > 0
        for a, b in zip(rows_a, rows_b, strict=True):
            assert (a.window_start, a.device, a.site, a.unit) == (
                b.window_start,
                b.device,
                b.site,
                b.unit,
            )
            assert all(
                math.isclose(x, y, rel_tol=1e-12) for x, y in zip(a.values, b.values, strict=True)
            )
    assert sqlite_answers[3] == influx_answers[3]
    assert [(d.device, d.site, d.messages, d.gaps) for d in sqlite_answers[4]] == [
        (d.device, d.site, d.messages, d.gaps) for d in influx_answers[4]
    ]


def _everything(store: Store, deliveries: list[ReceivedMessage]) -> tuple:
    """Every kind of answer a store gives, on the same data."""
    store.write_batch(deliveries)
    store.roll_up(T0, T0 + timedelta(hours=4))
    end = T0 + timedelta(hours=4)
    return (
        store.query(ReadingQuery(limit=100_000)),
        store.aggregate(
            AggregateQuery(
                start=T0,
                end=end,
                window=timedelta(minutes=15),
                functions=ALL,
                devices=("air-1", "air-3"),
            )
        ),
        store.aggregate(
            AggregateQuery(start=T0, end=end, window=timedelta(hours=1), functions=ALL),
            rollup=True,
        ),
        store.latest(LatestQuery(parameters=("no2",))),
        store.devices(),
    )


def test_accounting_reads_the_same_across_the_rollup_horizon(store: Store):
    # Six hours of one message every 10 minutes, seq 5 and 20 lost on the way.
    deliveries = [
        ReceivedMessage("dd", message("air-1", seq, seq * 10, pm10=1.0), T0)
        for seq in range(1, 37)
        if seq not in (5, 20)
    ]
    store.write_batch(deliveries[:25])
    before = store.devices()
    store.roll_up(T0, T0 + timedelta(hours=4))
    assert store.rollup_horizon() == T0 + timedelta(hours=4)
    assert store.devices() == before
    store.write_batch(deliveries[20:])  # five of them again, then the rest
    [device] = store.devices()
    assert (device.messages, device.gaps, device.duplicates) == (34, 2, 5)


FIRST_EPOCH, SECOND_EPOCH, THIRD_EPOCH = "0f1e2d3c4b5a6978", "a1b2c3d4e5f60718", "ffffffff00000000"


def received(*messages: Telemetry) -> list[ReceivedMessage]:
    return [ReceivedMessage("dd", m, T0) for m in messages]


def test_a_box_that_lost_its_state_numbers_again_from_1_under_a_new_epoch(store: Store):
    # An agent older than epochs sends 1-3; upgraded, its first epoch numbers 1-5 and
    # loses 3 on the way; its SD card replaced, the second epoch numbers from 1 again.
    older = [message("air-1", s, s, pm10=1.0) for s in (1, 2, 3)]
    first = [message("air-1", s, 10 + s, epoch=FIRST_EPOCH, pm10=2.0) for s in (1, 2, 4, 5)]
    second = [message("air-1", s, 20 + s, epoch=SECOND_EPOCH, pm10=3.0) for s in (1, 2, 3)]
    assert not any(o.duplicate for o in store.write_batch(received(*older, *first)))
    [device] = store.devices()
    # The upgrade to the first epoch is no reset, and numbering from 1 in it no repeat.
    assert (device.messages, device.duplicates, device.gaps, device.state_resets) == (7, 0, 1, 0)
    outcomes = store.write_batch(received(*second))
    assert [(o.rows, o.duplicate) for o in outcomes] == [(1, False)] * 3
    repeats = store.write_batch(received(second[1], first[0], older[2]))
    assert [(o.rows, o.duplicate) for o in repeats] == [(0, True)] * 3
    [device] = store.devices()
    assert (device.messages, device.duplicates, device.gaps, device.state_resets) == (
        10,
        3,
        1,
        1,
    )
    assert len(store.query(ReadingQuery())) == 10


def test_epochs_keep_their_numbers_apart_in_one_batch_and_across_begun_batches(store: Store):
    # Seq 1 and 2 of three epochs, two of them in one batch, the third begun while the
    # first is unfinished: six messages, none a repeat, each epoch without gaps.
    one = store.begin_batch(
        received(
            *(message("air-1", s, s, epoch=FIRST_EPOCH, pm10=1.0) for s in (1, 2)),
            *(message("air-1", s, 5 + s, epoch=SECOND_EPOCH, pm10=1.0) for s in (1, 2)),
        )
    )
    two = store.begin_batch(
        received(*(message("air-1", s, 10 + s, epoch=THIRD_EPOCH, pm10=1.0) for s in (1, 2)))
    )
    assert [o.duplicate for o in [*one.outcomes(), *two.outcomes()]] == [False] * 6
    [device] = store.devices()
    assert (device.messages, device.duplicates, device.gaps, device.state_resets) == (6, 0, 0, 2)


def test_another_boxs_epochs_are_its_own(store: Store):
    store.write_batch(
        received(
            *(message("air-1", s, s, epoch=FIRST_EPOCH, pm10=1.0) for s in (1, 2, 3)),
            *(message("air-2", s, s, epoch=FIRST_EPOCH, pm10=1.0) for s in (2, 3)),
            message("air-2", 1, 9, epoch=SECOND_EPOCH, pm10=1.0),
        )
    )
    assert [(d.device, d.messages, d.gaps, d.state_resets) for d in store.devices()] == [
        ("air-1", 3, 0, 0),
        ("air-2", 3, 1, 1),
    ]


def test_per_epoch_accounting_reads_the_same_across_the_rollup_horizon(store: Store):
    # Hours 0-1 from an agent older than epochs, hours 1-4 from its first epoch (seq 7
    # lost), then a reset: the second epoch from hour 4 on (seq 2 lost).
    older = [message("air-1", s, s * 10, pm10=1.0) for s in range(1, 10)]
    first = [message("air-1", s, 90 + s * 10, epoch=FIRST_EPOCH, pm10=1.0) for s in range(1, 16)]
    second = [message("air-1", s, 240 + s * 10, epoch=SECOND_EPOCH, pm10=1.0) for s in range(1, 10)]
    lost = {(FIRST_EPOCH, 7), (SECOND_EPOCH, 2)}
    kept = [m for m in [*older, *first, *second] if (m.epoch, m.seq) not in lost]
    store.write_batch(received(*kept[:20]))
    before = store.devices()
    store.roll_up(T0, T0 + timedelta(hours=3))
    assert store.devices() == before
    store.write_batch(received(*kept[15:]))  # five again, then the rest
    store.roll_up(T0, T0 + timedelta(hours=6))
    [device] = store.devices()
    assert (device.messages, device.duplicates, device.gaps, device.state_resets) == (
        31,
        5,
        2,
        1,
    )


def test_the_same_number_at_the_same_time_in_another_epoch_is_no_repeat(store: Store):
    # A box reinstalled before its clock synced samples at the same times again: its
    # samples are one row each, but every message of the new epoch reached the store.
    for epoch in (FIRST_EPOCH, SECOND_EPOCH):
        outcomes = store.write_batch(
            received(*(message("air-1", s, s, epoch=epoch, pm10=1.0) for s in (1, 2)))
        )
        assert [o.duplicate for o in outcomes] == [False, False]
    assert len(store.query(ReadingQuery())) == 2
    [device] = store.devices()
    assert (device.messages, device.duplicates, device.gaps, device.state_resets) == (4, 0, 0, 1)
