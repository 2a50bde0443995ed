"""Issue #26: the report in the officer's language. The known dataset of export_cases.py,
laid out in Vietnamese: parameters and regulations named as the regulations write them,
dates dd/mm/yyyy, decimal commas, every label and reason translated, and each air
station's daily VN_AQI with its band's name, colour and the public health advice of
Decision 1459; the CSV for machines the same in every language."""

import csv
import io
import os
import pickle
import re
import subprocess
from datetime import datetime

import pytest
import yaml
from openpyxl import load_workbook

from collector.compliance.aqi import BANDS
from collector.compliance.limits import Limit, builtin_limits
from collector.compliance.report import Report, build_report
from collector.compliance.texts import Phrase
from collector.exports.html_report import render_html
from collector.exports.table import bounds, parameter_lines, station_lines, write_csv
from collector.exports.workbook import write_workbook
from collector.stores.sqlite import SqliteStore
from iotruntime.i18n import ENGLISH, VIETNAMESE
from tests.collector.exports.export_cases import D1, D2, SETTINGS, STATIONS, ZONE, load
from tests.helpers import REPO

MODERATE = next(b for b in BANDS if b.label == "moderate")
GOOD = next(b for b in BANDS if b.label == "good")


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Report:
    store = SqliteStore(tmp_path_factory.mktemp("report") / "s.sqlite")
    load(store)
    built = build_report(store, STATIONS, SETTINGS, builtin_limits(), D1, D2)
    store.close()
    return built


@pytest.fixture(scope="module")
def html(report) -> str:
    """The page without its charts' SVG, which repeats the axis texts."""
    page = render_html(report, datetime(2026, 12, 1, 9, 30, tzinfo=ZONE), VIETNAMESE)
    return re.sub(r"<svg.*?</svg>", "", page, flags=re.S)


def vi_day(day) -> str:
    return f"{day:%d/%m/%Y}"


def test_the_page_is_vietnamese_with_its_dates_and_decimal_commas(html):
    assert html.startswith('<!doctype html>\n<html lang="vi">')
    assert f"<title>Báo cáo quan trắc môi trường từ {vi_day(D1)} đến {vi_day(D2)}</title>" in html
    assert "lập lúc\n09:30 01/12/2026" in html
    # PM2.5's daily mean of D2, 50.0 µg/m³, over the 45 of QCVN 05:2023 from 2026-01-01.
    assert (
        "<td>Bụi PM2,5</td><td>24 giờ</td>\n"
        f"    <td>00:00 {vi_day(D2)}</td>\n"
        '    <td class="num">50,0</td><td>µg/m³</td>'
    ) in html
    assert (
        "<td>QCVN 05:2023/BTNMT, Bảng 1 (giá trị giới hạn tối đa các thông số cơ bản)</td>" in html
    )
    assert "<td>QCVN 26:2010/BTNMT, khu vực thông thường</td>" in html
    assert "µg/Nm³ = ppb × M / 24,45" in html
    assert "O3 48,00; NO2 46,01; SO2 64,07; CO 28,01." in html
    assert "<li>Carbon monoxide (CO): quy đổi từ ppm: µg/m³ = ppm × 1000 × 28,01 / 24,45" in html
    assert '<td class="num">-3,0</td>' in html  # the lowest flagged PM2.5 mean
    assert (
        "<li>QCVN 05:2023/BTNMT: Quy chuẩn kỹ thuật quốc gia về chất lượng không khí</li>"
        "<li>QCVN 26:2010/BTNMT: Quy chuẩn kỹ thuật quốc gia về tiếng ồn</li>"
        "<li>Quyết định 1459/QĐ-TCMT: Hướng dẫn kỹ thuật tính toán và công bố chỉ số chất "
        "lượng không khí Việt Nam (VN_AQI)</li>"
    ) in html


