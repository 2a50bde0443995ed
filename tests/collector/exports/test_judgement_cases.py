"""Judgements that depend on the station's zone and age and on the site limits file, on
2026-11-30, through both stores, with the figures worked by hand.

A sample every 30 minutes all day (2 of 2 make an hour), the morning (00:00-12:00) at one
value and the afternoon at another:
- `sea-coastal` (coastal zone): NH4 0.08 then 0.12 mg/L, pH 8.7 all day. QCVN 10:2023
  Table 2 caps coastal NH4 at 0.1; coastal pH is in Table 1, not found: not judged.
- `sea-nearshore`: pH 8.4 then 8.7; Table 3 gives 6.5-8.5. Its NH4 (0.12) has no
  nearshore limit.
- `ww-existing` and `ww-new` (column B, K 1.2): TSS 110 then 130 mg/L. QCVN 14:2008 gives
  100 x 1.2 = 120 to the plant approved before QCVN 14:2025, whose own values are not
  known, so the new plant is not judged.
- The site file (figures made up for the test, no regulation's) adds a permit's coastal pH
  of 7.0-8.5 and tightens coastal NH4 to 0.05.
"""

import uuid
from collections.abc import Iterator
from datetime import date, datetime, time

import pytest

from collector.compliance.limits import LimitTable, builtin_limits, load_site_limits
from collector.compliance.report import Report, Row, build_report
from collector.config import InfluxStoreSettings, RetentionSettings, StationSettings
from collector.stores.base import ReceivedMessage, Store
from collector.stores.influxdb import InfluxStore
from collector.stores.sqlite import SqliteStore
from iotwire.messages import ClockSync, Reading, Sample, Telemetry
from tests.collector.exports.export_cases import SETTINGS, ZONE

DAY = date(2026, 11, 30)
MORNING, AFTERNOON = 9, 15
STATIONS = {
    "sea-coastal": StationSettings(kind="seawater", zone="coastal"),
    "sea-nearshore": StationSettings(kind="seawater", zone="nearshore"),
    "ww-existing": StationSettings(kind="wastewater", column="B", k=1.2),
    "ww-new": StationSettings(kind="wastewater", column="B", k=1.2, existing_facility=False),
}
# device -> parameter -> (morning value, afternoon value)
VALUES = {
    "sea-coastal": {"nh4": (0.08, 0.12), "ph": (8.7, 8.7)},
    "sea-nearshore": {"nh4": (0.12, 0.12), "ph": (8.4, 8.7)},
    "ww-existing": {"tss": (110.0, 130.0)},
    "ww-new": {"tss": (110.0, 130.0)},
}
UNITS = {"nh4": "mg/L", "ph": "pH", "tss": "mg/L"}
SITE = """\
regulations:
  - {id: Permit 01/GP-TEST, title: Test permit, applies_from: 2026-01-01, source: made up}
limits:
  - {kind: seawater, parameter: ph, regulation: Permit 01/GP-TEST, clause: Art. 3,
     averaging: sample, min: 7.0, max: 8.5, unit: pH, zone: coastal, source: the permit}
  - {kind: seawater, parameter: nh4, regulation: QCVN 10:2023/BTNMT, clause: Table 2,
     averaging: sample, max: 0.05, unit: mg/L, zone: coastal, source: made up}
"""


def local(hour: int, minute: int = 0) -> datetime:
    return datetime.combine(DAY, time(hour, minute), ZONE)


def samples() -> Iterator[ReceivedMessage]:
    for device, parameters in VALUES.items():
        seq = 0
        for hour in range(24):
            for minute in (0, 30):
                seq += 1
                readings = tuple(
                    Reading(parameter=p, value=v[hour >= 12], unit=UNITS[p])
                    for p, v in parameters.items()
                )
                sample = Sample(sensor="sonde", ts=local(hour, minute), readings=readings)
                message = Telemetry(
                    device=device, seq=seq, clock=ClockSync.SYNCED, samples=(sample,)
                )
                yield ReceivedMessage("pq", message, sample.ts)


def load(store: Store) -> None:
    store.write_batch(list(samples()))


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> dict[str, LimitTable]:
    site = tmp_path_factory.mktemp("site") / "site-limits.yaml"
    site.write_text(SITE, encoding="utf-8")
    return {"built-in": builtin_limits(), "site": load_site_limits(site)}


