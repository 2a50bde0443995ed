"""The HTTP API: device state, latest values, time series and compliance exports for the
people who use them.

A thin layer over the store's query model and the compliance report: every question it
answers, `collector query` and `collector export` answer the same way. Bearer tokens carry
a role (collector/users.py); time series and device state are for ops, env and
technicians, exports for env and ops. Store calls block, so the endpoints are plain
functions FastAPI runs in its thread pool. OpenAPI documentation is at /docs.
"""

import asyncio
import contextlib
import csv
import io
import logging
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response

from collector.alerts.service import Police
from collector.api_auth import role_in
from collector.compliance.limits import builtin_limits
from collector.compliance.report import Report, build_report
from collector.config import CollectorConfig
from collector.exports import MEDIA_TYPES, ExportFormat, report_writer, select_stations
from collector.police_api import police_router
from collector.query import (
    Aggregate,
    AggregateQuery,
    LatestQuery,
    ReadingQuery,
    ReadingRow,
    parse_duration,
)
from collector.stores.base import Store, StoreUnavailableError
from collector.users import EXPORT_READERS, TELEMETRY_READERS, User, Users

log = logging.getLogger(__name__)
Format = Literal["json", "csv"]
ReportFormat = Literal["csv", "xlsx", "html"]
MAX_EXPORT_DAYS = 366


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return Response(out.getvalue(), media_type="text/csv")


def _reading(r: ReadingRow) -> dict[str, object]:
    return {
        "ts": r.ts.isoformat(),
        "site": r.site,
        "device": r.device,
        "sensor": r.sensor,
        "parameter": r.parameter,
        "value": r.value,
        "unit": r.unit,
        "quality": r.quality,
    }


def _readings(rows: list[ReadingRow], fmt: Format) -> Response:
    if fmt == "csv":
        header = ("ts", "site", "device", "sensor", "parameter", "value", "unit", "quality")
        return _table(header, ([_reading(r)[h] for h in header] for r in rows))
    return JSONResponse([_reading(r) for r in rows])


def _report_file(report: Report, fmt: ExportFormat) -> bytes:
    """The report laid out as `fmt`, through a temporary file that is gone when the bytes
    are read (the workbook writer needs a file)."""
    try:
        write = report_writer(fmt)
    except ImportError as exc:
        raise HTTPException(
            501, f"format {fmt} needs the collector's export extra installed: {exc}"
        ) from None
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / f"report.{fmt}"
        write(report, path)
        return path.read_bytes()


