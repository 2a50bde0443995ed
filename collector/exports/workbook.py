"""The report as an Excel workbook: a summary sheet, then one sheet per station.

openpyxl writes it (the `export` extra). Exceedances are filled red so they stand out
when the officer scrolls a month of hourly rows.
"""

from pathlib import Path
from typing import cast

from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from collector.compliance.report import Report
from collector.exports.table import COLUMNS, SUMMARY_COLUMNS, station_lines, summary_line

EXCEEDED = PatternFill("solid", start_color="FFC7CE", end_color="FFC7CE")
BOLD = Font(bold=True)
STATION_COLUMNS = COLUMNS[3:]


def _header(sheet: Worksheet, names: tuple[str, ...]) -> None:
    sheet.append(list(names))
    for cell in sheet[1]:
        cell.font = BOLD
    sheet.freeze_panes = "A2"
    for i, name in enumerate(names, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = max(10, len(name) + 2)


def write_workbook(report: Report, path: Path) -> None:
    book = Workbook()
    # A new workbook holds one worksheet, the active one.
    summary = cast(Worksheet, book.active)
    summary.title = "Summary"
    _header(summary, SUMMARY_COLUMNS)
    for station in report.stations:
        summary.append(list(summary_line(station)))
    summary.append([])
    summary.append([f"Local days {report.first} to {report.last} ({report.zone.key})"])
    for station in report.stations:
        sheet = book.create_sheet(station.device[:31])
        _header(sheet, STATION_COLUMNS)
        for line in station_lines(report, station):
            sheet.append(list(line.cells[3:]))
            if line.exceeded:
                for cell in sheet[sheet.max_row]:
                    cell.fill = EXCEEDED
    book.save(path)
