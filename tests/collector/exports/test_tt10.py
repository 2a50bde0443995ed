"""Circular 10/2021 station data files: names, the five TAB-separated fields, status codes
from the device's quality flags, on demand and on the collector's schedule."""

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from collector.config import StationSettings, Tt10Settings, load_collector
from collector.exports.tt10 import CODES, DIAGNOSTICS, MORE_CODES, STATE_FILE, Tt10Writer
from collector.stores.base import ReceivedMessage
from collector.stores.sqlite import SqliteStore
from iotruntime.configfile import ConfigError
from iotwire.messages import ClockSync, Quality, Reading, Sample, Telemetry
from tests.collector.exports.export_cases import ZONE

STATIONS = {
    "ww-1": StationSettings(kind="wastewater", column="A", tt10_code="WW01"),
    "noise-1": StationSettings(kind="noise", zone="normal"),
}


def settings(directory: Path, **overrides: object) -> Tt10Settings:
    return Tt10Settings.model_validate(
        {"directory": directory, "province": "KG", "facility": "PQWWTP"} | overrides
    )


def put(store: SqliteStore, device: str, seq: int, ts: datetime, *readings: Reading) -> None:
    sample = Sample(sensor="panel", ts=ts, readings=readings)
    message = Telemetry(device=device, seq=seq, clock=ClockSync.SYNCED, samples=(sample,))
    store.write_batch([ReceivedMessage("at", message, ts)])


def reading(parameter: str, value: float | None, unit: str, quality: Quality) -> Reading:
    return Reading(parameter=parameter, value=value, unit=unit, quality=quality)


@pytest.fixture
def store(tmp_path):
    sqlite = SqliteStore(tmp_path / "s.sqlite")
    yield sqlite
    sqlite.close()


def test_one_file_per_station_and_interval_with_status_from_quality(store, tmp_path):
    start = datetime(2026, 11, 20, 10, 0, tzinfo=ZONE)
    ok, cal, fault = Quality.OK, Quality.CALIBRATING, Quality.FAULT
    for minute, cod_quality, ph_quality in ((1, ok, cal), (3, ok, cal), (6, cal, fault)):
        put(
            store,
            "ww-1",
            minute,
            start + timedelta(minutes=minute),
            reading("cod", 40.0 + minute, "mg/L", cod_quality),
            reading("ph", None if ph_quality is fault else 7.1, "pH", ph_quality),
            reading("box_temperature", 36.0, "°C", ok),
        )
    put(store, "noise-1", 1, start + timedelta(minutes=1), reading("laeq", 60.0, "dBA", ok))
    writer = Tt10Writer(store, settings(tmp_path), STATIONS, ZONE)
    files = writer.write_range(start, start + timedelta(minutes=10), tmp_path)
    assert [f.name for f in files] == [
        "KG_PQWWTP_WW01_20261120100500.txt",
        "KG_PQWWTP_WW01_20261120101000.txt",
    ]
    first = files[0].read_text(encoding="utf-8").splitlines()
    # COD: the mean of two ok samples; pH only calibrating: its last value, status 01;
    # the analyser's enclosure temperature has no code and is left out.
    assert first == [
        "COD\t42.000\tmg/L\t20261120100500\t00",
        "pH\t7.100\tpH\t20261120100500\t01",
    ]
    second = files[1].read_text(encoding="utf-8").splitlines()
    assert second == [
        "COD\t46.000\tmg/L\t20261120101000\t01",
        "pH\t\tpH\t20261120101000\t02",
    ]


def test_codes_in_the_config_extend_and_override_the_table(store, tmp_path):
    start = datetime(2026, 11, 20, 10, 0, tzinfo=ZONE)
    put(
        store,
        "ww-1",
        1,
        start,
        reading("conductivity", 300.0, "µS/cm", Quality.OK),
        reading("orp_raw", 12.0, "mV", Quality.OK),
    )
    codes = {"conductivity": "Cond", "orp_raw": "ORPraw"}
    writer = Tt10Writer(store, settings(tmp_path, codes=codes), STATIONS, ZONE)
    [path] = writer.write_range(
        start - timedelta(minutes=5), start + timedelta(minutes=5), tmp_path
    )
    assert path.read_text(encoding="utf-8").splitlines() == [
        "Cond\t300.000\tµS/cm\t20261120100500\t00",
        "ORPraw\t12.000\tmV\t20261120100500\t00",
    ]


