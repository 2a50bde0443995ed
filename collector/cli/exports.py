"""`collector export`: the environmental officer's report of judged means, or the Circular
10/2021 station data files, for given days.

The workbook, the HTML report and the terminal's table are in the command's language
(`collector --lang vi export ...`, or the locale), or in the one `--lang` gives after
`export`; the CSV is for machines and the same in every language (collector/exports/table.py),
and so are the station data files, whose format is the authority's."""

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
from collector.exports.table import PARAMETER_COLUMNS, labels, parameter_lines, write_csv
from collector.exports.tt10 import Tt10Writer
from collector.i18n import reports
from collector.query import FIRST_DAY, LAST_DAY
from collector.stores import open_store
from iotruntime.console import console, fail
from iotruntime.i18n import LANGUAGES, UnknownLanguage, day, parse_language, process_language

# The export command speaks the reports' vocabulary: its texts are in their catalog.
_ = reports.gettext
EXPORT_HELP = _(
    "Hourly and daily means of the stations' readings in local days, judged against the "
    "Vietnamese limits in force each day, with VN_AQI for qualified air stations; or the "
    "Circular 10/2021 station data files of those days (--format tt10)."
)


def export(
    config: ConfigOption,
    first: Annotated[datetime, typer.Option("--from", formats=["%Y-%m-%d"], help=_("first day"))],
    last: Annotated[
        datetime | None,
        typer.Option("--to", formats=["%Y-%m-%d"], help=_("last day, included (default: --from)")),
    ] = None,
    kind: Annotated[list[str] | None, typer.Option(help=_("station kind (repeatable)"))] = None,
    station: Annotated[
        list[str] | None, typer.Option(help=_("station device id (repeatable)"))
    ] = None,
    format: Annotated[ExportFormat, typer.Option(help=_("what to write"))] = ExportFormat.CSV,
    out: Annotated[
        Path | None,
        typer.Option(help=_("file to write (a directory for tt10); CSV goes to stdout without it")),
    ] = None,
    lang: Annotated[
        str | None,
        typer.Option(
            "--lang",
            help=_(
                "language of the workbook, the HTML report and this command: {choices} "
                "(default: the command's, from LANG); the CSV is the same in every language"
            ).format(choices=", ".join(LANGUAGES)),
        ),
    ] = None,
) -> None:
    """Hourly and daily means of the stations' readings in local days, judged against the
    Vietnamese limits in force each day, with VN_AQI for qualified air stations; or the
    Circular 10/2021 station data files of those days (--format tt10). The help people
    read is EXPORT_HELP, in their language, given where the command is registered."""
    try:
        language = parse_language(lang) if lang is not None else process_language()
    except UnknownLanguage as exc:
        raise typer.BadParameter(str(exc), param_hint="--lang") from None
    settings = settings_of(config)
    try:
        chosen = select_stations(settings.stations, kind or (), station or ())
    except ValueError as exc:
        raise fail(exc) from None
    period = (first.date(), (last or first).date())
    if period[1] < period[0]:
        raise fail(
            ValueError(
                _("--to {last} is before --from {first}").format(last=period[1], first=period[0])
            )
        )
    for option, given in (("--from", period[0]), ("--to", period[1])):
        if not FIRST_DAY <= given <= LAST_DAY:
            raise fail(
                ValueError(
                    _("{option} {day} is outside {first} to {last}").format(
                        option=option, day=given, first=FIRST_DAY, last=LAST_DAY
                    )
                )
            )
    if format is ExportFormat.TT10:
        _export_tt10(settings, chosen, period, out)
        return
    if out is None and format is not ExportFormat.CSV:
        raise fail(ValueError(_("--format {format} needs --out FILE").format(format=format)))
    writer = _report_writer(format, language)
    limits = limits_of(settings)
    err = Console(stderr=True)
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task(_("reading the store (station-days)"), total=None)

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
    err.print(_judged_table(report, language))
    summary = _(
        "{stations} station(s), local days {first} to {last} ({zone}): {exceedances} "
        "exceedance(s) in {judged} judged mean(s), {not_judged} not judged"
    ).format(
        stations=len(report.stations),
        first=day(period[0], language),
        last=day(period[1], language),
        zone=report.zone.key,
        exceedances=sum(len(s.exceedances()) for s in report.stations),
        judged=sum(s.judged for s in report.stations),
        not_judged=sum(s.not_judged for s in report.stations),
    )
    if out:
        summary += _(", written to {path}").format(path=out)
    err.print(escape(summary), highlight=False)


def _judged_table(report: Report, language: str) -> Table:
    """Per station and parameter, what was judged and why the rest was not: the officer
    sees at the terminal that a parameter with no exceedance may simply have no limit."""
    title = reports.for_language(language).gettext("Judged means, local days {first} to {last}")
    table = Table(
        title=title.format(first=day(report.first, language), last=day(report.last, language))
    )
    for name in labels(("station", *PARAMETER_COLUMNS), language):
        table.add_column(name, overflow="fold")
    for station in report.stations:
        for cells in parameter_lines(station, language):
            table.add_row(station.device, *(escape(str(cell)) for cell in cells))
    return table


def _report_writer(format: ExportFormat, language: str) -> Callable[[Report, Path], None]:
    """Asked before the store is read, so a missing `export` extra costs no waiting."""
    try:
        return report_writer(format, language)
    except ImportError as exc:
        raise fail(
            ValueError(
                _(
                    "--format {format} needs the export extra (pip install '.[export]'): {why}"
                ).format(format=format, why=exc)
            )
        ) from None


def _export_tt10(
    settings: CollectorConfig,
    chosen: dict[str, StationSettings],
    period: tuple[date, date],
    out: Path | None,
) -> None:
    if settings.tt10 is None:
        raise fail(ValueError(_("--format tt10 needs a tt10 section in the collector config")))
    directory = out or settings.tt10.directory
    directory.mkdir(parents=True, exist_ok=True)
    zone = settings.export.zone
    start = day_start(period[0], zone)
    end = day_start(period[1] + timedelta(days=1), zone)
    store = open_store(settings)
    writer = Tt10Writer(store, settings.tt10, chosen, zone)
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(_("writing station data files (intervals)"), total=None)
        files = ask(
            store,
            lambda _: writer.write_range(
                start,
                end,
                directory,
                lambda done, total: progress.update(task, completed=done, total=total),
            ),
        )
    written = _("{count} station data file(s) written to {directory}").format(
        count=len(files), directory=directory
    )
    console.print(escape(written), highlight=False)
