"""Compliance exports on a known dataset (export_cases.py, beside this file), against both
stores: hourly and daily means with their validity rules, exceedances with the regulation
in force, VN_AQI, and the CSV, workbook and HTML forms of the same report."""

import csv
import io
import math
from datetime import UTC, date, datetime

import pytest
from openpyxl import load_workbook

from collector.compliance.averages import Mean, rolling
from collector.compliance.limits import builtin_limits
from collector.compliance.report import HOUR, Report, Row, build_report, within
from collector.config import StationSettings
from collector.exports.html_report import render_html
from collector.exports.table import write_csv
from collector.exports.workbook import EXCEEDED, write_workbook
from collector.stores.base import ReceivedMessage
from collector.stores.sqlite import SqliteStore
from iotwire.messages import ClockSync, Quality, Reading, Sample, Telemetry
from tests.collector.exports.export_cases import D1, D2, SETTINGS, STATIONS, ZONE, load, local
from tests.collector.stores.store_cases import influx_store


@pytest.fixture(scope="module")
def reports(tmp_path_factory, influxd) -> dict[str, Report]:
    """The same data through each store, the report built once per store."""
    out = {}
    sqlite = SqliteStore(tmp_path_factory.mktemp("export") / "s.sqlite")
    with influx_store(influxd.url) as influx:
        for name, store in (("sqlite", sqlite), ("influxdb", influx)):
            load(store)
            out[name] = build_report(store, STATIONS, SETTINGS, builtin_limits(), D1, D2)
    sqlite.close()
    return out


@pytest.fixture(params=["sqlite", "influxdb"])
def report(request, reports) -> Report:
    return reports[request.param]


def row(report: Report, device: str, parameter: str, averaging: str, start: datetime) -> Row:
    [station] = [s for s in report.stations if s.device == device]
    [found] = [
        r
        for r in station.rows
        if r.parameter == parameter and r.averaging == averaging and r.mean.start == start
    ]
    return found


def test_an_hour_without_enough_ok_samples_has_no_mean(report):
    short = row(report, "air-1", "pm2_5", "1h", local(D1, 4))
    assert (short.mean.value, short.mean.used, short.mean.needed) == (None, 4, 5)
    assert short.judgements == ()


def test_flagged_samples_are_left_out_and_counted(report):
    calibrated = row(report, "air-1", "pm2_5", "1h", local(D1, 7))
    assert (calibrated.mean.value, calibrated.mean.used, calibrated.mean.excluded) == (30.0, 5, 1)
    [air] = [s for s in report.stations if s.device == "air-1"]
    assert air.excluded == 3  # pm2_5, pm10 and o3 of the one calibration sample


def test_daily_means_and_the_limit_in_force(report):
    d1 = row(report, "air-1", "pm2_5", "24h", local(D1, 0))
    assert (d1.mean.value, d1.mean.used, d1.mean.excluded) == (30.0, 23, 1)
    [limit] = [j.limit for j in d1.judgements]
    assert (limit.regulation, limit.max) == ("QCVN 05:2023/BTNMT", 45)  # from 2026-01-01
    assert not d1.exceeded
    d2 = row(report, "air-1", "pm2_5", "24h", local(D2, 0))
    assert d2.mean.value == 50.0
    assert d2.exceeded
    assert not row(report, "air-1", "pm10", "24h", local(D2, 0)).exceeded


def test_a_unit_the_limit_is_not_in_is_not_judged(report):
    o3 = row(report, "air-1", "o3", "1h", local(D1, 9))
    assert o3.mean.value == 40.0
    assert o3.judgements == ()
    assert o3.note == "not judged: measured in ppb, the limit in µg/m³"


