"""`collector query` and `collector latest`: the stored time series, as a table or CSV.

A table shows times in the site's zone (`export.timezone`), named in the column header,
as the officer and the technicians read their clocks; CSV keeps ISO 8601 in UTC with its
offset, for machines.
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from collector.cli.common import (
    ConfigOption,
    DeviceOption,
    ParameterOption,
    ask,
    asked,
    labels_of,
    number,
    parse_when,
    parse_window,
    settings_of,
    when_text,
)
from collector.i18n import _
from collector.query import Aggregate, AggregateQuery, LatestQuery, ReadingQuery, ReadingRow
from collector.rows import AggregateOut, ReadingOut, columns
from collector.stores import Store, open_store
from iotruntime.console import CsvOption, JsonOption, Output, emit, fail


def _site(config: Path) -> tuple[Store, ZoneInfo]:
    settings = settings_of(config)
    return open_store(settings), settings.export.zone


def _when(ts: datetime, zone: ZoneInfo, csv_out: bool) -> str:
    return when_text(ts if csv_out else ts.astimezone(zone), csv_out)


def _labels(names: Sequence[str], zone: ZoneInfo) -> list[str]:
    """The columns' titles in a table, where the time column (the first) names the zone
    its times are in."""
    first, *rest = labels_of(names)
    return [f"{first} ({zone.key})", *rest]


QUERY_HELP = _(
    "Print stored readings oldest first, or with --every their aggregates per window"
    " (only readings of quality ok count)."
)


def query(
    config: ConfigOption,
    device: DeviceOption = None,
    parameter: ParameterOption = None,
    since: Annotated[
        str,
        typer.Option(help=_("15m, 2h, 7d ago, or an ISO time (UTC unless it carries an offset)")),
    ] = "1h",
    until: Annotated[str | None, typer.Option(help=_("end, same forms as --since"))] = None,
    every: Annotated[
        str | None, typer.Option(help=_("aggregate over windows of this length: 15m, 1h, 1d"))
    ] = None,
    fn: Annotated[
        list[Aggregate] | None, typer.Option(help=_("aggregate (repeatable), with --every"))
    ] = None,
    rollup: Annotated[
        bool, typer.Option(help=_("aggregate from the hourly rollup (kept longer than raw data)"))
    ] = False,
    limit: Annotated[
        int, typer.Option(min=1, max=1_000_000, help=_("at most this many rows"))
    ] = 1000,
    csv_out: CsvOption = False,
    json_out: JsonOption = False,
) -> None:
    out = Output.of(csv_out, json_out)
    now = datetime.now(UTC)
    start, end = parse_when(since, now), parse_when(until, now) if until else None
    devices_, parameters = tuple(device or ()), tuple(parameter or ())
    if every is None:
        if fn or rollup:
            raise fail(ValueError(_("--fn and --rollup aggregate: give --every too")))
        reading_query = asked(lambda: ReadingQuery(start, end, devices_, parameters, limit))
        store, zone = _site(config)
        rows = ask(store, lambda store: store.query(reading_query))
        header = columns(ReadingOut)
        table = [_reading(r, zone, out.machine) for r in rows]
        title = _("{count} reading(s)").format(count=len(rows))
        emit(title, header, table, out, labels=_labels(header, zone))
        return
    functions = tuple(fn or (Aggregate.MEAN,))
    window = parse_window(every)
    question = asked(
        lambda: AggregateQuery(start, end or now, window, functions, devices_, parameters)
    )
    if rollup and question.window % timedelta(hours=1):
        raise fail(
            ValueError(
                _("--rollup answers whole hours: --every {every} is not").format(every=every)
            )
        )
    store, zone = _site(config)
    windows = ask(store, lambda store: store.aggregate(question, rollup=rollup))
    header = (*columns(AggregateOut), *functions)
    table = [
        (
            _when(r.window_start, zone, out.machine),
            r.site,
            r.device,
            r.sensor,
            r.parameter,
            r.unit,
            *(number(v, out.machine) for v in r.values),
        )
        for r in windows[:limit]
    ]
    title = _("{count} window(s) of {every}").format(count=len(windows), every=every)
    emit(title, header, table, out, labels=_labels(header, zone))


LATEST_HELP = _("The newest ok value of every series: what each station reads now.")


def latest(
    config: ConfigOption,
    device: DeviceOption = None,
    parameter: ParameterOption = None,
    csv_out: CsvOption = False,
    json_out: JsonOption = False,
) -> None:
    out = Output.of(csv_out, json_out)
    question = asked(lambda: LatestQuery(tuple(device or ()), tuple(parameter or ())))
    store, zone = _site(config)
    rows = ask(store, lambda store: store.latest(question))
    header = [c for c in columns(ReadingOut) if c != "quality"]  # all ok
    table = [_reading(r, zone, out.machine)[:-1] for r in rows]  # without the quality
    title = _("{count} series").format(count=len(rows))
    emit(title, header, table, out, labels=_labels(header, zone))


def _reading(r: ReadingRow, zone: ZoneInfo, csv_out: bool) -> tuple[str, ...]:
    """A reading's cells, in the columns of ReadingOut."""
    return (
        _when(r.ts, zone, csv_out),
        r.site,
        r.device,
        r.sensor,
        r.parameter,
        number(r.value, csv_out),
        r.unit,
        r.quality,
    )
