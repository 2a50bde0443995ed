"""The report as an Excel workbook: a summary sheet, then one sheet per station.

openpyxl writes it (the `export` extra). Exceedances are filled red so they stand out
when the officer scrolls a month of hourly rows. Cells are typed so Excel can sort,
filter and chart them: times are dates in the report's zone (Excel has no time zones,
so the header names it), values numbers rounded to the parameter's precision, and the
limit's bounds numbers beside the comparison text.
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
from collector.exports.table import (
    COLUMNS,
    PARAMETER_COLUMNS,
    SUMMARY_COLUMNS,
    Cell,
    parameter_lines,
    station_lines,
    summary_line,
)

EXCEEDED = PatternFill("solid", start_color="FFC7CE", end_color="FFC7CE")
BOLD = Font(bold=True)
STATION_COLUMNS = COLUMNS[3:]
DATE_FORMAT = "yyyy-mm-dd hh:mm"
MAX_WIDTH = 60


def _number_format(decimals: int) -> str:
    return "0." + "0" * decimals if decimals else "0"


def _station_header(report: Report) -> list[str]:
    zone = report.zone.key
    return [f"{name} ({zone})" if name in ("start", "end") else name for name in STATION_COLUMNS]


def _append(sheet: Worksheet, cells: list[Cell], decimals: int) -> None:
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
            cell.number_format = DATE_FORMAT
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


def write_workbook(report: Report, path: Path) -> None:
    book = Workbook()
    # A new workbook holds one worksheet, the active one.
    summary = cast(Worksheet, book.active)
    summary.title = "Summary"
    _bold_row(summary, SUMMARY_COLUMNS)
    summary.freeze_panes = "A2"
    for station in report.stations:
        summary.append(list(summary_line(station)))
    summary.append([])
    _bold_row(summary, ("station", *PARAMETER_COLUMNS))
    for station in report.stations:
        for cells in parameter_lines(station):
            summary.append([station.device, *cells])
    _fit_columns(summary)  # before the notes below, which run across the columns
    summary.append([])
    summary.append([f"Local days {report.first} to {report.last} ({report.zone.key})"])
    for station in report.stations:
        for conversion in station.conversions:
            summary.append([f"{station.device} {conversion.parameter}: {conversion.describe()}"])
    for station in report.stations:
        sheet = book.create_sheet(station.device[:31])
        _bold_row(sheet, _station_header(report))
        sheet.freeze_panes = "A2"
        for line in station_lines(report, station):
            _append(sheet, list(line.cells[3:]), line.decimals)
            if line.exceeded:
                for cell in sheet[sheet.max_row]:
                    cell.fill = EXCEEDED
        _fit_columns(sheet)
    book.save(path)
