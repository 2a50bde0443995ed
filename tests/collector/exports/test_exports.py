"""Compliance exports on a known dataset (export_cases.py, beside this file), against both
stores: hourly and daily means with their validity rules, exceedances with the regulation
in force, VN_AQI, and the CSV, workbook and HTML forms of the same report."""

import csv
import io
import math
import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from collector.compliance.averages import Mean, rolling
from collector.compliance.limits import builtin_limits
from collector.compliance.report import HOUR, Report, Row, StationReport, build_report, within
from collector.config import StationSettings
from collector.exports.html_report import chart, chart_data, render_html
from collector.exports.table import COLUMNS, parameter_lines, summary_line, write_csv
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


def test_o3_in_ppb_is_converted_at_25_degrees_and_judged(report):
    o3 = row(report, "air-1", "o3", "1h", local(D1, 9))
    assert o3.mean.value == pytest.approx(40 * 48.00 / 24.45)  # 78.53 µg/m³
    assert (o3.unit, o3.measured_unit) == ("µg/m³", "ppb")
    [judgement] = o3.judgements
    assert (judgement.limit.max, judgement.exceeded) == (200, False)
    assert o3.note == "converted from ppb: µg/m³ = ppb × 48.00 / 24.45 (25 °C, 760 mmHg)"
    eight = row(report, "air-1", "o3", "8h", local(D1, 9))
    assert eight.mean.value == pytest.approx(78.528, abs=1e-3)
    assert [j.limit.max for j in eight.judgements] == [120]


def test_co_in_ppm_is_converted_judged_and_rated(report):
    co = row(report, "air-2", "co", "1h", local(D1, 10))
    assert co.mean.value == pytest.approx(2 * 1000 * 28.01 / 24.45)  # 2291.2 µg/m³
    assert [(j.limit.max, j.exceeded) for j in co.judgements] == [(30000, False)]
    [air] = [s for s in report.stations if s.device == "air-2"]
    aqi = {(a.averaging, a.start): a.aqi for a in air.aqi}
    # 50 / 10000 x 2291.2 = 11.46; the PM sub-indices are 0.
    assert (aqi[("1h", local(D1, 10))].value, aqi[("1h", local(D1, 10))].dominant) == (11, "co")
    assert aqi[("24h", local(D1, 0))].value == 11


def test_a_unit_that_cannot_be_converted_is_not_judged_and_says_why(report):
    tsp = row(report, "air-2", "tsp", "1h", local(D1, 12))
    assert (tsp.mean.value, tsp.mean.used, tsp.judgements) == (None, 2, ())
    assert tsp.reason == "not judged: measured in mg/m³, the limit in µg/m³"


def test_a_negative_pm_mean_gives_vn_aqi_0_and_is_flagged(report):
    [air] = [s for s in report.stations if s.device == "air-2"]
    aqi = {(a.averaging, a.start): a for a in air.aqi}
    hour = aqi[("1h", local(D1, 1))]
    assert hour.aqi is not None
    assert (hour.aqi.value, hour.aqi.band.label, hour.aqi.clamped) == (0, "good", ("pm10", "pm2_5"))
    assert hour.flags == ("pm10, pm2_5 below 0 (analyser zero drift), counted as 0",)
    day = aqi[("24h", local(D2, 0))]
    assert day.aqi is not None
    assert day.aqi.value == 0
    pm = row(report, "air-2", "pm2_5", "1h", local(D1, 1))
    assert pm.mean.value == -3.0
    assert pm.flags == ("negative (analyser zero drift), counted as 0 in VN_AQI",)


def test_every_mean_not_judged_says_why(report):
    reasons = {
        (s.device, r.parameter, r.reason) for s in report.stations for r in s.rows if not r.judged
    }
    assert all(reason.startswith("not judged: ") for _, _, reason in reasons)
    assert ("air-1", "pm2_5", "not judged: no limit in force on this day") in reasons
    assert ("air-1", "o3", "not judged: too few valid data for a mean") in reasons
    assert ("noise-1", "laeq", "not judged: too few valid data for a mean") in reasons
    assert all(r.reason == "" for s in report.stations for r in s.rows if r.judged)


def test_the_summary_counts_judged_and_unjudged_means(report):
    """air-1: PM 2 daily means each; O3 47 hours and 43 8-hour means (the short hour, and
    the last 4 windows reaching into the day after, have too few). air-2: CO's one hour,
    PM's 2 daily means each, 100 negative PM means. noise-1: D1 and D2 day, D1 night."""
    counts = {s.device: summary_line(s)[-3:] for s in report.stations}
    assert counts == {"air-1": (94, 103, 0), "air-2": (5, 242, 100), "noise-1": (3, 51, 0)}
    [air] = [s for s in report.stations if s.device == "air-2"]
    tsp = next(line for line in parameter_lines(air) if line[0] == "tsp")
    assert tsp == (
        "tsp",
        "mg/m³",
        50,
        0,
        50,
        0,
        0,
        "1h ×48: measured in mg/m³, the limit in µg/m³; "
        "24h ×2: measured in mg/m³, the limit in µg/m³",
    )


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
    assert (d2["judged"], d2["limit_min"], d2["limit_max"]) == ("yes", "", "45.0")