def test_the_schedule_catches_up_from_the_last_interval_written(store, tmp_path):
    """A collector stopped for half an hour writes the intervals it missed, once each."""
    every = timedelta(minutes=5)
    writer = Tt10Writer(store, settings(tmp_path, delay_s=0), STATIONS, ZONE)
    latest = writer.interval_end_before(datetime.now(UTC))
    for i in range(8):
        ts = latest - every * i - timedelta(minutes=2)
        put(store, "ww-1", i + 1, ts, reading("cod", 40.0 + i, "mg/L", Quality.OK))
    (tmp_path / STATE_FILE).write_text((latest - 6 * every).isoformat())

    async def run_once() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(writer.run(stop))
        while datetime.fromisoformat((tmp_path / STATE_FILE).read_text()) < latest:
            await asyncio.sleep(0.05)
        stop.set()
        await task

    asyncio.run(asyncio.wait_for(run_once(), timeout=20))
    names = sorted(p.name for p in tmp_path.glob("KG_*.txt"))
    expected = [
        f"KG_PQWWTP_WW01_{(latest - every * i).astimezone(ZONE):%Y%m%d%H%M%S}.txt"
        for i in range(5, -1, -1)
    ]
    # An interval that closed while the test ran may be written too; nothing else.
    assert names[: len(expected)] == expected
    assert len(names) - len(expected) <= 1
    newest = (tmp_path / expected[-1]).read_text(encoding="utf-8")
    assert newest.startswith("COD\t40.000\tmg/L\t")


def test_intervals_must_divide_a_day(tmp_path):
    with pytest.raises(ValueError, match="every_s must divide a day"):
        settings(tmp_path, every_s=420)


def test_an_unfinished_interval_is_not_written(store, tmp_path):
    """Asked during the day, the writer leaves out the running interval: its file would
    hold a partial mean, and a different one later under the same name."""
    writer = Tt10Writer(store, settings(tmp_path, delay_s=0), STATIONS, ZONE)
    now = datetime.now(UTC)
    closed = writer.last_closed(now)
    put(store, "ww-1", 1, closed - timedelta(minutes=1), reading("cod", 40.0, "mg/L", Quality.OK))
    put(store, "ww-1", 2, now, reading("cod", 90.0, "mg/L", Quality.OK))
    files = writer.write_range(closed - timedelta(hours=1), now + timedelta(hours=1), tmp_path)
    assert [f.name for f in files] == [f"KG_PQWWTP_WW01_{closed.astimezone(ZONE):%Y%m%d%H%M%S}.txt"]
    running = closed + writer.every
    assert not list(tmp_path.glob(f"*_{running.astimezone(ZONE):%Y%m%d%H%M%S}.txt"))


def test_an_interval_still_waiting_for_late_samples_is_not_written(store, tmp_path):
    writer = Tt10Writer(store, settings(tmp_path, delay_s=3600), STATIONS, ZONE)
    now = datetime.now(UTC)
    just_ended = writer.interval_end_before(now)
    put(
        store, "ww-1", 1, just_ended - timedelta(minutes=1), reading("cod", 4.0, "mg/L", Quality.OK)
    )
    assert writer.write_range(just_ended - timedelta(hours=1), now, tmp_path) == []


def test_each_station_group_has_its_own_facility_code(store, tmp_path):
    start = datetime(2026, 11, 20, 10, 0, tzinfo=ZONE)
    stations = STATIONS | {"dw-1": StationSettings(kind="domestic_water", tt10_code="DW01")}
    for device in ("ww-1", "dw-1"):
        put(store, device, 1, start + timedelta(minutes=1), reading("ph", 7.0, "pH", Quality.OK))
    config = settings(tmp_path, facility="PQ", facilities={"PQWWTP": ["ww-1"]})
    writer = Tt10Writer(store, config, stations, ZONE)
    files = writer.write_range(start, start + timedelta(minutes=5), tmp_path)
    assert sorted(f.name for f in files) == [
        "KG_PQWWTP_WW01_20261120100500.txt",
        "KG_PQ_DW01_20261120100500.txt",
    ]


def test_a_station_in_two_facilities_is_an_error_naming_the_file_and_key(tmp_path):
    path = tmp_path / "collector.yaml"
    section = {"directory": "tt10", "province": "KG", "facility": "PQ"}
    section["facilities"] = {"A": ["ww-1"], "B": ["ww-1"]}
    path.write_text(yaml.safe_dump({"tt10": section}), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_collector(path)
    message = str(caught.value)
    assert str(path) in message
    assert "tt10" in message
    assert "facilities: station ww-1 is in both A and B" in message


def profile_parameters() -> set[str]:
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "parameter" in node:
                found.add(node["parameter"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in (Path(__file__).parents[3] / "firmware_profiles").glob("*.yaml"):
        walk(yaml.safe_load(path.read_text(encoding="utf-8")))
    return found


def test_every_parameter_a_station_profile_measures_has_a_code():
    """Dissolved oxygen, turbidity, conductivity, salinity, free chlorine, noise levels...
    all reach the authority; only the analysers' own working values have no code."""
    parameters = profile_parameters()
    assert {"dissolved_oxygen", "turbidity", "salinity", "free_chlorine", "laeq"} <= parameters
    table = CODES | MORE_CODES
    assert sorted(parameters - table.keys() - DIAGNOSTICS) == []
    assert not DIAGNOSTICS & table.keys()
    codes = list(table.values())
    assert len(codes) == len(set(codes)), "two parameters share a code"