def test_every_label_and_reason_is_translated(html):
    for label in (
        "<h2>Tổng hợp</h2>",
        "<h3>Các trường hợp vượt ngưỡng</h3>",
        "<h3>Đã đánh giá và không đánh giá</h3>",
        "<h3>Dữ liệu bị đánh dấu</h3>",
        "<h3>VN_AQI theo ngày</h3>",
        "<th>lý do không đánh giá</th>",
        "<th>số lần vượt ngưỡng</th>",
        "<td>tiếng ồn</td>",
        "<td>Tổng bụi lơ lửng (TSP)</td><td>mg/m³</td>",
        "<td>Độ ồn (LAeq)</td>",
        "1 giờ ×48: không có giới hạn có hiệu lực trong ngày này",
        "1 giờ ×48: đo theo mg/m³, giới hạn tính theo µg/m³",
        "ban đêm (21 giờ - 6 giờ) ×1: không đủ dữ liệu hợp lệ để tính trung bình",
        "giá trị âm (máy phân tích bị trôi điểm không), tính là 0 trong VN_AQI",
        "Bụi PM10, Bụi PM2,5 nhỏ hơn 0 (máy phân tích bị trôi điểm không), tính là 0",
        "Không có trường hợp vượt ngưỡng trong 5 giá trị trung bình được đánh giá",
    ):
        assert label in html, label
    text = re.sub(r"<[^>]+>|<style>.*?</style>", " ", html, flags=re.S)
    for english in ("not judged", "Summary", "Exceedances", "no limit in force", "pm2_5", "limit"):
        assert english not in text, english


def test_each_air_station_has_its_vn_aqi_band_colour_and_advice(html):
    """air-1: VN_AQI 60 on D1 and 100 on D2, both Moderate (yellow); air-2: 11 and 0, Good."""
    information = MODERATE.public_information(VIETNAMESE)
    assert (information.name, information.colour) == ("Trung bình", "Vàng")
    air_1 = html[html.index('id="station-air-1"') : html.index('id="station-air-2"')]
    for day, value in ((D1, 60), (D2, 100)):
        assert (
            f"<td>{vi_day(day)}</td>\n"
            f'    <td class="num">{value}</td><td>Bụi PM2,5</td>\n'
            '    <td class="band-name"><span class="band" style="background: rgb(255, 255, 0)">'
            "</span> Trung bình</td>\n"
            "    <td>Vàng</td>"
        ) in air_1
    assert "(Quyết định 1459/QĐ-TCMT)</h4>" in air_1
    assert f'<td class="general">{information.general}</td>' in air_1
    assert f'<td class="sensitive">{information.sensitive}</td>' in air_1
    assert "Nên theo dõi các triệu chứng như ho hoặc khó thở" in information.sensitive
    assert information.meaning in air_1
    good = GOOD.public_information(VIETNAMESE)
    air_2 = html[html.index('id="station-air-2"') : html.index('id="station-noise-1"')]
    assert "</span> Tốt (Xanh)</td>" in air_2
    assert f'<td class="general">{good.general}</td>' in air_2
    assert "Trung bình" not in air_2  # only the bands its days reached
    noise = html[html.index('id="station-noise-1"') :]
    assert "VN_AQI" not in noise


def test_the_english_page_keeps_its_formats_and_gains_the_advice(report):
    page = render_html(report, datetime(2026, 12, 1, 9, 30, tzinfo=ZONE), ENGLISH)
    assert page.startswith('<!doctype html>\n<html lang="en">')
    assert f"Local days {D1} to {D2} (Asia/Ho_Chi_Minh); generated\n2026-12-01 09:30." in page
    assert '<td class="num">50.0</td><td>µg/m³</td>' in page
    english = MODERATE.public_information(ENGLISH)
    assert "</span> Moderate (yellow)</td>" in page
    assert f'<td class="sensitive">{english.sensitive}</td>' in page
    assert "(Decision 1459/QĐ-TCMT)</h4>" in page


