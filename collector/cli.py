"""`collector`: run the ingest, and look at what it stored."""

import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from collector.alerts.database import PoliceDbError
from collector.alerts.retention import purge_periodically
from collector.alerts.service import Police, open_police
from collector.cli_common import (
    ConfigOption,
    CsvOption,
    DeviceOption,
    ParameterOption,
    ask,
    console,
    emit,
    fail,
    number,
    parse_when,
    parse_window,
    settings_of,
    store_of,
    when_text,
)
from collector.commit_process import CommitProcess, CommitProcessError
from collector.committer import Committer
from collector.compliance.limits import builtin_limits
from collector.compliance.report import Report, build_report, day_start
from collector.config import AlertSettings, CollectorConfig, StationSettings
from collector.exports import ExportFormat, report_writer, select_stations
from collector.exports.table import write_csv
from collector.exports.tt10 import Tt10Writer
from collector.fleet_cli import broker_config, command, devices_app
from collector.ingest import Ingest
from collector.maintenance import maintain
from collector.metrics import serve_metrics
from collector.police_cli import alerts_app, audit_log, watchlist_app
from collector.query import Aggregate, AggregateQuery, LatestQuery, ReadingQuery
from collector.registry import Registry
from collector.spool import Spool
from collector.stores import open_store
from collector.users import Role, UserError, Users
from iotwire.systemd import supervise

app = typer.Typer(no_args_is_help=True, help="Operations-center collector for Phu Quoc telemetry.")
app.add_typer(watchlist_app, name="watchlist")
app.add_typer(alerts_app, name="alerts")
app.command("audit")(audit_log)
app.add_typer(devices_app, name="devices")
app.command("broker-config")(broker_config)
app.command("command")(command)


def _open_police(settings: AlertSettings, registry: Registry | None) -> Police:
    """The police database and the webhook secrets, or one line saying which is wrong."""
    try:
        return open_police(settings, registry)
    except (PoliceDbError, OSError) as exc:
        raise fail(exc) from None


def _commit_process(config: Path, log_level: str) -> CommitProcess:
    try:
        return CommitProcess(config, log_level)
    except CommitProcessError as exc:
        raise fail(exc) from None


@app.command()
def run(config: ConfigOption, log_level: str = "info") -> None:
    """Subscribe to every device and store what arrives, until stopped."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = settings_of(config)
    store = open_store(settings)
    spool = Spool(settings.ingest.spool_path) if settings.ingest.spool_path else None
    registry = Registry(settings.registry.path) if settings.registry else None
    police = _open_police(settings.alerts, registry) if settings.alerts else None
    committer = (
        _commit_process(config, log_level)
        if settings.ingest.commit_process
        else Committer(store, settings.broker.topic_prefix)
    )
    ingest = Ingest(settings.broker, settings.ingest, committer, spool, police)
    silent_after = timedelta(seconds=settings.ingest.silent_after_s)
    serve_api = _api_server() if settings.api else None
    users = Users(settings.api.users_path) if settings.api else None
    metrics = (
        serve_metrics(settings.metrics, ingest, store, spool, silent_after, police)
        if settings.metrics
        else None
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(supervise(stop))
            tasks.create_task(maintain(store, settings.retention, stop))
            if settings.tt10 is not None:
                writer = Tt10Writer(store, settings.tt10, settings.stations, settings.export.zone)
                tasks.create_task(writer.run(stop))
            if police is not None:
                alerts = police.settings
                tasks.create_task(
                    purge_periodically(
                        police.db, alerts.reads_days, alerts.alerts_days, alerts.purge_every_s, stop
                    )
                )
                for webhook in police.webhooks:
                    tasks.create_task(webhook.run(stop))
            if serve_api is not None and users is not None:
                tasks.create_task(serve_api(settings, store, users, police, stop))
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
        if isinstance(committer, CommitProcess):
            committer.close()
        if metrics is not None:
            metrics.shutdown()
        if spool is not None:
            spool.close()
        if police is not None:
            police.close()
        if registry is not None:
            registry.close()
        if users is not None:
            users.close()
        store.close()


def _api_server() -> Callable[..., Coroutine[None, None, None]]:
    """FastAPI and uvicorn come with the `api` extra, imported only when the API is on."""
    try:
        from collector.api import serve_api
    except ImportError as exc:
        raise fail(
            ValueError(f"the api section needs the api extra (pip install '.[api]'): {exc}")
        ) from None
    return serve_api


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
            raise fail(ValueError("--fn and --rollup aggregate: give --every too"))
        rows = ask(
            store_of(config),
            lambda store: store.query(
                ReadingQuery(start, end, devices_, parameters, limit),
            ),
        )
        header = ("time", "site", "device", "sensor", "parameter", "value", "unit", "quality")
        table = [
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
    try:
        question = AggregateQuery(
            start, end or now, parse_window(every), functions, devices_, parameters
        )
    except ValueError as exc:
        raise fail(exc) from None
    windows = ask(store_of(config), lambda store: store.aggregate(question, rollup=rollup))
    header = ("window", "site", "device", "sensor", "parameter", "unit", *functions)
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


@app.command()
def latest(
    config: ConfigOption,
    device: DeviceOption = None,
    parameter: ParameterOption = None,
    csv_out: CsvOption = False,
) -> None:
    """The newest ok value of every series: what each station reads now."""
    rows = ask(
        store_of(config),
        lambda store: store.latest(LatestQuery(tuple(device or ()), tuple(parameter or ()))),
    )
    header = ("time", "site", "device", "sensor", "parameter", "value", "unit")
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
    settings = settings_of(config)
    try:
        chosen = select_stations(settings.stations, kind or (), station or ())
    except ValueError as exc:
        raise fail(exc) from None
    period = (first.date(), (last or first).date())
    if period[1] < period[0]:
        raise fail(ValueError(f"--to {period[1]} is before --from {period[0]}"))
    if format is ExportFormat.TT10:
        _export_tt10(settings, chosen, period, out)
        return
    if out is None and format is not ExportFormat.CSV:
        raise fail(ValueError(f"--format {format} needs --out FILE"))
    writer = _report_writer(format)
    err = Console(stderr=True)
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("reading the store (station-days)", total=None)

        def step(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        report = ask(
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


users_app = typer.Typer(no_args_is_help=True, help="API users: one bearer token each, with a role.")
app.add_typer(users_app, name="users")


def _users(config: Path) -> Users:
    settings = settings_of(config)
    if settings.api is None:
        raise fail(ValueError(f"{config}: api: the config has no api section"))
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
        raise fail(exc) from None
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
        raise fail(exc) from None
    finally:
        users.close()
    console.print(f"revoked {escape(name)}")
