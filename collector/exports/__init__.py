"""Exports for the environmental officer and the provincial authority.

`select_stations` picks the configured stations an export covers; the report itself is
`collector.compliance.report`; `table`, `workbook` and `html_report` lay it out, `tt10`
writes Circular 10/2021 station data files. The workbook and the HTML report need the
`export` extra, imported only when asked for.

The workbook and the HTML report are written in the language asked for; the CSV is for
machines and the same in every language (see `table`).
"""

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from collector.compliance.report import Report
from collector.config import StationSettings
from collector.exports.table import write_csv
from collector.i18n import reports
from iotruntime.i18n import ENGLISH

_ = reports.gettext


class ExportFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"
    HTML = "html"
    TT10 = "tt10"


MEDIA_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ExportFormat.HTML: "text/html; charset=utf-8",
}


def select_stations(
    stations: dict[str, StationSettings], kinds: Sequence[str], devices: Sequence[str]
) -> dict[str, StationSettings]:
    """The stations named, or of the kinds named, or all of them; anything named that is
    not configured is an error that lists what is."""
    if not stations:
        raise ValueError(
            _("the collector config has no stations: an export needs each device's station kind")
        )
    unknown = sorted(set(devices) - stations.keys())
    if unknown:
        raise ValueError(
            _("not a configured station: {unknown} (known: {known})").format(
                unknown=", ".join(unknown), known=", ".join(sorted(stations))
            )
        )
    known_kinds = {s.kind for s in stations.values()}
    missing = sorted(set(kinds) - known_kinds)
    if missing:
        raise ValueError(
            _("no station of kind {missing} (configured: {configured})").format(
                missing=", ".join(missing), configured=", ".join(sorted(known_kinds))
            )
        )
    if not kinds and not devices:
        return dict(stations)
    return {d: s for d, s in stations.items() if d in devices or s.kind in kinds}


def report_writer(fmt: ExportFormat, language: str = ENGLISH) -> Callable[[Report, Path], None]:
    """The writer of a report format, in `language` for the formats people read (the CSV
    is for machines and ignores it). The workbook and the HTML report need the `export`
    extra: without it this raises ImportError, before any store is read."""
    if fmt is ExportFormat.CSV:

        def csv_file(report: Report, out: Path) -> None:
            with out.open("w", encoding="utf-8", newline="") as handle:
                write_csv(report, handle)

        return csv_file
    if fmt is ExportFormat.XLSX:
        from collector.exports.workbook import write_workbook

        return lambda report, out: write_workbook(report, out, language)
    if fmt is ExportFormat.HTML:
        from collector.exports.html_report import write_html

        return lambda report, out: write_html(report, out, datetime.now(UTC), language)
    raise ValueError(_("{format} is not a report format").format(format=fmt))
