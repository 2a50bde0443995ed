"""`collector devices`, `broker-config` and `command`: the operations center's side of
the fleet of boxes: their state, their registration, the broker that admits them, and
commands to them."""

import asyncio
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import aiomqtt
import typer
from rich.markup import escape
from rich.table import Table

from collector.cli.common import ConfigOption, ask, settings_of
from collector.config import CollectorConfig
from collector.fleet.broker_config import BrokerLayout, BrokerTls, write_broker_config
from collector.fleet.commands import NoAnswerError, send_command
from collector.fleet.registry import Registry
from collector.rows import DeviceOut, columns
from collector.stores import open_store
from iotruntime.configfile import ConfigError
from iotruntime.console import console, fail

devices_app = typer.Typer(
    invoke_without_command=True,
    help="Devices: their state and accounting (no subcommand), and the registry of boxes.",
)


@devices_app.callback()
def devices(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="collector config (YAML)")
    ] = None,
) -> None:
    """Each known device: state, last seen, and the message accounting that proves delivery,
    with its name from the registry."""
    if ctx.invoked_subcommand is not None:
        return
    if config is None:
        raise fail(ValueError("collector devices needs --config"))
    settings = settings_of(config)
    rows = ask(open_store(settings), lambda store: store.devices())
    names: dict[str, str] = {}
    if settings.registry is not None:
        registry = Registry(settings.registry.path)
        names = {d.device: d.name for d in registry.all()}
        registry.close()
    now, silent_after = datetime.now(UTC), timedelta(seconds=settings.ingest.silent_after_s)
    device, *rest = columns(DeviceOut)
    table = Table(device, "name", *rest)
    for d in rows:
        seen = d.last_seen.strftime("%Y-%m-%d %H:%M:%S") if d.last_seen else "never"
        table.add_row(
            d.device,
            escape(names.get(d.device, "")),
            d.site,
            d.state_at(now, silent_after),
            d.version,
            seen,
            str(d.messages),
            str(d.duplicates),
            str(d.gaps),
        )
    console.print(table)


@devices_app.command("import")
def devices_import(
    config: ConfigOption,
    bundles: Annotated[
        list[Path], typer.Argument(help="registration bundles from edge-agent provision")
    ],
) -> None:
    """Register provisioned boxes; a bad bundle is reported and the others imported."""
    settings = settings_of(config)
    if settings.registry is None:
        raise fail(ValueError(f"{config}: registry: the config has no registry section"))
    registry = Registry(settings.registry.path)
    failed = 0
    try:
        for path in bundles:
            try:
                entry, new = registry.import_file(path)
            except ConfigError as exc:
                console.print(f"[red]rejected:[/red] {escape(str(exc))}", highlight=False)
                failed += 1
                continue
            where = f" at {entry.location.lat}, {entry.location.lon}" if entry.location else ""
            verb = "registered" if new else "updated"
            console.print(f"{verb} {entry.device} ({escape(entry.name)}, {entry.kind}){where}")
    finally:
        registry.close()
    if failed:
        raise typer.Exit(1)


def broker_config(
    config: ConfigOption,
    out: Annotated[Path, typer.Option(help="folder for mosquitto.conf, passwords and acl")],
    ca: Annotated[Path, typer.Option(help="site CA certificate, as on the broker's host")],
    cert: Annotated[Path, typer.Option(help="the broker's certificate")],
    key: Annotated[Path, typer.Option(help="the broker's key")],
    port: Annotated[int, typer.Option(min=1, max=65535, help="TLS port, passwords")] = 8883,
    cert_port: Annotated[
        int, typer.Option(min=1, max=65535, help="TLS port for client certificates")
    ] = 8884,
    persistence: Annotated[Path, typer.Option(help="the broker's data folder")] = Path(
        "/var/lib/mosquitto"
    ),
    collector_user: Annotated[str, typer.Option(help="the collector's broker user")] = "collector",
    console_user: Annotated[
        list[str] | None, typer.Option(help="a console that reads alerts (repeatable)")
    ] = None,
) -> None:
    """Write the broker's configuration from the device registry: TLS listeners, the
    password file, the ACL confining each device to its own topics, and persistence."""
    settings = settings_of(config)
    if settings.registry is None:
        raise fail(ValueError(f"{config}: registry: the config has no registry section"))
    registry = Registry(settings.registry.path)
    devices = registry.all()
    registry.close()
    layout = BrokerLayout(
        settings.broker.topic_prefix,
        port,
        cert_port,
        persistence,
        collector_user,
        tuple(console_user or ()),
    )
    try:
        tls = BrokerTls(ca.resolve(), cert.resolve(), key.resolve())
        written = write_broker_config(devices, tls, layout, out.resolve())
    except (OSError, ValueError) as exc:
        raise fail(exc) from None
    console.print(
        f"{written.devices} device(s): {written.password_devices} with a password,"
        f" {written.certificate_devices} with a certificate. Written:"
    )
    for path in written.files:
        console.print(f"  {escape(str(path))}")
    console.print(
        f"the collector's password is in {escape(str(out / (collector_user + '.password')))}:"
        " its config's broker.password_file"
    )


class CommandChoice(StrEnum):
    REPORT_STATUS = "report_status"
    READ_SENSOR = "read_sensor"
    RELOAD_CONFIG = "reload_config"


def _site_of(settings: CollectorConfig, device: str) -> str | None:
    """Where the device is: the registry knows, or the store has heard from it."""
    if settings.registry is not None:
        registry = Registry(settings.registry.path)
        found = registry.get(device)
        registry.close()
        if found is not None:
            return found.site
    known = ask(open_store(settings), lambda store: store.devices())
    return next((d.site for d in known if d.device == device), None)


def command(
    config: ConfigOption,
    device: Annotated[str, typer.Argument(help="the device id")],
    name: Annotated[CommandChoice, typer.Argument(help="what the box should do")],
    source: Annotated[str | None, typer.Option(help="read_sensor: the source to read")] = None,
    site: Annotated[
        str | None, typer.Option(help="default: from the registry or the store")
    ] = None,
    timeout_s: Annotated[float, typer.Option(min=1, max=600)] = 15.0,
) -> None:
    """Send a command to a field box and print its acknowledgement: report_status,
    read_sensor --source NAME, or reload_config (the agent restarts with its config
    re-read, if it loads)."""
    settings = settings_of(config)
    site = site or _site_of(settings, device)
    if site is None:
        raise fail(
            ValueError(f"{device} is neither registered nor known to the store: give --site")
        )
    args: dict[str, str | int | float | bool] = {"source": source} if source else {}
    try:
        ack = asyncio.run(send_command(settings.broker, site, device, name.value, args, timeout_s))
    except (NoAnswerError, aiomqtt.MqttError, OSError) as exc:
        raise fail(exc) from None
    console.print(f"{device} {'[green]ok[/green]' if ack.ok else '[red]refused[/red]'}: {name}")
    console.print(ack.detail, highlight=False, markup=False, soft_wrap=True)
    if not ack.ok:
        raise typer.Exit(1)
