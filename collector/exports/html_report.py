"""The report as one self-contained HTML page: a summary, each station's exceedances and
VN_AQI, and a chart per station and parameter.

Charts are SVG drawn by matplotlib and inlined, so the page is one file that opens
offline, prints, and can be mailed; Jinja2 lays out the page with escaping on. Both
come with the `export` extra.

The page is in one language, the officer's: Jinja2's i18n extension translates the
template's texts from the `reports` catalog, dates are written as its readers write them
(dd/mm/yyyy in Vietnamese) and numbers with their decimal separator. Each air station's
daily VN_AQI comes with its band's name, colour and the public information Decision 1459
attaches to it, for the general public and for sensitive groups.
"""

import functools
import io
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from matplotlib import rc_context
from matplotlib.dates import AutoDateLocator, DateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from collector.compliance.aqi import Band, BandInformation
from collector.compliance.report import AqiRow, Report, Row, StationReport
from collector.compliance.texts import (
    VN_AQI_DECISION,
    VN_AQI_TITLE,
    averaging_name,
    kind_name,
    parameter_name,
    regulation_title,
    said,
    translated,
)
from collector.compliance.units import MOLAR_MASS_G, MOLAR_VOLUME_L, REFERENCE, decimals
from collector.exports.table import (
    PARAMETER_COLUMNS,
    SUMMARY_COLUMNS,
    aqi_note,
    bounds,
    joined,
    labels,
    parameter_lines,
    regulation_text,
    summary_line,
)
from collector.i18n import reports
from iotruntime.i18n import ENGLISH, N_, VIETNAMESE, day, moment, number

PERIOD_COLOURS = {"24h": "tab:orange", "day": "tab:green", "night": "tab:purple"}
# Chart ticks: month-day in English as before, day/month as Vietnamese readers write it.
_TICK_FORMATS = {ENGLISH: "%m-%d %H:%M", VIETNAMESE: "%d/%m %H:%M"}


@functools.cache
def _environment(language: str) -> Environment:
    """One environment per language, its texts translated by the i18n extension; made once,
    since the API renders reports in either language at once."""
    environment = Environment(
        loader=PackageLoader("collector.exports", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    environment.install_gettext_translations(  # type: ignore[attr-defined]
        reports.for_language(language), newstyle=True
    )
    return environment


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


def chart_data(
    report: Report, station: StationReport, parameter: str, language: str = ENGLISH
) -> ChartData:
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
            label = translated(N_("{averaging} limit {bounds}"), language).format(
                averaging=averaging_name(limit.averaging, language),
                bounds=bounds(limit, station.station.k, language),
            )
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


def chart(
    report: Report, station: StationReport, parameter: str, language: str = ENGLISH
) -> Markup:
    """Hourly, 8-hour and daily means of one parameter, with the limits that judged them."""
    data = chart_data(report, station, parameter, language)

    def text(message: str) -> str:
        return translated(message, language)

    figure = Figure(figsize=(10, 2.8), layout="constrained")
    axes = figure.add_subplot()
    # matplotlib plots datetimes through its unit conversion, which its stubs leave out
    # (matplotlib#27140); hence the ignores on the time arguments here and below.
    axes.set_xlim(data.start, data.end)  # type: ignore[arg-type]
    if data.hourly[0]:
        axes.plot(data.hourly[0], data.hourly[1], linewidth=1, label=text(N_("1h mean")))  # type: ignore[arg-type]
    if data.eight_hour[0]:
        axes.plot(
            data.eight_hour[0],  # type: ignore[arg-type]
            data.eight_hour[1],
            linewidth=1.2,
            color="tab:cyan",
            marker=".",
            markersize=3,
            label=text(N_("8h mean")),
        )
    for averaging, periods in data.periods.items():
        if periods:
            axes.hlines(
                [value for value, _, _ in periods],
                [start for _, start, _ in periods],  # type: ignore[arg-type]
                [end for _, _, end in periods],  # type: ignore[arg-type]
                colors=PERIOD_COLOURS[averaging],
                linewidth=2,
                label=text(N_("{averaging} mean")).format(
                    averaging=averaging_name(averaging, language)
                ),
            )
    for label, levels in data.limits.items():
        for level in levels:
            axes.axhline(level, color="red", linewidth=0.8, linestyle=":")
        axes.plot([], [], color="red", linestyle=":", label=label)
    if all(math.isnan(v) for v in data.hourly[1]):
        axes.text(
            0.5,
            0.5,
            text(N_("no valid mean in the period")),
            transform=axes.transAxes,
            ha="center",
        )
    rows = [r for r in station.rows if r.parameter == parameter]
    unit = rows[0].unit if rows else ""
    converted = rows[0].conversion if rows else None
    if converted is not None:
        unit += ", " + text(N_("from {unit}")).format(unit=converted.measured)
    name = parameter_name(parameter, language)
    axes.set_title(f"{station.device}: {name}" + (f" ({unit})" if unit else ""))
    if language != ENGLISH:
        axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: number(value, language)))
    # matplotlib.dates has no stubs and DateFormatter.__init__ no annotations.
    formatter = DateFormatter(_TICK_FORMATS[language], tz=report.zone)  # type: ignore[no-untyped-call]
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