def test_vn_aqi_hourly_with_nowcast_and_daily(report):
    [air] = [s for s in report.stations if s.device == "air-1"]
    aqi = {(a.averaging, a.start): a.aqi for a in air.aqi}
    # The first hour has one of the latest three hours: no NowCast, no AQI.
    assert aqi[("1h", local(D1, 0))] is None
    # PM2.5 30 -> 50 + (100-50)/(50-25) * (30-25) = 60; PM10 60 -> 55.
    first = aqi[("1h", local(D1, 1))]
    assert (first.value, first.dominant, first.band.label) == (60, "pm2_5", "moderate")
    # The hour after the invalid one still has two of its latest three.
    assert aqi[("1h", local(D1, 5))].value == 60
    # D2 00:00: c1 = 50, eleven hours of 30 before it; w = 30/50 = 0.6.
    weights = [0.6**i for i in range(12)]
    nowcast = (50 + 30 * sum(weights[1:])) / sum(weights)
    assert aqi[("1h", local(D2, 0))].value == math.floor(50 + 2 * (nowcast - 25) + 0.5) == 76
    day1, day2 = aqi[("24h", local(D1, 0))], aqi[("24h", local(D2, 0))]
    assert (day1.value, day1.band.label) == (60, "moderate")
    # PM2.5 50 is the 100 breakpoint exactly.
    assert (day2.value, day2.dominant) == (100, "pm2_5")


def test_noise_is_averaged_by_energy_over_the_day_and_night_periods(report):
    hour = row(report, "noise-1", "laeq", "1h", local(D1, 10))
    assert hour.mean.value == pytest.approx(10 * math.log10((1e6 + 1e7) / 2))  # 67.40
    day = row(report, "noise-1", "laeq", "day", local(D1, 6))
    assert day.mean.value == pytest.approx(67.4036, abs=1e-4)
    assert not day.exceeded  # normal zone, day: 70
    night = row(report, "noise-1", "laeq", "night", local(D1, 21))
    assert night.mean.value == pytest.approx(58.0)
    assert night.exceeded  # normal zone, night: 55
    assert night.judgements[0].limit.regulation == "QCVN 26:2010/BTNMT"
    # D2's night runs to 06:00 on a day with no data: 3 of its 9 hours, 7 needed.
    late = row(report, "noise-1", "laeq", "night", local(D2, 21))
    assert (late.mean.value, late.mean.used, late.mean.needed) == (None, 3, 7)
    daily = row(report, "noise-1", "laeq", "24h", local(D1, 0))
    expected = 10 * math.log10((15 * 10 ** (67.4036 / 10) + 9 * 10**5.8) / 24)
    assert daily.mean.value == pytest.approx(expected, abs=1e-3)  # 65.65


def test_both_stores_give_the_same_report(reports):
    def as_csv(report: Report) -> str:
        out = io.StringIO()
        write_csv(report, out)
        return out.getvalue()

    sqlite, influx = as_csv(reports["sqlite"]), as_csv(reports["influxdb"])
    assert sqlite == influx
    rows = list(csv.DictReader(io.StringIO(sqlite)))
    exceeded = [
        (r["station"], r["parameter"], r["averaging"]) for r in rows if r["exceeded"] == "yes"
    ]
    assert ("air-1", "pm2_5", "24h") in exceeded
    assert ("noise-1", "laeq", "night") in exceeded
    d2 = next(
        r
        for r in rows
        if r["parameter"] == "pm2_5"
        and r["averaging"] == "24h"
        and r["start"] == local(D2, 0).isoformat()
    )
    assert (d2["value"], d2["limit"], d2["regulation"]) == (
        "50.0",
        "≤ 45",
        "QCVN 05:2023/BTNMT, limit table",
    )