def test_the_workbook_in_vietnamese(report, tmp_path):
    path = tmp_path / "bao-cao.xlsx"
    write_workbook(report, path, VIETNAMESE)
    book = load_workbook(path)
    assert book.sheetnames == ["Tổng hợp", "air-1", "air-2", "noise-1"]
    summary = list(book["Tổng hợp"].iter_rows(values_only=True))
    assert summary[0][:4] == ("trạm", "tên trạm", "loại trạm", "số thông số")
    by_station = {r[0]: r for r in summary[1:4]}
    assert by_station["noise-1"][2] == "tiếng ồn"
    texts = [r[0] for r in summary if r and isinstance(r[0], str)]
    assert (
        f"Các ngày theo giờ địa phương từ {vi_day(D1)} đến {vi_day(D2)} (Asia/Ho_Chi_Minh)" in texts
    )
    # The daily VN_AQI with the band's public information, below the summary.
    [moderate] = [r for r in summary if r and r[0] == "air-1" and r[2] == 100]
    information = MODERATE.public_information(VIETNAMESE)
    assert moderate[3:9] == (
        "Bụi PM2,5",
        "Trung bình",
        "Vàng",
        information.meaning,
        information.general,
        information.sensitive,
    )
    sheet = book["air-1"]
    header = [c.value for c in sheet[1]]
    assert header[:5] == [
        "thông số",
        "đơn vị",
        "thời gian trung bình",
        "bắt đầu (Asia/Ho_Chi_Minh)",
        "kết thúc (Asia/Ho_Chi_Minh)",
    ]
    rows = [dict(zip(header, r, strict=True)) for r in sheet.iter_rows(min_row=2)]
    exceeded = next(r for r in rows if r["vượt ngưỡng"].value == "có")
    assert exceeded["thông số"].value == "Bụi PM2,5"
    assert exceeded["bắt đầu (Asia/Ho_Chi_Minh)"].number_format == "dd/mm/yyyy hh:mm"
    # A number stays a number: Excel shows it with the reader's decimal comma.
    assert (exceeded["giá trị"].value, exceeded["giá trị"].number_format) == (50.0, "0.0")
    assert (
        exceeded["quy chuẩn"].value
        == "QCVN 05:2023/BTNMT, Bảng 1 (giá trị giới hạn tối đa các thông số cơ bản)"
    )
    unjudged = next(
        r for r in rows if r["được đánh giá"].value == "không" and r["thông số"].value == "Bụi PM10"
    )
    assert unjudged["vượt ngưỡng"].value == "không đánh giá"
    assert (
        unjudged["ghi chú"].value == "không đánh giá: không có giới hạn có hiệu lực trong ngày này"
    )


def test_the_terminal_table_and_limits_in_vietnamese(report):
    [air_2] = [s for s in report.stations if s.device == "air-2"]
    tsp = next(line for line in parameter_lines(air_2, VIETNAMESE) if "TSP" in str(line[0]))
    assert tsp[:2] == ("Tổng bụi lơ lửng (TSP)", "mg/m³")
    co = next(line for line in parameter_lines(air_2, VIETNAMESE) if "CO" in str(line[0]))
    assert co[1] == "µg/m³ (quy đổi từ ppm)"
    limit = Limit(
        kind="wastewater",
        parameter="bod5",
        regulation="QCVN 14:2008/BTNMT",
        clause="column B",
        averaging="sample",
        unit="mg/L",
        max=50,
        k_factor=True,
    )
    assert bounds(limit, 1.2, VIETNAMESE) == "≤ 50×K=60"
    assert bounds(limit.model_copy(update={"max": 0.05, "k_factor": False}), 1, VIETNAMESE) == (
        "≤ 0,05"
    )
    ph = limit.model_copy(update={"min": 6.5, "max": 8.5})
    assert bounds(ph, 1.2, VIETNAMESE) == "6,5-8,5×K=10,2"
    assert bounds(ph, 1.2, ENGLISH) == "6.5-8.5×K=10.2"


