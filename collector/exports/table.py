"""The report as one flat table, the shape the CSV, the workbook and the HTML all show.

One row per mean (hourly, 8-hour, daily, noise day and night) and per VN_AQI value, so a
spreadsheet user can filter by station, parameter or averaging without reshaping.

Machines read the CSV too: columns are only ever added, at the end. A mean that was not
judged says so in `exceeded` ("not judged") and `judged` ("no"), with the reason in
`note`, so no empty cell can be read as compliance.

The CSV is for machines in every language: English keys, ISO times, decimal points and
English texts, whatever `--lang` says, so a script or the authority's importer reads the
same file from every officer. People read the workbook, the HTML report and the terminal's
table, which `language` turns Vietnamese: labels, parameter names as the regulations write
them, limits with decimal commas, reasons and flags.
"""

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

from collector.compliance.limits import Limit
from collector.compliance.report import AqiRow, Report, Row, StationReport
from collector.compliance.texts import (
    VN_AQI_DECISION,
    Phrase,
    averaging_name,
    clause_name,
    kind_name,
    parameter_name,
    said,
    translated,
    yes_no,
)
from collector.compliance.units import decimals
from iotruntime.i18n import ENGLISH, N_, number

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
# Each column's title for people in another language; English shows the keys themselves.
_COLUMN_LABELS = {
    "station": N_("station"),
    "name": N_("name"),
    "kind": N_("kind"),
    "parameter": N_("parameter"),
    "unit": N_("unit"),
    "averaging": N_("averaging"),
    "start": N_("start"),
    "end": N_("end"),
    "value": N_("value"),
    "used": N_("valid samples used"),
    "excluded": N_("samples excluded"),
    "needed": N_("samples needed"),
    "valid": N_("valid"),
    "limit": N_("limit"),
    "regulation": N_("regulation"),
    "exceeded": N_("exceeded"),
    "note": N_("note"),
    "judged": N_("judged"),
    "limit_min": N_("lower limit"),
    "limit_max": N_("upper limit"),
    "flags": N_("flags"),
    "measured_unit": N_("unit measured"),
}
AQI_PARAMETER = "VN_AQI"
NOT_JUDGED = N_("not judged")
Cell = str | int | float | datetime | None


def column_label(key: str, language: str) -> str:
    """A column's title for people: the key itself in English, as the workbook always
    showed it."""
    return key if language == ENGLISH else translated(_COLUMN_LABELS[key], language)


def _figure(value: float, language: str) -> str:
    return f"{value:g}" if language == ENGLISH else number(value, language)


def bounds(limit: Limit, k: float, language: str = ENGLISH) -> str:
    """`≤ 50`, `5-9`, `≥ 0.2`; a limit scaled by K shows the factor and the result."""
    top = limit.max
    if top is not None and limit.k_factor and k != 1.0:
        top_text = f"{_figure(top, language)}×K={_figure(top * k, language)}"
    else:
        top_text = _figure(top, language) if top is not None else ""
    if limit.min is not None and top is not None:
        return f"{_figure(limit.min, language)}-{top_text}"
    return f"≤ {top_text}" if top is not None else f"≥ {_figure(limit.min or 0.0, language)}"


def regulation_text(limit: Limit, language: str = ENGLISH) -> str:
    """`QCVN 05:2023/BTNMT, limit table`: the regulation as it names itself, and its part."""
    return f"{limit.regulation}, {clause_name(limit.clause, language)}"


def _verdict(row: Row, language: str) -> str:
    if not row.judged:
        return translated(NOT_JUDGED, language)
    return yes_no(row.exceeded, language)


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


def joined(texts: tuple[Phrase, ...], language: str) -> str:
    return "; ".join(said(text, language) for text in texts)