def build_app(
    store: Store,
    users: Users,
    settings: CollectorConfig,
    police: Police | None = None,
    stop: asyncio.Event | None = None,
) -> FastAPI:
    """The app; `stop` ends the long-lived responses (the alert stream) when the
    collector stops, so shutting down does not wait on a console left open."""
    silent_after = timedelta(seconds=settings.ingest.silent_after_s)
    app = FastAPI(
        title="Phu Quoc telemetry",
        description="Device state and time series from the operations center's collector.",
    )

    @app.exception_handler(StoreUnavailableError)
    def _store_down(_: Request, exc: StoreUnavailableError) -> JSONResponse:
        return JSONResponse({"detail": f"the store is unavailable: {exc}"}, status_code=503)

    Reader = Annotated[User, Depends(role_in(users, TELEMETRY_READERS))]
    Exporter = Annotated[User, Depends(role_in(users, EXPORT_READERS))]
    Devices = Annotated[list[str] | None, Query(description="device id; repeat for several")]
    Parameters = Annotated[list[str] | None, Query(description="parameter; repeat for several")]

    @app.get("/devices", summary="Each device's state, last seen, and delivery accounting")
    def devices(_: Reader) -> list[dict[str, object]]:
        now = datetime.now(UTC)
        return [
            {
                "device": d.device,
                "site": d.site,
                "state": d.state_at(now, silent_after),
                "version": d.version,
                "last_seen": d.last_seen.isoformat() if d.last_seen else None,
                "messages": d.messages,
                "duplicates": d.duplicates,
                "gaps": d.gaps,
            }
            for d in store.devices()
        ]

    @app.get("/latest", summary="The newest ok value of every series")
    def latest(
        _: Reader, device: Devices = None, parameter: Parameters = None, format: Format = "json"
    ) -> Response:
        rows = store.latest(LatestQuery(tuple(device or ()), tuple(parameter or ())))
        return _readings(rows, format)

    @app.get("/readings", summary="Raw readings in a time range, oldest first")
    def readings(
        _: Reader,
        start: datetime,
        end: datetime | None = None,
        device: Devices = None,
        parameter: Parameters = None,
        limit: Annotated[int, Query(ge=1, le=1_000_000)] = 10_000,
        format: Format = "json",
    ) -> Response:
        query = ReadingQuery(
            _utc(start), end and _utc(end), tuple(device or ()), tuple(parameter or ()), limit
        )
        return _readings(store.query(query), format)

    @app.get("/aggregates", summary="Aggregates of ok values per series and window")
    def aggregates(
        _: Reader,
        start: datetime,
        end: datetime,
        every: Annotated[str, Query(description="window: 30s, 15m, 1h, 1d")] = "1h",
        fn: Annotated[list[Aggregate] | None, Query(description="repeat; default mean")] = None,
        device: Devices = None,
        parameter: Parameters = None,
        rollup: Annotated[bool, Query(description="from the hourly rollup")] = False,
        format: Format = "json",
    ) -> Response:
        try:
            query = AggregateQuery(
                _utc(start),
                _utc(end),
                parse_duration(every),
                tuple(fn or (Aggregate.MEAN,)),
                tuple(device or ()),
                tuple(parameter or ()),
            )
            rows = store.aggregate(query, rollup=rollup)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        header = ("window_start", "site", "device", "sensor", "parameter", "unit")
        table = [
            (r.window_start.isoformat(), r.site, r.device, r.sensor, r.parameter, r.unit, *r.values)
            for r in rows
        ]
        columns = (*header, *(f.value for f in query.functions))
        if format == "csv":
            return _table(columns, table)
        return JSONResponse([dict(zip(columns, row, strict=True)) for row in table])

    @app.get(
        "/export",
        summary="Hourly and daily means judged against the limits in force, with VN_AQI",
        response_class=Response,
    )
    def export(
        _: Exporter,
        first: Annotated[date, Query(alias="from", description="first local day")],
        last: Annotated[date | None, Query(alias="to", description="last day, included")] = None,
        kind: Annotated[list[str] | None, Query(description="station kind; repeatable")] = None,
        station: Annotated[list[str] | None, Query(description="device id; repeatable")] = None,
        format: ReportFormat = "csv",
    ) -> Response:
        last = last or first
        if last < first:
            raise HTTPException(422, f"to ({last}) is before from ({first})")
        if (last - first).days >= MAX_EXPORT_DAYS:
            raise HTTPException(
                422, f"at most {MAX_EXPORT_DAYS} days at once; split the period or use the CLI"
            )
        try:
            chosen = select_stations(settings.stations, kind or (), station or ())
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        fmt = ExportFormat(format)
        report = build_report(store, chosen, settings.export, builtin_limits(), first, last)
        name = f"report-{first}-{last}.{fmt}"
        return Response(
            _report_file(report, fmt),
            media_type=MEDIA_TYPES[fmt],
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    if police is not None:
        app.include_router(police_router(police, users, stop or asyncio.Event()))
    return app


def _utc(ts: datetime) -> datetime:
    """A time without a zone is UTC, as on the command line."""
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """The collector owns SIGTERM and SIGINT; it stops the server itself."""
        yield


async def serve_api(
    settings: CollectorConfig,
    store: Store,
    users: Users,
    police: Police | None,
    stop: asyncio.Event,
) -> None:
    if settings.api is None:
        raise ValueError("serve_api needs a config with an api section")
    host, port = settings.api.host, settings.api.port
    app = build_app(store, users, settings, police, stop)
    # A request still running this long after the collector was told to stop is cut.
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=10
    )
    server = _Server(config)
    serving = asyncio.create_task(server.serve())
    log.info("API on http://%s:%d (documentation at /docs)", host, port)
    await stop.wait()
    server.should_exit = True
    await serving