def test_the_workbook_opens_with_a_summary_and_a_sheet_per_station(reports, tmp_path):
    path = tmp_path / "report.xlsx"
    write_workbook(reports["sqlite"], path)
    book = load_workbook(path)
    assert book.sheetnames == ["Summary", "air-1", "noise-1"]
    summary = list(book["Summary"].iter_rows(values_only=True))
    assert summary[0][:4] == ("station", "name", "kind", "parameters")
    by_station = {r[0]: r for r in summary[1:3]}
    # air-1: 3 parameters x 48 hours, the short hour invalid for each; 3 flagged
    # readings; one exceedance (D2's PM2.5); highest daily VN_AQI 100.
    assert by_station["air-1"][3:] == (3, 141, 144, 3, 1, 100)
    sheet = book["air-1"]
    header = [c.value for c in sheet[1]]
    assert header[:3] == ["parameter", "unit", "averaging"]
    exceeded = [[c.value for c in r] for r in sheet.iter_rows(min_row=2) if r[0].fill == EXCEEDED]
    assert len(exceeded) == 1
    assert exceeded[0][header.index("value")] == 50.0


def test_the_html_report_has_a_chart_per_station_and_parameter(reports):
    html = render_html(reports["sqlite"], datetime.now(ZONE))
    for station, parameter in (
        ("air-1", "pm2_5"),
        ("air-1", "pm10"),
        ("air-1", "o3"),
        ("noise-1", "laeq"),
    ):
        marker = f'<figure class="chart" data-station="{station}" data-parameter="{parameter}">'
        assert marker in html
        chart = html[html.index(marker) :]
        assert chart[chart.index(">") + 1 :].lstrip().startswith("<svg")
        assert chart.index("</svg>") < chart.index("</figure>")
    assert "QCVN 26:2010/BTNMT, normal zone" in html
    assert html.count("<svg") == 4


def test_the_wastewater_limit_scales_by_k_and_ends_with_its_regulation(tmp_path):
    """QCVN 14:2008 column B TSS is 100 mg/L x K until 2025-08-31; no confirmed value
    follows it, so a later day is reported but not judged."""
    store = SqliteStore(tmp_path / "s.sqlite")
    station = {"ww-1": StationSettings(kind="wastewater", column="B", k=1.2)}
    seq = 0
    for day, tss in (
        (date(2025, 6, 2), 110.0),
        (date(2025, 6, 3), 130.0),
        (date(2025, 9, 2), 500.0),
    ):
        for hour in range(24):
            seq += 1
            sample = Sample(
                sensor="panel",
                ts=local(day, hour),
                readings=(Reading(parameter="tss", value=tss, unit="mg/L", quality=Quality.OK),),
            )
            message = Telemetry(device="ww-1", seq=seq, clock=ClockSync.SYNCED, samples=(sample,))
            store.write_batch([ReceivedMessage("at", message, sample.ts)])
    limits = builtin_limits()
    june = build_report(store, station, SETTINGS, limits, date(2025, 6, 2), date(2025, 6, 3))
    assert not row(june, "ww-1", "tss", "1h", local(date(2025, 6, 2), 9)).exceeded  # 110 <= 120
    over = row(june, "ww-1", "tss", "1h", local(date(2025, 6, 3), 9))
    assert over.exceeded  # 130 > 120
    assert over.judgements[0].limit.clause == "column B"
    september = build_report(store, station, SETTINGS, limits, date(2025, 9, 2), date(2025, 9, 2))
    assert row(september, "ww-1", "tss", "1h", local(date(2025, 9, 2), 9)).judgements == ()
    store.close()


def test_windows_by_position_are_the_windows_by_time():
    """`within` slices contiguous hours by index; it must pick what a scan would."""
    t0 = datetime(2026, 11, 19, 5, tzinfo=UTC)
    means = [Mean(t0 + HOUR * i, t0 + HOUR * (i + 1), float(i), 1, 0, 1) for i in range(60)]
    eights = rolling(means, 8, 6)
    for start in (t0 - HOUR * 3, t0, t0 + HOUR * 12, t0 + HOUR * 50):
        end = start + HOUR * 24
        assert within(means, start, end) == [m for m in means if start <= m.start < end]
        ending = within(eights, start - 7 * HOUR, end - 7 * HOUR)
        assert ending == [m for m in eights if start < m.end <= end]
