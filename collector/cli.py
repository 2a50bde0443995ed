"""`collector`: run the ingest, and look at what it stored."""

import asyncio
import contextlib
import csv
import json
import logging
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from collector.alerts import audit
from collector.alerts.plates import PlateLog
from collector.alerts.watchlist import Priority, Watchlist, WatchlistError
from collector.compliance.limits import builtin_limits
from collector.compliance.report import Report, build_report, day_start
from collector.config import CollectorConfig, StationSettings, load_collector
from collector.exports import ExportFormat, report_writer, select_stations
from collector.exports.table import write_csv
from collector.exports.tt10 import Tt10Writer
from collector.ingest import Ingest
from collector.maintenance import maintain
from collector.metrics import serve_metrics
from collector.query import (
    Aggregate,
    AggregateQuery,
    LatestQuery,
    ReadingQuery,
    parse_duration,
)
from collector.spool import Spool
from collector.stores import Store, StoreUnavailableError, open_store
from collector.users import Role, UserError, Users
from iotwire.configfile import ConfigError

app = typer.Typer(no_args_is_help=True, help="Operations-center collector for Phu Quoc telemetry.")
console = Console()

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="collector config (YAML)")]
T = TypeVar("T")


def _fail(exc: Exception) -> typer.Exit:
    console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
    return typer.Exit(2)


def _settings(config: Path) -> CollectorConfig:
    try:
        return load_collector(config)
    except ConfigError as exc:
        raise _fail(exc) from None


def _open_store(config: Path) -> Store:
    return open_store(_settings(config))


def _ask(store: Store, question: Callable[[Store], T]) -> T:
    """Run one question against the store, closing it after; an unreachable store is an
    error message, not a traceback."""
    try:
        return question(store)
    except StoreUnavailableError as exc:
        raise _fail(exc) from None
    finally:
        store.close()


