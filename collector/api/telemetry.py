"""Device state, latest values and time series, for ops, env and technicians: a thin
layer over the store's query model, answering what `collector query`, `latest` and
`devices` answer, with the same column names (collector/rows.py). Store calls block, so
the endpoints are plain functions FastAPI runs in its thread pool. A question the query
model refuses (a bad filter, time or window) is 422 before the store is asked
(collector/api/app.py)."""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response

from collector.api.auth import TelemetryReader
from collector.api.context import Context
from collector.api.tables import answer
from collector.api.texts import Refusal
from collector.query import (
    Aggregate,
    AggregateQuery,
    LatestQuery,
    ReadingQuery,
    parse_duration,
)
from collector.rows import AggregateOut, DeviceOut, ReadingOut, row_of
from iotruntime.i18n import N_

router = APIRouter(tags=["telemetry"])
Format = Literal["json", "csv"]
Devices = Annotated[list[str] | None, Query(description="device id; repeat for several")]
Parameters = Annotated[list[str] | None, Query(description="parameter; repeat for several")]


def utc(ts: datetime) -> datetime:
    """A time without a zone is UTC, as on the command line."""
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


@router.get(
    "/devices",
    summary="Each device's state, last seen, and delivery accounting",
    response_model=list[DeviceOut],
)
def devices(_: TelemetryReader, ctx: Context) -> Response:
    now = datetime.now(UTC)
    silent_after = timedelta(seconds=ctx.settings.ingest.silent_after_s)
    rows = [row_of(DeviceOut, d, state=d.state_at(now, silent_after)) for d in ctx.store.devices()]
    return answer(rows, DeviceOut, "json")


@router.get(
    "/latest", summary="The newest ok value of every series", response_model=list[ReadingOut]
)
def latest(
    _: TelemetryReader,
    ctx: Context,
    device: Devices = None,
    parameter: Parameters = None,
    format: Format = "json",
) -> Response:
    rows = ctx.store.latest(LatestQuery(tuple(device or ()), tuple(parameter or ())))
    return answer([row_of(ReadingOut, r) for r in rows], ReadingOut, format)


@router.get(
    "/readings",
    summary="Raw readings in a time range, oldest first",
    response_model=list[ReadingOut],
)
def readings(
    _: TelemetryReader,
    ctx: Context,
    start: datetime,
    end: datetime | None = None,
    device: Devices = None,
    parameter: Parameters = None,
    limit: Annotated[int, Query(ge=1, le=1_000_000)] = 10_000,
    format: Format = "json",
) -> Response:
    query = ReadingQuery(
        utc(start), end and utc(end), tuple(device or ()), tuple(parameter or ()), limit
    )
    return answer([row_of(ReadingOut, r) for r in ctx.store.query(query)], ReadingOut, format)


@router.get(
    "/aggregates",
    summary="Aggregates of ok values per series and window",
    response_model=list[AggregateOut],
)
def aggregates(
    _: TelemetryReader,
    ctx: Context,
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
        window = parse_duration(every)
    except ValueError as exc:
        raise Refusal(422, N_("every: {why}"), why=exc) from None
    query = AggregateQuery(
        utc(start),
        utc(end),
        window,
        tuple(fn or (Aggregate.MEAN,)),
        tuple(device or ()),
        tuple(parameter or ()),
    )
    try:
        rows = ctx.store.aggregate(query, rollup=rollup)
    except ValueError as exc:  # the hourly rollup asked for less than whole hours
        raise HTTPException(422, str(exc)) from None
    functions = tuple(f.value for f in query.functions)
    return answer([AggregateOut.of(r, functions) for r in rows], AggregateOut, format, functions)
