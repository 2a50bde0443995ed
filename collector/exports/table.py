"""The report as one flat table, the shape the CSV, the workbook and the HTML all show.

One row per mean (hourly, 8-hour, daily, noise day and night) and per VN_AQI value, so a
spreadsheet user can filter by station, parameter or averaging without reshaping.

Machines read the CSV too: columns are only ever added, at the end. A mean that was not
judged says so in `exceeded` ("not judged") and `judged` ("no"), with the reason in
`note`, so no empty cell can be read as compliance.
"""

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

from collector.compliance.limits import Limit
from collector.compliance.report import AqiRow, Report, Row, StationReport
from collector.compliance.units import decimals

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
    "judged",
    "limit_min",
    "limit_max",
    "flags",
    "measured_unit",
)
AQI_PARAMETER = "VN_AQI"
NOT_JUDGED = "not judged"
Cell = str | int | float | datetime | None


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
    if not row.judged:
        return NOT_JUDGED
    return "yes" if row.exceeded else "no"


def limit_numbers(row: Row, k: float) -> tuple[float | None, float | None]:
    """The lower and upper bound of the row's limit as numbers, K applied; a mean has one
    limit in the built-in table, and with several the first is given (all are in
    `limit`)."""
    if not row.judgements:
        return None, None
    limit = row.judgements[0].limit
    top = limit.max * k if limit.max is not None and limit.k_factor else limit.max
    return limit.min, top


@dataclass(frozen=True)
class Line:
    """One table line, cells in `COLUMNS` order with times as local datetimes, whether it
    marks an exceedance (for writers that colour it), and the decimals its value is
    shown with."""

    cells: tuple[Cell, ...]
    exceeded: bool
    decimals: int


def station_lines(report: Report, station: StationReport) -> Iterator[Line]:
    head = (station.device, station.station.name, station.station.kind)
    for row in station.rows:
        mean = row.mean
        low, high = limit_numbers(row, station.station.k)
        yield Line(
            (
                *head,
                row.parameter,
                row.unit,
                row.averaging,
                report.local(mean.start),
                report.local(mean.end),
                mean.value,
                mean.used,
                mean.excluded,
                mean.needed,
                "yes" if mean.value is not None else "no",
                "; ".join(bounds(j.limit, station.station.k) for j in row.judgements),
                "; ".join(f"{j.limit.regulation}, {j.limit.clause}" for j in row.judgements),
                _verdict(row),
                row.note,
                "yes" if row.judged else "no",
                low,
                high,
                "; ".join(row.flags),
                row.measured_unit,
            ),
            row.exceeded,
            decimals(row.parameter, row.unit),
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
            report.local(row.start),
            report.local(row.end),
            value,
            None,
            None,
            None,
            "yes" if value is not None else "no",
            "",
            "Decision 1459/QĐ-TCMT",
            "",
            note,
            "",
            None,
            None,
            "; ".join(row.flags),
            "",
        ),
        False,
        0,
    )


def _text(cell: Cell) -> str | int | float:
    if cell is None:
        return ""
    return cell.isoformat() if isinstance(cell, datetime) else cell


def lines(report: Report) -> Iterator[Line]:
    for station in report.stations:
        yield from station_lines(report, station)


def write_csv(report: Report, out: TextIO) -> int:
    """Returns the rows written after the header."""
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    count = 0
    for line in lines(report):
        writer.writerow(_text(cell) for cell in line.cells)
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
    "judged means",
    "not judged means",
    "flagged means",
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
        station.judged,
        station.not_judged,
        station.flagged,
    )


PARAMETER_COLUMNS = (
    "parameter",
    "unit",
    "means",
    "judged",
    "not judged",
    "exceedances",
    "flagged",
    "why not judged",
)


def parameter_lines(station: StationReport) -> Iterator[tuple[Cell, ...]]:
    """Per parameter (and unit) of a station: how many of its means were judged, and why the others
    were not (by averaging, with counts), so a parameter never judged cannot pass for one
    that complied."""
    by_series: dict[tuple[str, str], list[Row]] = {}
    for row in station.rows:
        by_series.setdefault((row.parameter, row.unit), []).append(row)
    for (parameter, unit), rows in by_series.items():
        reasons: dict[tuple[str, str], int] = {}
        for row in rows:
            if row.reason:
                key = (row.reason.removeprefix(f"{NOT_JUDGED}: "), row.averaging)
                reasons[key] = reasons.get(key, 0) + 1
        judged = sum(r.judged for r in rows)
        converted = rows[0].conversion
        yield (
            parameter,
            unit + (f" (from {converted.measured})" if converted else ""),
            len(rows),
            judged,
            len(rows) - judged,
            sum(r.exceeded for r in rows),
            sum(bool(r.flags) for r in rows),
            "; ".join(f"{averaging} ×{n}: {why}" for (why, averaging), n in reasons.items()),
        )
