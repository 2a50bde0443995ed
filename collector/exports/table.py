"""The report as one flat table, the shape the CSV, the workbook and the HTML all show.

One row per mean (hourly, 8-hour, daily, noise day and night) and per VN_AQI value, so a
spreadsheet user can filter by station, parameter or averaging without reshaping.
"""

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO

from collector.compliance.limits import Limit
from collector.compliance.report import AqiRow, Report, Row, StationReport

COLUMNS = (
    "station",
    "name",
    "kind",
    "parameter",
    "unit",
    "averaging",
    "start",
    "end",
    "value",
    "used",
    "excluded",
    "needed",
    "valid",
    "limit",
    "regulation",
    "exceeded",
    "note",
)
AQI_PARAMETER = "VN_AQI"
Cell = str | int | float | None


def bounds(limit: Limit, k: float) -> str:
    """`≤ 50`, `5-9`, `≥ 0.2`; a limit scaled by K shows the factor and the result."""
    top = limit.max
    if top is not None and limit.k_factor and k != 1.0:
        top_text = f"{top:g}×K={top * k:g}"
    else:
        top_text = f"{top:g}" if top is not None else ""
    if limit.min is not None and top is not None:
        return f"{limit.min:g}-{top_text}"
    return f"≤ {top_text}" if top is not None else f"≥ {limit.min:g}"


def _verdict(row: Row) -> str:
    if not row.judgements:
        return ""
    return "yes" if row.exceeded else "no"


@dataclass(frozen=True)
class Line:
    """One table line and whether it marks an exceedance, for writers that colour it."""

    cells: tuple[Cell, ...]
    exceeded: bool


def station_lines(report: Report, station: StationReport) -> Iterator[Line]:
    head = (station.device, station.station.name, station.station.kind)
    for row in station.rows:
        mean = row.mean
        yield Line(
            (
                *head,
                row.parameter,
                row.unit,
                row.averaging,
                report.local(mean.start).isoformat(),
                report.local(mean.end).isoformat(),
                mean.value,
                mean.used,
                mean.excluded,
                mean.needed,
                "yes" if mean.value is not None else "no",
                "; ".join(bounds(j.limit, station.station.k) for j in row.judgements),
                "; ".join(f"{j.limit.regulation}, {j.limit.clause}" for j in row.judgements),
                _verdict(row),
                row.note,
            ),
            row.exceeded,
        )
    for aqi in station.aqi:
        yield _aqi_line(report, head, aqi)


def _aqi_line(report: Report, head: tuple[str, str, str], row: AqiRow) -> Line:
    value, note = None, "too few valid hours"
    if row.aqi is not None:
        value, note = row.aqi.value, f"dominant {row.aqi.dominant}, {row.aqi.band.label}"
    return Line(
        (
            *head,
            AQI_PARAMETER,
            "",
            row.averaging,
            report.local(row.start).isoformat(),
            report.local(row.end).isoformat(),
            value,
            None,
            None,
            None,
            "yes" if value is not None else "no",
            "",
            "Decision 1459/QĐ-TCMT",
            "",
            note,
        ),
        False,
    )


def lines(report: Report) -> Iterator[Line]:
    for station in report.stations:
        yield from station_lines(report, station)


def write_csv(report: Report, out: TextIO) -> int:
    """Returns the rows written after the header."""
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    count = 0
    for line in lines(report):
        writer.writerow("" if cell is None else cell for cell in line.cells)
        count += 1
    return count


SUMMARY_COLUMNS = (
    "station",
    "name",
    "kind",
    "parameters",
    "valid hours",
    "hours",
    "excluded samples",
    "exceedances",
    "highest daily VN_AQI",
)


def summary_line(station: StationReport) -> tuple[Cell, ...]:
    """A station at a glance: how complete its data is, and how often it broke a limit."""
    hourly = [r for r in station.rows if r.averaging == "1h"]
    daily_aqi = [a.aqi.value for a in station.aqi if a.averaging == "24h" and a.aqi is not None]
    return (
        station.device,
        station.station.name,
        station.station.kind,
        len({r.parameter for r in hourly}),
        sum(r.mean.value is not None for r in hourly),
        len(hourly),
        station.excluded,
        len(station.exceedances()),
        max(daily_aqi) if daily_aqi else None,
    )
