"""The SQLite store stores each sample once and accounts for every message."""

from datetime import UTC, datetime, timedelta

from collector.query import ReadingQuery
from collector.stores.sqlite import SqliteStore
from iotwire.messages import ClockSync, Reading, Sample, Status, Telemetry

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def message(device: str, seq: int, minute: int, **values: float) -> Telemetry:
    sample = Sample(
        sensor="aqms",
        ts=T0 + timedelta(minutes=minute),
        readings=tuple(Reading(parameter=p, value=v, unit="µg/m³") for p, v in values.items()),
    )
    return Telemetry(device=device, seq=seq, clock=ClockSync.SYNCED, samples=(sample,))


def test_a_redelivered_message_is_stored_once_and_counted(tmp_path):
    store = SqliteStore(tmp_path / "s.sqlite")
    first = store.write("dd", message("air-1", 1, 0, pm10=20.0, pm2_5=9.5), T0)
    again = store.write("dd", message("air-1", 1, 0, pm10=20.0, pm2_5=9.5), T0)
    assert (first.rows, first.duplicate) == (2, False)
    assert (again.rows, again.duplicate) == (0, True)
    assert len(store.query(ReadingQuery())) == 2
    [device] = store.devices()
    assert (device.messages, device.duplicates, device.gaps) == (1, 1, 0)


def test_gaps_are_the_missing_sequence_numbers(tmp_path):
    store = SqliteStore(tmp_path / "s.sqlite")
    for seq in (1, 2, 5, 6, 9):
        store.write("dd", message("air-1", seq, seq, pm10=1.0), T0)
    [device] = store.devices()
    assert (device.messages, device.gaps) == (5, 4)


def test_a_lost_first_message_is_a_gap_too(tmp_path):
    store = SqliteStore(tmp_path / "s.sqlite")
    for seq in (3, 4, 5):
        store.write("dd", message("air-1", seq, seq, pm10=1.0), T0)
    [device] = store.devices()
    assert (device.messages, device.gaps) == (3, 2)


def test_same_sample_time_under_a_new_sequence_number_is_not_stored_twice(tmp_path):
    # An agent whose outbox was wiped re-sends a sample with a fresh number: the series
    # key (device, sensor, parameter, time) still keeps one row.
    store = SqliteStore(tmp_path / "s.sqlite")
    store.write("dd", message("air-1", 1, 0, pm10=1.0), T0)
    outcome = store.write("dd", message("air-1", 2, 0, pm10=1.0), T0)
    assert (outcome.rows, outcome.duplicate) == (0, False)
    assert len(store.query(ReadingQuery())) == 1


def test_query_filters_by_time_device_and_parameter(tmp_path):
    store = SqliteStore(tmp_path / "s.sqlite")
    for minute in range(10):
        store.write("dd", message("air-1", minute + 1, minute, pm10=minute, no2=2 * minute), T0)
        store.write("at", message("air-2", minute + 1, minute, pm10=100 + minute), T0)
    rows = store.query(
        ReadingQuery(
            start=T0 + timedelta(minutes=3),
            end=T0 + timedelta(minutes=6),
            devices=("air-1",),
            parameters=("pm10",),
        )
    )
    assert [(r.ts.minute, r.value) for r in rows] == [(3, 3.0), (4, 4.0), (5, 5.0)]
    assert {r.site for r in rows} == {"dd"}
    assert len(store.query(ReadingQuery(limit=4))) == 4


def test_sample_times_keep_their_microseconds(tmp_path):
    store = SqliteStore(tmp_path / "s.sqlite")
    precise = message("air-1", 1, 0, pm10=1.0).model_copy()
    sample = precise.samples[0].model_copy(update={"ts": T0.replace(microsecond=123457)})
    store.write("dd", precise.model_copy(update={"samples": (sample,)}), T0)
    assert store.query(ReadingQuery())[0].ts == T0.replace(microsecond=123457)


def test_status_sets_state_and_version(tmp_path):
    store = SqliteStore(tmp_path / "s.sqlite")
    store.record_status(
        "dd", Status(device="air-1", seq=0, state="online", ts=T0, version="0.1.0", boot_id="b"), T0
    )
    store.record_status(
        "dd",
        Status(device="air-1", seq=4, state="offline", ts=T0, version="0.1.0", boot_id="b"),
        T0,
    )
    [device] = store.devices()
    assert (device.state, device.version, device.last_seen) == ("offline", "0.1.0", T0)