def parse_window(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def parse_when(text: str, now: datetime) -> datetime:
    """`90s`, `15m`, `2h`, `7d` ago, or an ISO 8601 time (UTC when it names no zone)."""
    with contextlib.suppress(ValueError):
        return now - parse_duration(text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither a duration like 15m, 2h, 7d nor an ISO 8601 time"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@app.command()
def run(config: ConfigOption, log_level: str = "info") -> None:
    """Subscribe to every device and store what arrives, until stopped."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = _settings(config)
    store = open_store(settings)
    spool = Spool(settings.ingest.spool_path) if settings.ingest.spool_path else None
    watchlist, plates = None, None
    if settings.alerts is not None:
        watchlist = Watchlist(settings.alerts.path)
        plates = PlateLog(watchlist, settings.alerts.window_s)
    ingest = Ingest(settings.broker, settings.ingest, store, spool, plates)
    silent_after = timedelta(seconds=settings.ingest.silent_after_s)
    serve_api = _api_server() if settings.api else None
    users = Users(settings.api.users_path) if settings.api else None
    metrics = (
        serve_metrics(settings.metrics, ingest, store, spool, silent_after)
        if settings.metrics
        else None
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(maintain(store, settings.retention, stop))
            if settings.tt10 is not None:
                writer = Tt10Writer(store, settings.tt10, settings.stations, settings.export.zone)
                tasks.create_task(writer.run(stop))
            if serve_api is not None and users is not None:
                tasks.create_task(serve_api(settings, store, users, stop))
            await ingest.run(stop)
        s = ingest.stats
        logging.info(
            "stopped: %d received, %d stored, %d duplicate, %d invalid, %d spooled",
            s.received,
            s.stored_messages,
            s.duplicates,
            sum(s.invalid.values()),
            s.spooled,
        )

    try:
        asyncio.run(main())
    finally:
        if metrics is not None:
            metrics.shutdown()
        if spool is not None:
            spool.close()
        if watchlist is not None:
            watchlist.close()
        if users is not None:
            users.close()
        store.close()


def _api_server() -> Callable[..., Coroutine[None, None, None]]:
    """FastAPI and uvicorn come with the `api` extra, imported only when the API is on."""
    try:
        from collector.api import serve_api
    except ImportError as exc:
        raise _fail(
            ValueError(f"the api section needs the api extra (pip install '.[api]'): {exc}")
        ) from None
    return serve_api


def _emit(title: str, header: Sequence[str], rows: list[tuple[str, ...]], csv_out: bool) -> None:
    if csv_out:
        out = csv.writer(sys.stdout)
        out.writerow(header)
        out.writerows(rows)
        return
    table = Table(title=title)
    for name in header:
        table.add_column(name, no_wrap=name != "unit")
    for row in rows:
        table.add_row(*map(escape, row))
    console.print(table)


def _number(value: float | None, csv_out: bool) -> str:
    if value is None:
        return ""
    return repr(value) if csv_out else f"{value:.4g}"


def _when(ts: datetime, csv_out: bool) -> str:
    return ts.isoformat() if csv_out else ts.strftime("%Y-%m-%d %H:%M:%S")


DeviceOption = Annotated[list[str] | None, typer.Option(help="device id (repeatable)")]
ParameterOption = Annotated[list[str] | None, typer.Option(help="parameter (repeatable)")]
CsvOption = Annotated[bool, typer.Option("--csv", help="CSV on stdout instead of a table")]


@app.command()
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
            raise _fail(ValueError("--fn and --rollup aggregate: give --every too"))
        rows = _ask(
            _open_store(config),
            lambda store: store.query(
                ReadingQuery(start, end, devices_, parameters, limit),
            ),
        )
        header = ("time", "site", "device", "sensor", "parameter", "value", "unit", "quality")
        table = [
            (
                _when(r.ts, csv_out),
                r.site,
                r.device,
                r.sensor,
                r.parameter,
                _number(r.value, csv_out),
                r.unit,
                r.quality,
            )
            for r in rows
        ]
        _emit(f"{len(rows)} reading(s)", header, table, csv_out)
        return
    functions = tuple(fn or (Aggregate.MEAN,))
    try:
        question = AggregateQuery(
            start, end or now, parse_window(every), functions, devices_, parameters
        )
    except ValueError as exc:
        raise _fail(exc) from None
    windows = _ask(_open_store(config), lambda store: store.aggregate(question, rollup=rollup))
    header = ("window", "site", "device", "sensor", "parameter", "unit", *functions)
    table = [
        (
            _when(r.window_start, csv_out),
            r.site,
            r.device,
            r.sensor,
            r.parameter,
            r.unit,
            *(_number(v, csv_out) for v in r.values),
        )
        for r in windows[:limit]
    ]
    _emit(f"{len(windows)} window(s) of {every}", header, table, csv_out)


@app.command()
def latest(
    config: ConfigOption,
    device: DeviceOption = None,
    parameter: ParameterOption = None,
    csv_out: CsvOption = False,
) -> None:
    """The newest ok value of every series: what each station reads now."""
    rows = _ask(
        _open_store(config),
        lambda store: store.latest(LatestQuery(tuple(device or ()), tuple(parameter or ()))),
    )
    header = ("time", "site", "device", "sensor", "parameter", "value", "unit")
    table = [
        (
            _when(r.ts, csv_out),
            r.site,
            r.device,
            r.sensor,
            r.parameter,
            _number(r.value, csv_out),
            r.unit,
        )
        for r in rows
    ]
    _emit(f"{len(rows)} series", header, table, csv_out)


@app.command()
def devices(config: ConfigOption) -> None:
    """Each known device: state, last seen, and the message accounting that proves delivery."""
    settings = _settings(config)
    rows = _ask(open_store(settings), lambda store: store.devices())
    now, silent_after = datetime.now(UTC), timedelta(seconds=settings.ingest.silent_after_s)
    table = Table(
        "device", "site", "state", "version", "last seen", "messages", "duplicates", "gaps"
    )
    for d in rows:
        seen = d.last_seen.strftime("%Y-%m-%d %H:%M:%S") if d.last_seen else "never"
        table.add_row(
            d.device,
            d.site,
            d.state_at(now, silent_after),
            d.version,
            seen,
            str(d.messages),
            str(d.duplicates),
            str(d.gaps),
        )
    console.print(table)


@app.command()
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
    settings = _settings(config)
    try:
        chosen = select_stations(settings.stations, kind or (), station or ())
    except ValueError as exc:
        raise _fail(exc) from None
    period = (first.date(), (last or first).date())
    if period[1] < period[0]:
        raise _fail(ValueError(f"--to {period[1]} is before --from {period[0]}"))
    if format is ExportFormat.TT10:
        _export_tt10(settings, chosen, period, out)
        return
    if out is None and format is not ExportFormat.CSV:
        raise _fail(ValueError(f"--format {format} needs --out FILE"))
    writer = _report_writer(format)
    err = Console(stderr=True)
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("reading the store (station-days)", total=None)

        def step(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        report = _ask(
            open_store(settings),
            lambda store: build_report(
                store, chosen, settings.export, builtin_limits(), *period, step
            ),
        )
    if out is None:
        write_csv(report, sys.stdout)
    else:
        writer(report, out)
    exceedances = sum(len(s.exceedances()) for s in report.stations)
    err.print(
        f"{len(report.stations)} station(s), {period[0]} to {period[1]}: "
        f"{exceedances} exceedance(s)" + (f", written to {out}" if out else ""),
        highlight=False,
    )


def _report_writer(format: ExportFormat) -> Callable[[Report, Path], None]:
    """Asked before the store is read, so a missing `export` extra costs no waiting."""
    try:
        return report_writer(format)
    except ImportError as exc:
        raise _fail(
            ValueError(f"--format {format} needs the export extra (pip install '.[export]'): {exc}")
        ) from None


def _export_tt10(
    settings: CollectorConfig,
    chosen: dict[str, StationSettings],
    period: tuple[date, date],
    out: Path | None,
) -> None:
    if settings.tt10 is None:
        raise _fail(ValueError("--format tt10 needs a tt10 section in the collector config"))
    directory = out or settings.tt10.directory
    directory.mkdir(parents=True, exist_ok=True)
    zone = settings.export.zone
    start = day_start(period[0], zone)
    end = day_start(period[1] + timedelta(days=1), zone)
    store = open_store(settings)
    writer = Tt10Writer(store, settings.tt10, chosen, zone)
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("writing station data files (intervals)", total=None)
        files = _ask(
            store,
            lambda _: writer.write_range(
                start,
                end,
                directory,
                lambda done, total: progress.update(task, completed=done, total=total),
            ),
        )
    console.print(f"{len(files)} station data file(s) written to {escape(str(directory))}")


watchlist_app = typer.Typer(
    no_args_is_help=True, help="The police watchlist: plates every camera watches for."
)
app.add_typer(watchlist_app, name="watchlist")
ByOption = Annotated[str, typer.Option("--by", help="who makes the change (for the audit log)")]


def _watchlist(config: Path) -> Watchlist:
    settings = _settings(config)
    if settings.alerts is None:
        raise _fail(ValueError(f"{config}: alerts: the config has no alerts section"))
    return Watchlist(settings.alerts.path)


@watchlist_app.command("add")
def watchlist_add(
    config: ConfigOption,
    plate: Annotated[str, typer.Argument(help="as written: 68-B1 234.56, 68A-123.45, ...")],
    reason: Annotated[str, typer.Option(help="why the plate is watched")],
    by: ByOption,
    priority: Annotated[Priority, typer.Option(help="how urgent an alert is")] = Priority.NORMAL,
    expires: Annotated[
        str | None, typer.Option(help="ISO time the entry stops matching (UTC if no zone)")
    ] = None,
) -> None:
    """Add a plate to the watchlist, or update its entry."""
    watchlist = _watchlist(config)
    try:
        until = parse_when(expires, datetime.now(UTC)) if expires else None
        entry, new = watchlist.add(plate, reason, by, priority, until)
    except WatchlistError as exc:
        raise _fail(exc) from None
    finally:
        watchlist.close()
    console.print(f"{'added' if new else 'updated'} {entry.display} ({entry.plate})")


@watchlist_app.command("remove")
def watchlist_remove(
    config: ConfigOption,
    plate: Annotated[str, typer.Argument(help="the plate, in any written form")],
    by: ByOption,
) -> None:
    """Take a plate off the watchlist."""
    watchlist = _watchlist(config)
    try:
        entry = watchlist.remove(plate, by)
    except WatchlistError as exc:
        raise _fail(exc) from None
    finally:
        watchlist.close()
    console.print(f"removed {entry.display} ({entry.plate})")


@watchlist_app.command("list")
def watchlist_list(config: ConfigOption, csv_out: CsvOption = False) -> None:
    """Every entry, with whether it still matches."""
    watchlist = _watchlist(config)
    entries = watchlist.entries()
    watchlist.close()
    now = datetime.now(UTC)
    header = ("plate", "display", "reason", "priority", "expires", "active", "added by", "added")
    rows = [
        (
            e.plate,
            e.display,
            e.reason,
            e.priority.value,
            e.expires.isoformat() if e.expires else "",
            "yes" if e.active(now) else "no",
            e.added_by,
            _when(e.added_at, csv_out),
        )
        for e in entries
    ]
    _emit(f"{len(rows)} watchlist entr{'y' if len(rows) == 1 else 'ies'}", header, rows, csv_out)


@watchlist_app.command("import")
def watchlist_import(
    config: ConfigOption,
    file: Annotated[Path, typer.Argument(help="CSV: plate,reason[,priority][,expires]")],
    by: ByOption,
) -> None:
    """Add or update many plates; a bad row is reported by line and the rest imported."""
    watchlist = _watchlist(config)
    try:
        with file.open(encoding="utf-8", newline="") as source:
            result = watchlist.import_csv(source, by)
    except (OSError, WatchlistError) as exc:
        raise _fail(exc) from None
    finally:
        watchlist.close()
    for line, message in result.errors:
        console.print(f"[red]line {line}:[/red] {escape(message)}", highlight=False)
    console.print(f"{result.added} added, {result.updated} updated, {len(result.errors)} rejected")
    if result.errors:
        raise typer.Exit(1)


@app.command("audit")
def audit_log(
    config: ConfigOption,
    since: Annotated[str | None, typer.Option(help="15m, 2h, 7d or an ISO time")] = None,
    action: Annotated[str | None, typer.Option(help="e.g. watchlist.add")] = None,
    csv_out: CsvOption = False,
) -> None:
    """The police data's audit trail, oldest first."""
    watchlist = _watchlist(config)
    start = parse_when(since, datetime.now(UTC)) if since else None
    found = audit.records(watchlist.db, since=start, action=action)
    watchlist.close()
    if csv_out:
        audit.write_csv(found, sys.stdout)
        return
    rows = [
        (_when(r.at, False), r.actor, r.action, r.subject, json.dumps(r.detail, ensure_ascii=False))
        for r in found
    ]
    _emit(
        f"{len(rows)} audit record(s)", ("at", "actor", "action", "subject", "detail"), rows, False
    )


users_app = typer.Typer(no_args_is_help=True, help="API users: one bearer token each, with a role.")
app.add_typer(users_app, name="users")


def _users(config: Path) -> Users:
    settings = _settings(config)
    if settings.api is None:
        raise _fail(ValueError(f"{config}: api: the config has no api section"))
    return Users(settings.api.users_path)


@users_app.command("add")
def users_add(
    config: ConfigOption,
    name: Annotated[str, typer.Argument(help="who the token is for")],
    role: Annotated[Role, typer.Option(help="what the token may read")],
) -> None:
    """Add a user and print its token, once: only a hash of it is kept."""
    users = _users(config)
    try:
        token = users.add(name, role)
    except UserError as exc:
        raise _fail(exc) from None
    finally:
        users.close()
    console.print(f"token for {escape(name)} ({role}), shown this once:")
    print(token)


@users_app.command("list")
def users_list(config: ConfigOption) -> None:
    """Every user, its role, and whether its token still works."""
    users = _users(config)
    table = Table("name", "role", "created", "revoked")
    for user in users.all():
        table.add_row(user.name, user.role, user.created[:19], (user.revoked or "")[:19])
    users.close()
    console.print(table)


@users_app.command("revoke")
def users_revoke(
    config: ConfigOption, name: Annotated[str, typer.Argument(help="the user to revoke")]
) -> None:
    """Stop a user's token from working, at once."""
    users = _users(config)
    try:
        users.revoke(name)
    except UserError as exc:
        raise _fail(exc) from None
    finally:
        users.close()
    console.print(f"revoked {escape(name)}")