def test_the_csv_for_machines_is_the_same_in_every_language(report):
    """The CSV has no language: English keys and texts, ISO times, decimal points."""
    out = io.StringIO()
    write_csv(report, out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    d2 = next(
        r
        for r in rows
        if r["parameter"] == "pm2_5" and r["averaging"] == "24h" and r["exceeded"] == "yes"
    )
    assert (d2["value"], d2["limit"], d2["regulation"]) == (
        "50.0",
        "≤ 45",
        "QCVN 05:2023/BTNMT, limit table",
    )
    assert d2["start"].startswith(f"{D2}T00:00:00")
    [air] = [s for s in report.stations if s.device == "air-1"]
    assert list(station_lines(report, air)) == list(station_lines(report, air, ENGLISH))


def test_a_reason_is_english_text_and_says_itself_in_vietnamese(report):
    [air] = [s for s in report.stations if s.device == "air-2"]
    tsp = next(r for r in air.rows if r.parameter == "tsp")
    assert isinstance(tsp.reason, Phrase)
    assert tsp.reason == "not judged: measured in mg/m³, the limit in µg/m³"
    assert tsp.reason.say(VIETNAMESE) == "không đánh giá: đo theo mg/m³, giới hạn tính theo µg/m³"
    assert tsp.why.say(VIETNAMESE) == "đo theo mg/m³, giới hạn tính theo µg/m³"
    copied = pickle.loads(pickle.dumps(tsp.note))  # noqa: S301 - our own bytes
    assert (copied, copied.say(VIETNAMESE)) == (tsp.note, tsp.note.say(VIETNAMESE))


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    directory = tmp_path_factory.mktemp("collector")
    store = SqliteStore(directory / "store.sqlite")
    load(store)
    store.close()
    path = directory / "collector.yaml"
    body = {
        "store": {"kind": "sqlite", "path": str(directory / "store.sqlite")},
        "stations": {
            "air-1": {"kind": "air", "name": "Air, market", "aqi": True},
            "noise-1": {"kind": "noise", "zone": "normal"},
        },
    }
    path.write_text(yaml.safe_dump(body), encoding="utf-8")
    return path


def collector(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed command as an officer whose laptop has no language set runs it."""
    environ = {k: v for k, v in os.environ.items() if k not in ("LANGUAGE", "LC_ALL", "LANG")}
    return subprocess.run(
        [str(REPO / ".venv" / "bin" / "collector"), *args],
        env={**environ, "COLUMNS": "200", "LANG": "C.UTF-8"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.servers
def test_collector_lang_vi_export_speaks_vietnamese_and_keeps_the_csv(config, tmp_path):
    period = ("-c", str(config), "--from", str(D1), "--to", str(D2))
    english = collector("export", *period)
    vietnamese = collector("--lang", "vi", "export", *period)
    assert vietnamese.returncode == 0, vietnamese.stderr
    assert vietnamese.stdout == english.stdout  # the CSV is for machines
    exceeded = {r["exceeded"] for r in csv.DictReader(io.StringIO(vietnamese.stdout))}
    assert exceeded == {"yes", "no", "not judged", ""}  # "" on the VN_AQI rows
    said = vietnamese.stderr
    assert f"Giá trị trung bình được đánh giá, các ngày từ {vi_day(D1)} đến {vi_day(D2)}" in said
    pm = next(line for line in said.splitlines() if "Bụi PM2,5" in line)
    assert [cell.strip() for cell in pm.split("│")[1:-1]] == [
        "air-1",
        "Bụi PM2,5",
        "µg/m³",
        "50",
        "2",
        "48",
        "1",
        "0",
        "1 giờ ×48: không có giới hạn có hiệu lực trong ngày",  # "này" on the next line
    ]
    assert (
        f"2 trạm, các ngày từ {vi_day(D1)} đến {vi_day(D2)} (Asia/Ho_Chi_Minh): 2 lần vượt "
        "ngưỡng trong 97 giá trị trung bình được đánh giá, 154 không đánh giá"
    ) in " ".join(said.split())
    # The export command's own --lang does the same, for the workbook and the page.
    out = tmp_path / "bao-cao.xlsx"
    written = collector("export", *period, "--format", "xlsx", "--out", str(out), "--lang", "vi")
    assert written.returncode == 0, written.stderr
    assert load_workbook(out).sheetnames[0] == "Tổng hợp"
    page = tmp_path / "bao-cao.html"
    written = collector("--lang", "vi", "export", *period, "--format", "html", "--out", str(page))
    assert written.returncode == 0, written.stderr
    assert '<html lang="vi">' in page.read_text(encoding="utf-8")


@pytest.mark.servers
def test_export_errors_in_vietnamese(config):
    wrong = collector(
        "--lang", "vi", "export", "-c", str(config), "--from", str(D1), "--station", "air-9"
    )
    assert wrong.returncode == 2
    said = " ".join(wrong.stdout.split())
    assert "không phải trạm đã cấu hình: air-9 (các trạm đã có: air-1, noise-1)" in said
    html = collector(
        "--lang", "vi", "export", "-c", str(config), "--from", str(D1), "--format", "html"
    )
    assert html.returncode == 2
    assert "--format html cần có --out FILE" in " ".join(html.stdout.split())
    unknown = collector("export", "-c", str(config), "--from", str(D1), "--lang", "fr")
    assert unknown.returncode == 2
    assert "unknown language 'fr'" in " ".join(unknown.stderr.split())