def station_lines(
    report: Report, station: StationReport, language: str = ENGLISH
) -> Iterator[Line]:
    """The station's lines; in English exactly what the CSV writes, in another language
    the texts people read translated (numbers and times stay typed)."""
    k = station.station.k
    head = (station.device, station.station.name, kind_name(station.station.kind, language))
    for row in station.rows:
        mean = row.mean
        low, high = limit_numbers(row, k)
        yield Line(
            (
                *head,
                parameter_name(row.parameter, language),
                row.unit,
                averaging_name(row.averaging, language),
                report.local(mean.start),
                report.local(mean.end),
                mean.value,
                mean.used,
                mean.excluded,
                mean.needed,
                yes_no(mean.value is not None, language),
                "; ".join(bounds(j.limit, k, language) for j in row.judgements),
                "; ".join(regulation_text(j.limit, language) for j in row.judgements),
                _verdict(row, language),
                said(row.note, language),
                yes_no(row.judged, language),
                low,
                high,
                joined(row.flags, language),
                row.measured_unit,
            ),
            row.exceeded,
            decimals(row.parameter, row.unit),
        )
    for aqi in station.aqi:
        yield _aqi_line(report, head, aqi, language)


def aqi_note(row: AqiRow, language: str = ENGLISH) -> str:
    """The pollutant that set the index and the band's name, or why there is no index."""
    if row.aqi is None:
        return translated(N_("too few valid hours"), language)
    if language == ENGLISH:
        return f"dominant {row.aqi.dominant}, {row.aqi.band.label}"
    return translated(N_("dominant {pollutant}, {band}"), language).format(
        pollutant=parameter_name(row.aqi.dominant, language),
        band=row.aqi.band.public_information(language).name,
    )


def _aqi_line(report: Report, head: tuple[str, str, str], row: AqiRow, language: str) -> Line:
    value = row.aqi.value if row.aqi is not None else None
    return Line(
        (
            *head,
            AQI_PARAMETER,
            "",
            averaging_name(row.averaging, language),
            report.local(row.start),
            report.local(row.end),
            value,
            None,
            None,
            None,
            yes_no(value is not None, language),
            "",
            translated(VN_AQI_DECISION, language),
            "",
            aqi_note(row, language),
            "",
            None,
            None,
            joined(row.flags, language),
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
    N_("station"),
    N_("name"),
    N_("kind"),
    N_("parameters"),
    N_("valid hours"),
    N_("hours"),
    N_("excluded samples"),
    N_("exceedances"),
    N_("highest daily VN_AQI"),
    N_("judged means"),
    N_("not judged means"),
    N_("flagged means"),
)


def labels(columns: tuple[str, ...], language: str) -> list[str]:
    """`SUMMARY_COLUMNS` or `PARAMETER_COLUMNS` as a reader of `language` reads them."""
    return [translated(name, language) for name in columns]


def summary_line(station: StationReport, language: str = ENGLISH) -> tuple[Cell, ...]:
    """A station at a glance: how complete its data is, and how often it broke a limit."""
    hourly = [r for r in station.rows if r.averaging == "1h"]
    daily_aqi = [a.aqi.value for a in station.aqi if a.averaging == "24h" and a.aqi is not None]
    return (
        station.device,
        station.station.name,
        kind_name(station.station.kind, language),
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
    N_("parameter"),
    N_("unit"),
    N_("means"),
    N_("judged"),
    NOT_JUDGED,
    N_("exceedances"),
    N_("flagged"),
    N_("why not judged"),
)


def parameter_lines(station: StationReport, language: str = ENGLISH) -> Iterator[tuple[Cell, ...]]:
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
                key = (row.why.say(language), averaging_name(row.averaging, language))
                reasons[key] = reasons.get(key, 0) + 1
        judged = sum(r.judged for r in rows)
        converted = rows[0].conversion
        origin = ""
        if converted is not None:
            origin = " " + translated(N_("(from {unit})"), language).format(unit=converted.measured)
        yield (
            parameter_name(parameter, language),
            unit + origin,
            len(rows),
            judged,
            len(rows) - judged,
            sum(r.exceeded for r in rows),
            sum(bool(r.flags) for r in rows),
            "; ".join(f"{averaging} ×{n}: {why}" for (why, averaging), n in reasons.items()),
        )
