"""`collector`: run the ingest, and look at what it stored."""

import asyncio
import csv
import logging
import re
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from collector.config import load_collector
from collector.ingest import Ingest
from collector.query import ReadingQuery
from collector.stores.sqlite import SqliteStore
from iotwire.configfile import ConfigError

app = typer.Typer(no_args_is_help=True, help="Operations-center collector for Phu Quoc telemetry.")
console = Console()

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="collector config (YAML)")]
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _fail(exc: Exception) -> typer.Exit:
    console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
    return typer.Exit(2)


def _open_store(config: Path) -> SqliteStore:
    try:
        settings = load_collector(config)
    except ConfigError as exc:
        raise _fail(exc) from None
    return SqliteStore(settings.store.path)


def parse_when(text: str, now: datetime) -> datetime:
    """`90s`, `15m`, `2h`, `7d` ago, or an ISO 8601 time (UTC when it names no zone)."""
    if match := _DURATION.match(text):
        return now - timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2]])
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
    try:
        settings = load_collector(config)
    except ConfigError as exc:
        raise _fail(exc) from None
    store = SqliteStore(settings.store.path)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        ingest = Ingest(settings.broker, settings.ingest, store)
        await ingest.run(stop)
        s = ingest.stats
        logging.info(
            "stopped: %d received, %d stored, %d duplicate, %d invalid",
            s.received,
            s.stored_messages,
            s.duplicates,
            sum(s.invalid.values()),
        )

    try:
        asyncio.run(main())
    finally:
        store.close()


@app.command()
def query(
    config: ConfigOption,
    device: Annotated[list[str] | None, typer.Option(help="device id (repeatable)")] = None,
    parameter: Annotated[list[str] | None, typer.Option(help="parameter (repeatable)")] = None,
    since: Annotated[str, typer.Option(help="15m, 2h, 7d or an ISO time")] = "1h",
    until: Annotated[str | None, typer.Option(help="end, same forms as --since")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1_000_000)] = 1000,
    csv_out: Annotated[
        bool, typer.Option("--csv", help="CSV on stdout instead of a table")
    ] = False,
) -> None:
    """Print stored readings, oldest first."""
    now = datetime.now(UTC)
    store = _open_store(config)
    try:
        rows = store.query(
            ReadingQuery(
                start=parse_when(since, now),
                end=parse_when(until, now) if until else None,
                devices=tuple(device or ()),
                parameters=tuple(parameter or ()),
                limit=limit,
            )
        )
    finally:
        store.close()
    header = ("time", "site", "device", "sensor", "parameter", "value", "unit", "quality")
    if csv_out:
        out = csv.writer(sys.stdout)
        out.writerow(header)
        for r in rows:
            out.writerow(
                (
                    r.ts.isoformat(),
                    r.site,
                    r.device,
                    r.sensor,
                    r.parameter,
                    r.value,
                    r.unit,
                    r.quality,
                )
            )
        return
    table = Table(title=f"{len(rows)} reading(s)")
    for name in header:
        table.add_column(name, no_wrap=name != "unit")
    for r in rows:
        table.add_row(
            r.ts.strftime("%Y-%m-%d %H:%M:%S"),
            r.site,
            r.device,
            r.sensor,
            r.parameter,
            f"{r.value:.4g}",
            r.unit,
            r.quality,
        )
    console.print(table)


@app.command()
def devices(config: ConfigOption) -> None:
    """Each known device: state, last seen, and the message accounting that proves delivery."""
    store = _open_store(config)
    try:
        rows = store.devices()
    finally:
        store.close()
    table = Table(
        "device", "site", "state", "version", "last seen", "messages", "duplicates", "gaps"
    )
    for d in rows:
        seen = d.last_seen.strftime("%Y-%m-%d %H:%M:%S") if d.last_seen else "never"
        table.add_row(
            d.device,
            d.site,
            d.state,
            d.version,
            seen,
            str(d.messages),
            str(d.duplicates),
            str(d.gaps),
        )
    console.print(table)