@pytest.fixture(scope="module")
def reports(tmp_path_factory, influxd, tables) -> dict[tuple[str, str], Report]:
    """Each store, each table. The InfluxDB database keeps raw data a century, so the
    fixed day stays inside its retention policy whenever the test runs."""
    settings = InfluxStoreSettings(
        kind="influxdb", url=influxd.url, api="v1", database=f"t{uuid.uuid4().hex[:12]}"
    )
    retention = RetentionSettings(raw_days=36_500, hourly_days=36_500)
    sqlite = SqliteStore(tmp_path_factory.mktemp("judged") / "s.sqlite")
    influx = InfluxStore(settings, retention)
    out = {}
    try:
        for store_name, store in (("sqlite", sqlite), ("influxdb", influx)):
            load(store)
            for table_name, table in tables.items():
                report = build_report(store, STATIONS, SETTINGS, table, DAY, DAY)
                out[store_name, table_name] = report
    finally:
        sqlite.close()
        influx.close()
    return out


@pytest.fixture(params=["sqlite", "influxdb"])
def store_name(request) -> str:
    return str(request.param)


def hour(report: Report, device: str, parameter: str, at: int) -> Row:
    [station] = [s for s in report.stations if s.device == device]
    [found] = [
        r
        for r in station.rows
        if r.parameter == parameter and r.averaging == "1h" and r.mean.start == local(at)
    ]
    return found


def verdicts(row: Row) -> list[tuple[str, str, bool]]:
    return [(j.limit.regulation, j.limit.clause, j.exceeded) for j in row.judgements]


def test_coastal_seawater_is_judged_by_table_2_and_its_ph_is_not_judged(reports, store_name):
    report = reports[store_name, "built-in"]
    morning = hour(report, "sea-coastal", "nh4", MORNING)
    assert morning.mean.value == pytest.approx(0.08)
    assert verdicts(morning) == [("QCVN 10:2023/BTNMT", "Table 2", False)]  # 0.08 <= 0.1
    afternoon = hour(report, "sea-coastal", "nh4", AFTERNOON)
    assert verdicts(afternoon) == [("QCVN 10:2023/BTNMT", "Table 2", True)]  # 0.12 > 0.1
    ph = hour(report, "sea-coastal", "ph", AFTERNOON)
    assert (ph.mean.value, ph.judgements) == (pytest.approx(8.7), ())


def test_nearshore_seawater_is_judged_by_table_3(reports, store_name):
    report = reports[store_name, "built-in"]
    assert verdicts(hour(report, "sea-nearshore", "ph", MORNING)) == [
        ("QCVN 10:2023/BTNMT", "Table 3", False)  # 8.4 within 6.5-8.5
    ]
    assert verdicts(hour(report, "sea-nearshore", "ph", AFTERNOON)) == [
        ("QCVN 10:2023/BTNMT", "Table 3", True)  # 8.7 > 8.5
    ]
    assert hour(report, "sea-nearshore", "nh4", AFTERNOON).judgements == ()


def test_an_existing_plant_keeps_qcvn_14_2008_and_a_new_one_is_not_judged(reports, store_name):
    report = reports[store_name, "built-in"]
    morning = hour(report, "ww-existing", "tss", MORNING)
    assert morning.mean.value == pytest.approx(110.0)
    assert verdicts(morning) == [("QCVN 14:2008/BTNMT", "column B", False)]  # 110 <= 120
    afternoon = hour(report, "ww-existing", "tss", AFTERNOON)
    assert verdicts(afternoon) == [("QCVN 14:2008/BTNMT", "column B", True)]  # 130 > 120
    new = hour(report, "ww-new", "tss", AFTERNOON)
    assert (new.mean.value, new.judgements) == (pytest.approx(130.0), ())


def test_a_site_file_adding_a_limit_changes_the_judgement(reports, store_name):
    report = reports[store_name, "site"]
    ph = hour(report, "sea-coastal", "ph", AFTERNOON)
    assert verdicts(ph) == [("Permit 01/GP-TEST", "Art. 3", True)]  # 8.7 > 8.5
    nh4 = hour(report, "sea-coastal", "nh4", MORNING)
    [judgement] = nh4.judgements
    assert (judgement.limit.max, judgement.exceeded) == (0.05, True)  # 0.08 > 0.05
    assert verdicts(hour(report, "ww-existing", "tss", MORNING)) == [
        ("QCVN 14:2008/BTNMT", "column B", False)
    ]


def test_both_stores_judge_alike(reports):
    def judged(report: Report) -> list[tuple[str, str, str, datetime, bool]]:
        return [
            (s.device, r.parameter, r.averaging, r.mean.start, r.exceeded)
            for s in report.stations
            for r in s.rows
        ]

    for table in ("built-in", "site"):
        assert judged(reports["sqlite", table]) == judged(reports["influxdb", table])
