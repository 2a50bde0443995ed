"""The report as one self-contained HTML page: a summary, each station's exceedances and
VN_AQI, and a chart per station and parameter.

Charts are SVG drawn by matplotlib and inlined, so the page is one file that opens
offline, prints, and can be mailed; Jinja2 lays out the page with escaping on. Both
come with the `export` extra.
"""

import io
import math
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from matplotlib.dates import DateFormatter
from matplotlib.figure import Figure

from collector.compliance.report import Report, Row, StationReport
from collector.exports.table import SUMMARY_COLUMNS, bounds, summary_line

_environment = Environment(
    loader=PackageLoader("collector.exports", "templates"),
    autoescape=select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def chart(report: Report, station: StationReport, parameter: str) -> Markup:
    """Hourly and daily means of one parameter, with the limits that judged them."""
    rows = [r for r in station.rows if r.parameter == parameter]
    by_averaging: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_averaging[row.averaging].append(row)
    figure = Figure(figsize=(10, 2.8), layout="constrained")
    axes = figure.add_subplot()
    hourly = by_averaging.get("1h", [])
    if hourly:
        # An invalid hour is NaN, so the line breaks there instead of bridging the gap.
        # matplotlib plots datetimes through its unit conversion, which its stubs leave out
        # (matplotlib#27140); hence the ignores on the time arguments here and below.
        axes.plot(
            [report.local(r.mean.start) for r in hourly],  # type: ignore[arg-type]
            [math.nan if r.mean.value is None else r.mean.value for r in hourly],
            linewidth=1,
            drawstyle="steps-post",
            label="1h mean",
        )
    for averaging, colour in (("24h", "tab:orange"), ("day", "tab:green"), ("night", "tab:purple")):
        periods = [
            (r.mean.value, r.mean.start, r.mean.end)
            for r in by_averaging.get(averaging, [])
            if r.mean.value is not None
        ]
        if periods:
            axes.hlines(
                [value for value, _, _ in periods],
                [report.local(start) for _, start, _ in periods],  # type: ignore[arg-type]
                [report.local(end) for _, _, end in periods],  # type: ignore[arg-type]
                colors=colour,
                linewidth=2,
                label=f"{averaging} mean",
            )
    drawn: set[str] = set()
    for row in rows:
        for judgement in row.judgements:
            limit = judgement.limit
            label = f"{limit.averaging} limit {bounds(limit, station.station.k)}"
            if label in drawn:
                continue
            drawn.add(label)
            for level in (judgement.limit.max, judgement.limit.min):
                if level is not None:
                    factor = station.station.k if judgement.limit.k_factor else 1.0
                    axes.axhline(level * factor, color="red", linewidth=0.8, linestyle=":")
            axes.plot([], [], color="red", linestyle=":", label=label)
    unit = rows[0].unit if rows else ""
    axes.set_title(f"{station.device}: {parameter}" + (f" ({unit})" if unit else ""))
    # matplotlib.dates has no stubs and DateFormatter.__init__ no annotations.
    formatter = DateFormatter("%m-%d %H:%M", tz=report.zone)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_formatter(formatter)
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    out = io.StringIO()
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
                "charts": [(p, chart(report, station, p)) for p in parameters],
                "aqi": [a for a in station.aqi if a.averaging == "24h"],
            }
        )
    template = _environment.get_template("report.html.j2")
    return template.render(
        report=report,
        stations=stations,
        summary_columns=SUMMARY_COLUMNS,
        generated=generated,
        local=report.local,
        bounds=bounds,
    )


def write_html(report: Report, path: Path, generated: datetime) -> None:
    path.write_text(render_html(report, generated), encoding="utf-8")