@dataclass(frozen=True)
class DailyAqi:
    """One day's VN_AQI as the page shows it; `band` is None without an index."""

    day: date
    value: int | None
    dominant: str
    band: BandInformation | None
    flags: str
    note: str


def daily_aqi(report: Report, station: StationReport, language: str) -> list[DailyAqi]:
    return [
        DailyAqi(
            report.local(row.start).date(),
            row.aqi.value if row.aqi else None,
            parameter_name(row.aqi.dominant, language) if row.aqi else "",
            row.aqi.band.public_information(language) if row.aqi else None,
            joined(row.flags, language),
            aqi_note(row, language),
        )
        for row in station.aqi
        if row.averaging == "24h"
    ]


def bands_seen(rows: list[AqiRow], language: str) -> list[BandInformation]:
    """The public information of each band the station's days reached, lowest first: what
    the people near the station were advised to do on those days."""
    found: dict[int, Band] = {row.aqi.band.upper: row.aqi.band for row in rows if row.aqi}
    return [found[upper].public_information(language) for upper in sorted(found)]


def regulations(report: Report, language: str) -> list[tuple[str, str]]:
    """Each regulation that judged a mean of the report, with its title, and the decision
    VN_AQI follows when a station rated it: the documents the reader checks the report
    against."""
    cited = sorted(
        {j.limit.regulation for s in report.stations for r in s.rows for j in r.judgements}
    )
    found = [(regulation, regulation_title(regulation, language)) for regulation in cited]
    if any(s.aqi for s in report.stations):
        found.append((translated(VN_AQI_DECISION, language), translated(VN_AQI_TITLE, language)))
    return found


def render_html(report: Report, generated: datetime, language: str = ENGLISH) -> str:
    stations = []
    for station in report.stations:
        parameters = sorted({r.parameter for r in station.rows})
        daily = [a for a in station.aqi if a.averaging == "24h"]
        stations.append(
            {
                "report": station,
                "kind": kind_name(station.station.kind, language),
                "summary": summary_line(station, language),
                "exceedances": station.exceedances(),
                "parameters": list(parameter_lines(station, language)),
                "flagged": flagged(station, language),
                "charts": [(p, chart(report, station, p, language)) for p in parameters],
                "aqi": daily_aqi(report, station, language),
                "bands": bands_seen(daily, language),
            }
        )
    template = _environment(language).get_template("report.html.j2")
    return template.render(
        language=language,
        report=report,
        stations=stations,
        regulations=regulations(report, language),
        summary_columns=labels(SUMMARY_COLUMNS, language),
        parameter_columns=labels(PARAMETER_COLUMNS, language),
        generated=generated,
        day=lambda value: day(value, language),
        moment=lambda value: moment(report.local(value), language),
        number=lambda value, digits=None: number(value, language, digits),
        parameter=lambda code: parameter_name(code, language),
        averaging=lambda code: averaging_name(code, language),
        said=lambda text: said(text, language),
        bounds=lambda limit, k: bounds(limit, k, language),
        regulation=lambda limit: regulation_text(limit, language),
        shown=lambda row: shown(row, language),
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


def flagged(station: StationReport, language: str = ENGLISH) -> list[Flagged]:
    groups: dict[tuple[str, str, str], list[Row]] = defaultdict(list)
    for row in station.rows:
        for flag in row.flags:
            groups[(row.parameter, row.averaging, flag)].append(row)
    return [
        Flagged(
            parameter_name(parameter, language),
            averaging_name(averaging, language),
            said(flag, language),
            len(rows),
            rows[0].mean.start,
            rows[-1].mean.start,
            shown(min(rows, key=lambda r: r.mean.value or 0.0), language),
        )
        for (parameter, averaging, flag), rows in groups.items()
    ]


def shown(row: Row, language: str = ENGLISH) -> str:
    """A mean's value with its parameter's decimals."""
    if row.mean.value is None:
        return ""
    digits = decimals(row.parameter, row.unit)
    if language == ENGLISH:
        return f"{row.mean.value:.{digits}f}"
    return number(row.mean.value, language, digits)


def write_html(report: Report, path: Path, generated: datetime, language: str = ENGLISH) -> None:
    path.write_text(render_html(report, generated, language), encoding="utf-8")
