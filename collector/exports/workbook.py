"""The report as an Excel workbook: a summary sheet, then one sheet per station.

openpyxl writes it (the `export` extra). Exceedances are filled red so they stand out
when the officer scrolls a month of hourly rows. Cells are typed so Excel can sort,
filter and chart them: times are dates in the report's zone (Excel has no time zones,
so the header names it), values numbers rounded to the parameter's precision, and the
limit's bounds numbers beside the comparison text.

In Vietnamese the sheets' titles, column titles and texts are Vietnamese, dates show as
dd/mm/yyyy and Excel writes the typed numbers with the reader's decimal comma. Below the
summary, each air station's daily VN_AQI comes with its band's name, colour and public
health advice (Decision 1459), in either language; the sheets stay the same.
English keeps the machine keys as column titles, as the workbook always had.
"""

from datetime import datetime
from pathlib import Path
from typing import cast

from openpyxl import Workbook
from openpyxl.cell import Cell as SheetCell
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from collector.compliance.report import Report
from collector.compliance.texts import VN_AQI_DECISION, parameter_name, translated
from collector.exports.table import (
    COLUMNS,
    PARAMETER_COLUMNS,
    SUMMARY_COLUMNS,
    Cell,
    aqi_note,
    column_label,
    joined,
    labels,
    parameter_lines,
    station_lines,
    summary_line,
)
from iotruntime.i18n import ENGLISH, N_, VIETNAMESE, day

EXCEEDED = PatternFill("solid", start_color="FFC7CE", end_color="FFC7CE")
BOLD = Font(bold=True)
STATION_COLUMNS = COLUMNS[3:]
DATE_FORMAT = "yyyy-mm-dd hh:mm"
DATE_FORMATS = {ENGLISH: DATE_FORMAT, VIETNAMESE: "dd/mm/yyyy hh:mm"}
DAY_FORMATS = {ENGLISH: "yyyy-mm-dd", VIETNAMESE: "dd/mm/yyyy"}
MAX_WIDTH = 60
AQI_COLUMNS = (
    N_("station"),
    N_("day"),
    "VN_AQI",
    N_("dominant pollutant"),
    N_("band"),
    N_("colour"),
    N_("effect on health"),
    N_("general public"),
    N_("sensitive groups"),
    N_("note"),
)


def _number_format(decimals: int) -> str:
    return "0." + "0" * decimals if decimals else "0"


def _station_header(report: Report, language: str) -> list[str]:
    zone = report.zone.key
    return [
        f"{column_label(name, language)} ({zone})"
        if name in ("start", "end")
        else column_label(name, language)
        for name in STATION_COLUMNS
    ]


def _append(sheet: Worksheet, cells: list[Cell], decimals: int, language: str) -> None:
    """One row; local times become naive (Excel cannot hold a zone), the mean's value is
    rounded and formatted to the parameter's decimals."""
    value_column = STATION_COLUMNS.index("value")
    row: list[Cell] = [
        cell.replace(tzinfo=None) if isinstance(cell, datetime) else cell for cell in cells
    ]
    if isinstance(value := row[value_column], float):
        row[value_column] = round(value, decimals)
    sheet.append(row)
    for cell in sheet[sheet.max_row]:
        if isinstance(cell.value, datetime):
            cell.number_format = DATE_FORMATS[language]
    sheet.cell(sheet.max_row, value_column + 1).number_format = _number_format(decimals)


def _bold_row(sheet: Worksheet, names: list[str] | tuple[str, ...]) -> None:
    sheet.append(list(names))
    for cell in sheet[sheet.max_row]:
        cell.font = BOLD


def _fit_columns(sheet: Worksheet) -> None:
    """Columns as wide as their longest text, dates and numbers included."""
    widths: dict[int, int] = {}
    for row in sheet.iter_rows():
        for cell in row:
            if isinstance(cell, SheetCell) and cell.value is not None:
                text = "2000-01-01 00:00" if isinstance(cell.value, datetime) else str(cell.value)
                widths[cell.column] = max(widths.get(cell.column, 0), len(text))
    for column, width in widths.items():
        sheet.column_dimensions[get_column_letter(column)].width = min(MAX_WIDTH, width + 2)


def _aqi_rows(sheet: Worksheet, report: Report, language: str) -> None:
    """Each air station's daily VN_AQI with its band's public information, for an officer
    who passes the advice on; nothing when no station rates VN_AQI."""
    days = [(s.device, a) for s in report.stations for a in s.aqi if a.averaging == "24h"]
    if not days:
        return
    sheet.append([])
    heading = translated(N_("Daily VN_AQI and what it means for health ({decision})"), language)
    sheet.append([heading.format(decision=translated(VN_AQI_DECISION, language))])
    _bold_row(sheet, labels(AQI_COLUMNS, language))
    for device, row in days:
        start = report.local(row.start).replace(tzinfo=None)
        if row.aqi is None:
            sheet.append([device, start, None, "", "", "", "", "", "", aqi_note(row, language)])
        else:
            band = row.aqi.band.public_information(language)
            sheet.append(
                [
                    device,
                    start,
                    row.aqi.value,
                    parameter_name(row.aqi.dominant, language),
                    band.name,
                    band.colour,
                    band.meaning,
                    band.general,
                    band.sensitive,
                    joined(row.flags, language),
                ]
            )
            colour = "{:02X}{:02X}{:02X}".format(*band.rgb)
            sheet.cell(sheet.max_row, 5).fill = PatternFill(
                "solid", start_color=colour, end_color=colour
            )
        sheet.cell(sheet.max_row, 2).number_format = DAY_FORMATS[language]


def write_workbook(report: Report, path: Path, language: str = ENGLISH) -> None:
    def text(message: str) -> str:
        return translated(message, language)

    book = Workbook()
    # A new workbook holds one worksheet, the active one.
    summary = cast(Worksheet, book.active)
    summary.title = text(N_("Summary"))
    _bold_row(summary, labels(SUMMARY_COLUMNS, language))
    summary.freeze_panes = "A2"
    for station in report.stations:
        summary.append(list(summary_line(station, language)))
    summary.append([])
    _bold_row(summary, labels(("station", *PARAMETER_COLUMNS), language))
    for station in report.stations:
        for cells in parameter_lines(station, language):
            summary.append([station.device, *cells])
    _fit_columns(summary)  # before the notes below, which run across the columns
    summary.append([])
    first, last = day(report.first, language), day(report.last, language)
    summary.append(
        [
            text(N_("Local days {first} to {last} ({zone})")).format(
                first=first, last=last, zone=report.zone.key
            )
        ]
    )
    for station in report.stations:
        for conversion in station.conversions:
            name = parameter_name(conversion.parameter, language)
            summary.append([f"{station.device} {name}: {conversion.describe().say(language)}"])
    _aqi_rows(summary, report, language)
    for station in report.stations:
        sheet = book.create_sheet(station.device[:31])
        _bold_row(sheet, _station_header(report, language))
        sheet.freeze_panes = "A2"
        for line in station_lines(report, station, language):
            _append(sheet, list(line.cells[3:]), line.decimals, language)
            if line.exceeded:
                for cell in sheet[sheet.max_row]:
                    cell.fill = EXCEEDED
        _fit_columns(sheet)
    book.save(path)