def test_the_csv_keeps_its_columns_and_states_every_mean_not_judged(reports):
    out = io.StringIO()
    write_csv(reports["sqlite"], out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert COLUMNS[:17] == (
        "station", "name", "kind", "parameter", "unit", "averaging", "start", "end", "value",
        "used", "excluded", "needed", "valid", "limit", "regulation", "exceeded", "note",
    )  # fmt: skip
    assert COLUMNS[17:] == ("judged", "limit_min", "limit_max", "flags", "measured_unit")
    means = [r for r in rows if r["parameter"] != "VN_AQI"]
    unjudged = [r for r in means if r["judged"] == "no"]
    assert len(unjudged) == 103 + 242 + 51
    assert {r["exceeded"] for r in unjudged} == {"not judged"}
    assert all(r["note"].startswith("not judged: ") for r in unjudged)
    assert {r["exceeded"] for r in means if r["judged"] == "yes"} == {"yes", "no"}
    o3 = next(r for r in means if r["parameter"] == "o3" and r["averaging"] == "1h")
    assert (o3["unit"], o3["measured_unit"], o3["limit_max"]) == ("µg/m³", "ppb", "200.0")
    drift = next(r for r in rows if r["station"] == "air-2" and r["parameter"] == "VN_AQI")
    assert drift["flags"] == ""  # D1 00:00: no NowCast yet, so no index to flag
    flagged = [r for r in rows if r["station"] == "air-2" and r["flags"]]
    assert len(flagged) == 100 + 47 + 2  # PM means, hourly and daily VN_AQI


def test_the_workbook_opens_with_a_summary_and_a_sheet_per_station(reports, tmp_path):
    path = tmp_path / "report.xlsx"
    write_workbook(reports["sqlite"], path)
    book = load_workbook(path)
    assert book.sheetnames == ["Summary", "air-1", "air-2", "noise-1"]
    summary = list(book["Summary"].iter_rows(values_only=True))
    assert summary[0][:4] == ("station", "name", "kind", "parameters")
    by_station = {r[0]: r for r in summary[1:4]}
    # air-1: 3 parameters x 48 hours, the short hour invalid for each; 3 flagged
    # readings; one exceedance (D2's PM2.5); highest daily VN_AQI 100; 94 means judged,
    # 103 not, none negative.
    assert by_station["air-1"][3:] == (3, 141, 144, 3, 1, 100, 94, 103, 0)
    assert summary[0][-3:] == ("judged means", "not judged means", "flagged means")
    texts = [r[0] for r in summary if r and isinstance(r[0], str)]
    assert "air-1 o3: converted from ppb: µg/m³ = ppb × 48.00 / 24.45 (25 °C, 760 mmHg)" in texts
    sheet = book["air-1"]
    header = [c.value for c in sheet[1]]
    assert header[:3] == ["parameter", "unit", "averaging"]
    assert header[3:5] == ["start (Asia/Ho_Chi_Minh)", "end (Asia/Ho_Chi_Minh)"]
    exceeded = [[c.value for c in r] for r in sheet.iter_rows(min_row=2) if r[0].fill == EXCEEDED]
    assert len(exceeded) == 1
    assert exceeded[0][header.index("value")] == 50.0


def test_the_workbook_holds_local_dates_rounded_values_and_numeric_limits(reports, tmp_path):
    path = tmp_path / "report.xlsx"
    write_workbook(reports["influxdb"], path)
    sheet = load_workbook(path)["air-1"]
    header = [c.value for c in sheet[1]]
    cells = {
        (r[0].value, r[2].value, r[3].value): dict(zip(header, r, strict=True))
        for r in sheet.iter_rows(min_row=2)
    }
    o3 = cells[("o3", "1h", local(D1, 9).replace(tzinfo=None))]
    assert o3["start (Asia/Ho_Chi_Minh)"].value == datetime(D1.year, D1.month, D1.day, 9)
    assert o3["start (Asia/Ho_Chi_Minh)"].number_format == "yyyy-mm-dd hh:mm"
    assert (o3["value"].value, o3["value"].number_format) == (78.5, "0.0")  # 78.528
    assert (o3["limit"].value, o3["limit_max"].value, o3["limit_min"].value) == ("≤ 200", 200, None)
    pm = cells[("pm2_5", "1h", local(D1, 9).replace(tzinfo=None))]
    assert (pm["exceeded"].value, pm["judged"].value) == ("not judged", "no")
    assert pm["note"].value == "not judged: no limit in force on this day"
    for i, name in enumerate(header, start=1):
        width = sheet.column_dimensions[get_column_letter(i)].width
        longest = max(len(str(sheet.cell(row, i).value or "")) for row in (1, 2))
        assert width >= min(60, longest), name


def test_the_html_report_has_a_chart_per_station_and_parameter(reports):
    html = render_html(reports["sqlite"], datetime.now(ZONE))
    pairs = [
        ("air-1", "pm2_5"),
        ("air-1", "pm10"),
        ("air-1", "o3"),
        ("air-2", "co"),
        ("air-2", "pm10"),
        ("air-2", "pm2_5"),
        ("air-2", "tsp"),
        ("noise-1", "laeq"),
    ]
    for station, parameter in pairs:
        marker = f'<figure class="chart" data-station="{station}" data-parameter="{parameter}">'
        assert marker in html
        chart = html[html.index(marker) :]
        assert chart[chart.index(">") + 1 :].lstrip().startswith("<svg")
        assert chart.index("</svg>") < chart.index("</figure>")
    assert "QCVN 26:2010/BTNMT, normal zone" in html
    assert html.count("<svg") == len(pairs)
    # Every chart's axis spans the report's days, none falls back to 1970-01-01.
    days = {f"{day:%m-%d}" for day in (D1, D2, D2 + timedelta(days=1))}
    labels = time_labels(html)
    assert labels
    assert {label.split()[0] for label in labels} <= days


def time_labels(svg: str) -> list[str]:
    """The chart's time tick labels: the SVG keeps its text as text."""
    return re.findall(r"<text[^>]*>(\d\d-\d\d \d\d:\d\d)</text>", svg)


def section(html: str, device: str) -> str:
    start = html.index(f'<section class="station" id="station-{device}">')
    return html[start : html.index("</section>", start)]


def test_the_html_report_never_reads_nothing_judged_as_compliance(reports):
    report = reports["sqlite"]
    html = render_html(report, datetime.now(ZONE))
    assert "None in the period" not in html
    assert "None among the 5 judged means; 242 means were not judged" in section(html, "air-2")
    assert "µg/Nm³ = ppb × M / 24.45" in html
    assert "O3 48.00; NO2 46.01; SO2 64.07; CO 28.01." in html
    air_2 = section(html, "air-2")
    assert "co: converted from ppm: µg/m³ = ppm × 1000 × 28.01 / 24.45" in air_2
    assert "<td>tsp</td><td>mg/m³</td><td>50</td><td>0</td><td>50</td>" in air_2
    assert "1h ×48: measured in mg/m³, the limit in µg/m³" in air_2
    assert '<td>pm2_5</td><td>1h</td><td class="num">48</td>' in air_2  # flagged hours
    assert "pm10, pm2_5 below 0 (analyser zero drift), counted as 0" in air_2
    # A station of which nothing was judged says so, and that it is no finding.
    [air] = [s for s in report.stations if s.device == "air-2"]
    tsp_only = StationReport(air.device, air.station, [r for r in air.rows if r.parameter == "tsp"])
    alone = render_html(replace(report, stations=[tsp_only]), datetime.now(ZONE))
    assert "Nothing was judged in the period: none of the 50 means" in alone
    assert "This is not a finding of\ncompliance." in alone


def test_charts_span_the_period_and_draw_lone_hours_last_steps_and_8_hour_means(report):
    [air_1, air_2] = [s for s in report.stations if s.device.startswith("air")]
    # TSP has no valid hour: nothing to draw, and still the report's two days.
    tsp = chart_data(report, air_2, "tsp")
    assert (tsp.start, tsp.end) == (local(D1, 0), local(D2, 0) + timedelta(days=1))
    assert all(math.isnan(v) for v in tsp.hourly[1])
    svg = str(chart(report, air_2, "tsp"))
    assert time_labels(svg)[0] == f"{D1:%m-%d} 00:00"
    assert "no valid mean in the period" in svg
    # CO's one valid hour is a segment from 10:00 to 11:00.
    co = chart_data(report, air_2, "co")
    drawn = [(t, v) for t, v in zip(*co.hourly, strict=True) if not math.isnan(v)]
    value = 2 * 1000 * 28.01 / 24.45
    assert drawn == [(local(D1, 10), pytest.approx(value)), (local(D1, 11), pytest.approx(value))]
    # The last hour is drawn to the end of the period.
    pm = chart_data(report, air_1, "pm2_5")
    assert (pm.hourly[0][-1], pm.hourly[1][-1]) == (local(D2, 0) + timedelta(days=1), 50.0)
    # O3's 8-hour means, each at the end of its window; its limits, 1 h and 8 h.
    o3 = chart_data(report, air_1, "o3")
    assert len(o3.eight_hour[0]) == 47
    assert o3.eight_hour[0][0] == local(D1, 8)
    assert o3.eight_hour[1][0] == pytest.approx(40 * 48.00 / 24.45)
    assert o3.limits == {"1h limit ≤ 200": [200.0], "8h limit ≤ 120": [120.0]}
    assert "8h mean" in str(chart(report, air_1, "o3"))


def test_the_wastewater_limit_scales_by_k_and_ends_with_its_regulation(tmp_path):
    """QCVN 14:2008 column B TSS is 100 mg/L x K until 2025-08-31; no confirmed value
    follows it, so a later day of a plant approved since is reported but not judged."""
    store = SqliteStore(tmp_path / "s.sqlite")
    station = {
        "ww-1": StationSettings(kind="wastewater", column="B", k=1.2, existing_facility=False)
    }
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
