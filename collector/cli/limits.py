"""`collector limits`: what the exports judge by, for the environmental officer who
completes the built-in table with a site limits file and must see what is in force on a
day, and which file each value came from, before a report relies on it."""

from datetime import date, datetime
from typing import Annotated, get_args

import typer
from rich.markup import escape

from collector.cli.common import ConfigOption, settings_of
from collector.compliance.limits import Limit, LimitTable, configured_limits
from collector.config import CollectorConfig, StationKind
from collector.i18n import _
from iotruntime.configfile import ConfigError
from iotruntime.console import CsvOption, JsonOption, Output, console, emit, fail
from iotruntime.i18n import day as written_day
from iotruntime.i18n import process_language

limits_app = typer.Typer(
    no_args_is_help=True, help=_("The limits the compliance exports judge by.")
)

KINDS = get_args(StationKind)
BUILT_IN = "built-in"
HEADER = (
    "parameter",
    "averaging",
    "limit",
    "unit",
    "column/zone",
    "regulation",
    "clause",
    "from",
    "until",
    "applies to",
    "file",
    "source",
)
# The table on a terminal leaves the sources, long prose, to lines under it.
TABLE_WIDTH = len(HEADER) - 1


def _labels() -> tuple[str, ...]:
    """The titles of the table's columns, in HEADER's order (without the source)."""
    return (
        _("parameter"),
        _("averaging"),
        _("limit"),
        _("unit"),
        _("column/zone"),
        _("regulation"),
        _("clause"),
        _("from"),
        _("until"),
        _("applies to"),
        _("file"),
    )


def limits_of(settings: CollectorConfig) -> LimitTable:
    """The configured table; a broken site limits file is the one-line config error."""
    try:
        return configured_limits(settings)
    except ConfigError as exc:
        raise fail(exc) from None


def _bound(limit: Limit) -> str:
    if limit.min is not None and limit.max is not None:
        return f"{limit.min:g}-{limit.max:g}"
    if limit.max is not None:
        return f"≤ {limit.max:g}" + (" × K" if limit.k_factor else "")
    return f"≥ {limit.min:g}"


def _row(table: LimitTable, limit: Limit, existing_only: bool, machine: bool) -> tuple[str, ...]:
    regulation = table.regulation(limit)
    starts = limit.applies_from or regulation.applies_from
    ends = limit.applies_until or regulation.ends(existing_only)
    site_file = table.file_of(limit)
    built_in = BUILT_IN if machine else _("built-in")
    return (
        limit.parameter,
        limit.averaging,
        _bound(limit),
        limit.unit,
        limit.column or limit.zone or "",
        limit.regulation,
        limit.clause,
        _day_text(starts, machine),
        _day_text(ends, machine),
        _applies_to(existing_only, machine),
        str(site_file) if site_file else built_in,
        limit.source or regulation.source,
    )


def _day_text(value: date | None, machine: bool) -> str:
    """A day as its reader writes it: ISO for programs, dd/mm/yyyy for a Vietnamese reader."""
    if value is None:
        return ""
    return str(value) if machine else written_day(value, process_language())


def _applies_to(existing_only: bool, machine: bool) -> str:
    if machine:
        return "existing facilities" if existing_only else "all"
    return _("existing facilities") if existing_only else _("all")


@limits_app.command(
    "show",
    help=_(
        "The limits in force for a station kind on a day, with the regulation, the days it"
        " applies, its source and the file it came from (built-in or the site limits file)."
        " Limits kept only for facilities approved before a successor regulation, by its"
        " transition rule, say so."
    ),
)
def limits_show(
    config: ConfigOption,
    kind: Annotated[
        str, typer.Option(help=_("station kind: {kinds}").format(kinds=", ".join(KINDS)))
    ],
    day: Annotated[
        datetime | None,
        typer.Option("--date", formats=["%Y-%m-%d"], help=_("the day (default: today, local)")),
    ] = None,
    csv_out: CsvOption = False,
    json_out: JsonOption = False,
) -> None:
    out = Output.of(csv_out, json_out)
    if kind not in KINDS:
        raise typer.BadParameter(
            _("{kind} is not one of {kinds}").format(kind=repr(kind), kinds=", ".join(KINDS)),
            param_hint="--kind",
        )
    settings = settings_of(config)
    on: date = day.date() if day else datetime.now(settings.export.zone).date()
    table = limits_of(settings)
    everyone = table.in_force(kind, None, on, existing_facility=False)
    existing = [x for x in table.in_force(kind, None, on) if x not in everyone]
    rows = [_row(table, x, False, out.machine) for x in everyone]
    rows += [_row(table, x, True, out.machine) for x in existing]
    if settings.site_limits:
        files = _("built-in table and {path}").format(path=settings.site_limits)
    else:
        files = _("built-in table")
    shown = written_day(on, process_language())
    title = _("{kind} limits in force on {day} ({files})").format(kind=kind, day=shown, files=files)
    if out.machine:
        emit(title, HEADER, rows, out)
        return
    emit(title, HEADER[:TABLE_WIDTH], [r[:TABLE_WIDTH] for r in rows], out, labels=_labels())
    if not rows:
        console.print(
            _("no {kind} limit is in force on {day}").format(kind=kind, day=shown), highlight=False
        )
    sources = (
        f"{x.regulation}, {x.clause}: {x.source or table.regulation(x).source}"
        for x in everyone + existing
    )
    for source in dict.fromkeys(sources):
        console.print(_("source, {source}").format(source=escape(source)), highlight=False)
    for regulation in {table.regulation(x).id: table.regulation(x) for x in existing}.values():
        console.print(
            _("existing facilities, {regulation}: {transition}").format(
                regulation=escape(regulation.id), transition=escape(regulation.transition)
            ),
            highlight=False,
        )
