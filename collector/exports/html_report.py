"""The report as one self-contained HTML page: a summary, each station's exceedances and
VN_AQI, and a chart per station and parameter.

Charts are SVG drawn by matplotlib and inlined, so the page is one file that opens
offline, prints, and can be mailed; Jinja2 lays out the page with escaping on. Both
come with the `export` extra.
"""

import io
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from matplotlib import rc_context
from matplotlib.dates import AutoDateLocator, DateFormatter
from matplotlib.figure import Figure

from collector.compliance.report import Report, Row, StationReport
from collector.compliance.units import MOLAR_MASS_G, MOLAR_VOLUME_L, REFERENCE, decimals
from collector.exports.table import (
    PARAMETER_COLUMNS,
    SUMMARY_COLUMNS,
    bounds,
    parameter_lines,
    summary_line,
)

_environment = Environment(
    loader=PackageLoader("collector.exports", "templates"),
    autoescape=select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
PERIOD_COLOURS = {"24h": "tab:orange", "day": "tab:green", "night": "tab:purple"}


@dataclass(frozen=True)
class ChartData:
    """What one chart draws, apart from the drawing, so it can be checked as data.

    The x range is always the report's period, so a series without a valid mean still
    shows its days rather than matplotlib's default of 1970. Hourly means are a step
    path with both ends of every valid hour, so a lone valid hour is a visible segment
    and the last hour is drawn to its end; NaN breaks the path at invalid hours.
    8-hour means are plotted at the end of their window, the hour they are reported for.
    """

    start: datetime
    end: datetime
    hourly: tuple[list[datetime], list[float]]
    eight_hour: tuple[list[datetime], list[float]]
    periods: dict[str, list[tuple[float, datetime, datetime]]]
    limits: dict[str, list[float]]


def chart_data(report: Report, station: StationReport, parameter: str) -> ChartData:
    rows = [r for r in station.rows if r.parameter == parameter]
    by_averaging: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_averaging[row.averaging].append(row)
    hourly: tuple[list[datetime], list[float]] = ([], [])
    for row in by_averaging.get("1h", []):
        if row.mean.value is None:
            hourly[0].append(report.local(row.mean.start))
            hourly[1].append(math.nan)
        else:
            hourly[0].extend((report.local(row.mean.start), report.local(row.mean.end)))
            hourly[1].extend((row.mean.value, row.mean.value))
    eights = by_averaging.get("8h", [])
    eight_hour = (
        [report.local(r.mean.end) for r in eights],
        [math.nan if r.mean.value is None else r.mean.value for r in eights],
    )
    periods = {
        averaging: [
            (r.mean.value, report.local(r.mean.start), report.local(r.mean.end))
            for r in by_averaging.get(averaging, [])
            if r.mean.value is not None
        ]
        for averaging in PERIOD_COLOURS
    }
    limits: dict[str, list[float]] = {}
    for row in rows:
        for judgement in row.judgements:
            limit = judgement.limit
            label = f"{limit.averaging} limit {bounds(limit, station.station.k)}"
            factor = station.station.k if limit.k_factor else 1.0
            limits.setdefault(
                label,
                [level * factor for level in (limit.max, limit.min) if level is not None],
            )
    return ChartData(
        datetime.combine(report.first, time(0), report.zone),
        datetime.combine(report.last + timedelta(days=1), time(0), report.zone),
        hourly,
        eight_hour,
        periods,
        limits,
    )


def chart(report: Report, station: StationReport, parameter: str) -> Markup:
    """Hourly, 8-hour and daily means of one parameter, with the limits that judged them."""
    data = chart_data(report, station, parameter)
    figure = Figure(figsize=(10, 2.8), layout="constrained")
    axes = figure.add_subplot()
    # matplotlib plots datetimes through its unit conversion, which its stubs leave out
    # (matplotlib#27140); hence the ignores on the time arguments here and below.
    axes.set_xlim(data.start, data.end)  # type: ignore[arg-type]
    if data.hourly[0]:
        axes.plot(data.hourly[0], data.hourly[1], linewidth=1, label="1h mean")  # type: ignore[arg-type]
    if data.eight_hour[0]:
        axes.plot(
            data.eight_hour[0],  # type: ignore[arg-type]
            data.eight_hour[1],
            linewidth=1.2,
            color="tab:cyan",
            marker=".",
            markersize=3,
            label="8h mean",
        )
    for averaging, periods in data.periods.items():
        if periods:
            axes.hlines(
                [value for value, _, _ in periods],
                [start for _, start, _ in periods],  # type: ignore[arg-type]
                [end for _, _, end in periods],  # type: ignore[arg-type]
                colors=PERIOD_COLOURS[averaging],
                linewidth=2,
                label=f"{averaging} mean",
            )
    for label, levels in data.limits.items():
        for level in levels:
            axes.axhline(level, color="red", linewidth=0.8, linestyle=":")
        axes.plot([], [], color="red", linestyle=":", label=label)
    if all(math.isnan(v) for v in data.hourly[1]):
        axes.text(0.5, 0.5, "no valid mean in the period", transform=axes.transAxes, ha="center")
    rows = [r for r in station.rows if r.parameter == parameter]
    unit = rows[0].unit if rows else ""
    converted = rows[0].conversion if rows else None
    if converted is not None:
        unit += f", from {converted.measured}"
    axes.set_title(f"{station.device}: {parameter}" + (f" ({unit})" if unit else ""))
    # matplotlib.dates has no stubs and DateFormatter.__init__ no annotations.
    formatter = DateFormatter("%m-%d %H:%M", tz=report.zone)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_formatter(formatter)
    # Few enough ticks that their labels do not run into each other, on local hours.
    locator = AutoDateLocator(tz=report.zone, maxticks=7)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    out = io.StringIO()
    # Text as text, not glyph outlines: smaller, searchable, and read by screen readers.
    with rc_context({"svg.fonttype": "none"}):
        figure.savefig(out, format="svg")
    svg = out.getvalue()
    return Markup(svg[svg.index("<svg") :])  # noqa: S704 - matplotlib's own SVG, not user text


def render_html(report: Report, generated: datetime) -> str:
    stations = []
    for station in report.stations:
        parameters = sorted({r.parameter for r in station.rows})
        stations.append(
            {
                "report": station,
                "summary": summary_line(station),
                "exceedances": station.exceedances(),
                "parameters": list(parameter_lines(station)),
                "flagged": flagged(station),
                "charts": [(p, chart(report, station, p)) for p in parameters],
                "aqi": [a for a in station.aqi if a.averaging == "24h"],
            }
        )
    template = _environment.get_template("report.html.j2")
    return template.render(
        report=report,
        stations=stations,
        summary_columns=SUMMARY_COLUMNS,
        parameter_columns=PARAMETER_COLUMNS,
        generated=generated,
        local=report.local,
        bounds=bounds,
        shown=shown,
        conversions=MOLAR_MASS_G,
        molar_volume=MOLAR_VOLUME_L,
        reference=REFERENCE,
    )


@dataclass(frozen=True)
class Flagged:
    """Means of one parameter and averaging flagged alike: a month of drifting hours is
    one line, not seven hundred."""

    parameter: str
    averaging: str
    flag: str
    count: int
    first: datetime
    last: datetime
    lowest: str


def flagged(station: StationReport) -> list[Flagged]:
    groups: dict[tuple[str, str, str], list[Row]] = defaultdict(list)
    for row in station.rows:
        for flag in row.flags:
            groups[(row.parameter, row.averaging, flag)].append(row)
    return [
        Flagged(
            parameter,
            averaging,
            flag,
            len(rows),
            rows[0].mean.start,
            rows[-1].mean.start,
            shown(min(rows, key=lambda r: r.mean.value or 0.0)),
        )
        for (parameter, averaging, flag), rows in groups.items()
    ]


def shown(row: Row) -> str:
    """A mean's value with its parameter's decimals."""
    if row.mean.value is None:
        return ""
    return f"{row.mean.value:.{decimals(row.parameter, row.unit)}f}"


def write_html(report: Report, path: Path, generated: datetime) -> None:
    path.write_text(render_html(report, generated), encoding="utf-8")
