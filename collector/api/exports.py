"""The compliance report as a file, for env and ops: what `collector export` writes, in
CSV, XLSX or HTML, at most `MAX_EXPORT_DAYS` a request so one call cannot hold a worker
for long (the CLI has no such bound), of days from `FIRST_DAY` to `LAST_DAY`, whose hours
the query model admits in any time zone (collector/query.py)."""

import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from collector.api.auth import ExportReader
from collector.api.context import Context
from collector.api.texts import Refusal, chosen_language
from collector.compliance.limits import configured_limits
from collector.compliance.report import Report, build_report
from collector.exports import MEDIA_TYPES, ExportFormat, report_writer, select_stations
from collector.query import FIRST_DAY, LAST_DAY
from iotruntime.configfile import ConfigError
from iotruntime.i18n import N_

router = APIRouter(tags=["exports"])
ReportFormat = Literal["csv", "xlsx", "html"]
MAX_EXPORT_DAYS = 366


def _report_file(report: Report, fmt: ExportFormat, language: str) -> bytes:
    """The report laid out as `fmt` in `language`, through a temporary file that is gone
    when the bytes are read (the workbook writer needs a file)."""
    try:
        write = report_writer(fmt, language)
    except ImportError as exc:
        raise Refusal(
            501,
            N_("format {format} needs the collector's export extra installed: {why}"),
            format=fmt,
            why=exc,
        ) from None
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / f"report.{fmt}"
        write(report, path)
        return path.read_bytes()


@router.get(
    "/export",
    summary="Hourly and daily means judged against the limits in force, with VN_AQI",
    response_class=Response,
)
def export(
    _: ExportReader,
    ctx: Context,
    request: Request,
    first: Annotated[date, Query(alias="from", description="first local day")],
    last: Annotated[date | None, Query(alias="to", description="last day, included")] = None,
    kind: Annotated[list[str] | None, Query(description="station kind; repeatable")] = None,
    station: Annotated[list[str] | None, Query(description="device id; repeatable")] = None,
    format: ReportFormat = "csv",
    lang: Annotated[
        str | None,
        Query(
            description="en or vi for the workbook and the HTML report (default: the"
            " request's Accept-Language); the CSV is for programs, English in any"
        ),
    ] = None,
) -> Response:
    last = last or first
    for name, day in (("from", first), ("to", last)):
        if not FIRST_DAY <= day <= LAST_DAY:
            raise Refusal(
                422,
                N_("{name} {day} is outside {first} to {last}"),
                name=name,
                day=day,
                first=FIRST_DAY,
                last=LAST_DAY,
            )
    if last < first:
        raise Refusal(422, N_("to ({last}) is before from ({first})"), last=last, first=first)
    if (last - first).days >= MAX_EXPORT_DAYS:
        raise Refusal(
            422,
            N_("at most {days} days at once; split the period or use the CLI"),
            days=MAX_EXPORT_DAYS,
        )
    settings = ctx.settings
    try:
        chosen = select_stations(settings.stations, kind or (), station or ())
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    fmt = ExportFormat(format)
    language = chosen_language(request.headers, lang, None)
    try:
        limits = configured_limits(settings)
    except ConfigError as exc:
        raise HTTPException(500, str(exc)) from None
    report = build_report(ctx.store, chosen, settings.export, limits, first, last)
    name = f"report-{first}-{last}.{fmt}"
    return Response(
        _report_file(report, fmt, language),
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
