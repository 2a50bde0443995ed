"""`collector export`: the environmental officer's report of judged means, or the Circular
10/2021 station data files, for given days."""

import sys
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from collector.cli.common import ConfigOption, ask, settings_of
from collector.cli.limits import limits_of
from collector.compliance.report import Report, build_report, day_start
from collector.config import CollectorConfig, StationSettings
from collector.exports import ExportFormat, report_writer, select_stations
from collector.exports.table import PARAMETER_COLUMNS, parameter_lines, write_csv
from collector.exports.tt10 import Tt10Writer
from collector.query import FIRST_DAY, LAST_DAY
from collector.stores import open_store
from iotruntime.console import console, fail


def export(
    config: ConfigOption,
    first: Annotated[datetime, typer.Option("--from", formats=["%Y-%m-%d"], help="first day")],
    last: Annotated[
        datetime | None,
        typer.Option("--to", formats=["%Y-%m-%d"], help="last day, included (default: --from)"),
    ] = None,
    kind: Annotated[list[str] | None, typer.Option(help="station kind (repeatable)")] = None,
    station: Annotated[
        list[str] | None, typer.Option(help="station device id (repeatable)")
    ] = None,
    format: Annotated[ExportFormat, typer.Option(help="what to write")] = ExportFormat.CSV,
    out: Annotated[
        Path | None,
        typer.Option(help="file to write (a directory for tt10); CSV goes to stdout without it"),
    ] = None,
) -> None:
    """Hourly and daily means of the stations' readings in local days, judged against the
    Vietnamese limits in force each day, with VN_AQI for qualified air stations; or the
    Circular 10/2021 station data files of those days (--format tt10)."""
    settings = settings_of(config)
    try:
        chosen = select_stations(settings.stations, kind or (), station or ())
    except ValueError as exc:
        raise fail(exc) from None
    period = (first.date(), (last or first).date())
    if period[1] < period[0]:
        raise fail(ValueError(f"--to {period[1]} is before --from {period[0]}"))
    for option, day in (("--from", period[0]), ("--to", period[1])):
        if not FIRST_DAY <= day <= LAST_DAY:
            raise fail(ValueError(f"{option} {day} is outside {FIRST_DAY} to {LAST_DAY}"))
    if format is ExportFormat.TT10:
        _export_tt10(settings, chosen, period, out)
        return
    if out is None and format is not ExportFormat.CSV:
        raise fail(ValueError(f"--format {format} needs --out FILE"))
    writer = _report_writer(format)
    limits = limits_of(settings)
    err = Console(stderr=True)
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("reading the store (station-days)", total=None)

        def step(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        report = ask(
            open_store(settings),
            lambda store: build_report(store, chosen, settings.export, limits, *period, step),
        )
    if out is None:
        write_csv(report, sys.stdout)
    else:
        writer(report, out)
    err.print(_judged_table(report))
    exceedances = sum(len(s.exceedances()) for s in report.stations)
    judged = sum(s.judged for s in report.stations)
    not_judged = sum(s.not_judged for s in report.stations)
    err.print(
        f"{len(report.stations)} station(s), local days {period[0]} to {period[1]} "
        f"({report.zone.key}): {exceedances} exceedance(s) in {judged} judged mean(s), "
        f"{not_judged} not judged" + (f", written to {out}" if out else ""),
        highlight=False,
    )


def _judged_table(report: Report) -> Table:
    """Per station and parameter, what was judged and why the rest was not: the officer
    sees at the terminal that a parameter with no exceedance may simply have no limit."""
    table = Table(title=f"Judged means, local days {report.first} to {report.last}")
    for name in ("station", *PARAMETER_COLUMNS):
        table.add_column(name, overflow="fold")
    for station in report.stations:
        for cells in parameter_lines(station):
            table.add_row(station.device, *(escape(str(cell)) for cell in cells))
    return table


def _report_writer(format: ExportFormat) -> Callable[[Report, Path], None]:
    """Asked before the store is read, so a missing `export` extra costs no waiting."""
    try:
        return report_writer(format)
    except ImportError as exc:
        raise fail(
            ValueError(f"--format {format} needs the export extra (pip install '.[export]'): {exc}")
        ) from None


def _export_tt10(
    settings: CollectorConfig,
    chosen: dict[str, StationSettings],
    period: tuple[date, date],
    out: Path | None,
) -> None:
    if settings.tt10 is None:
        raise fail(ValueError("--format tt10 needs a tt10 section in the collector config"))
    directory = out or settings.tt10.directory
    directory.mkdir(parents=True, exist_ok=True)
    zone = settings.export.zone
    start = day_start(period[0], zone)
    end = day_start(period[1] + timedelta(days=1), zone)
    store = open_store(settings)
    writer = Tt10Writer(store, settings.tt10, chosen, zone)
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("writing station data files (intervals)", total=None)
        files = ask(
            store,
            lambda _: writer.write_range(
                start,
                end,
                directory,
                lambda done, total: progress.update(task, completed=done, total=total),
            ),
        )
    console.print(f"{len(files)} station data file(s) written to {escape(str(directory))}")
