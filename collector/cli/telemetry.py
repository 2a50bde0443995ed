"""`collector query` and `collector latest`: the stored time series, as a table or CSV."""

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from collector.cli.common import (
    ConfigOption,
    CsvOption,
    DeviceOption,
    ParameterOption,
    ask,
    asked,
    emit,
    number,
    parse_when,
    parse_window,
    store_of,
    when_text,
)
from collector.query import Aggregate, AggregateQuery, LatestQuery, ReadingQuery
from collector.rows import AggregateOut, ReadingOut, columns
from iotruntime.console import fail


def query(
    config: ConfigOption,
    device: DeviceOption = None,
    parameter: ParameterOption = None,
    since: Annotated[str, typer.Option(help="15m, 2h, 7d or an ISO time")] = "1h",
    until: Annotated[str | None, typer.Option(help="end, same forms as --since")] = None,
    every: Annotated[
        str | None, typer.Option(help="aggregate over windows of this length: 15m, 1h, 1d")
    ] = None,
    fn: Annotated[
        list[Aggregate] | None, typer.Option(help="aggregate (repeatable), with --every")
    ] = None,
    rollup: Annotated[
        bool, typer.Option(help="aggregate from the hourly rollup (kept longer than raw data)")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, max=1_000_000)] = 1000,
    csv_out: CsvOption = False,
) -> None:
    """Print stored readings oldest first, or with --every their aggregates per window
    (only readings of quality ok count)."""
    now = datetime.now(UTC)
    start, end = parse_when(since, now), parse_when(until, now) if until else None
    devices_, parameters = tuple(device or ()), tuple(parameter or ())
    if every is None:
        if fn or rollup:
            raise fail(ValueError("--fn and --rollup aggregate: give --every too"))
        reading_query = asked(lambda: ReadingQuery(start, end, devices_, parameters, limit))
        rows = ask(store_of(config), lambda store: store.query(reading_query))
        header = columns(ReadingOut)
        table: list[tuple[str, ...]] = [
            (
                when_text(r.ts, csv_out),
                r.site,
                r.device,
                r.sensor,
                r.parameter,
                number(r.value, csv_out),
                r.unit,
                r.quality,
            )
            for r in rows
        ]
        emit(f"{len(rows)} reading(s)", header, table, csv_out)
        return
    functions = tuple(fn or (Aggregate.MEAN,))
    window = parse_window(every)
    question = asked(
        lambda: AggregateQuery(start, end or now, window, functions, devices_, parameters)
    )
    if rollup and question.window % timedelta(hours=1):
        raise fail(ValueError(f"--rollup answers whole hours: --every {every} is not"))
    windows = ask(store_of(config), lambda store: store.aggregate(question, rollup=rollup))
    header = (*columns(AggregateOut), *functions)
    table = [
        (
            when_text(r.window_start, csv_out),
            r.site,
            r.device,
            r.sensor,
            r.parameter,
            r.unit,
            *(number(v, csv_out) for v in r.values),
        )
        for r in windows[:limit]
    ]
    emit(f"{len(windows)} window(s) of {every}", header, table, csv_out)


def latest(
    config: ConfigOption,
    device: DeviceOption = None,
    parameter: ParameterOption = None,
    csv_out: CsvOption = False,
) -> None:
    """The newest ok value of every series: what each station reads now."""
    question = asked(lambda: LatestQuery(tuple(device or ()), tuple(parameter or ())))
    rows = ask(store_of(config), lambda store: store.latest(question))
    header = tuple(c for c in columns(ReadingOut) if c != "quality")  # all ok
    table = [
        (
            when_text(r.ts, csv_out),
            r.site,
            r.device,
            r.sensor,
            r.parameter,
            number(r.value, csv_out),
            r.unit,
        )
        for r in rows
    ]
    emit(f"{len(rows)} series", header, table, csv_out)
