"""The technician's commands on site: `provision` a bare box, `check` it before leaving,
and see its `status` while it runs."""

import asyncio
import logging
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from edge_agent.check import run_checks
from edge_agent.config import load_agent
from edge_agent.profiles import Profile, builtin_profiles_dir, load_profile
from edge_agent.status import EVERY_S as STATUS_EVERY_S
from edge_agent.status import outbox_counts, read_status
from edge_agent.wiring import (
    SENSOR_FORMAT,
    Sensor,
    Wiring,
    parse_camera,
    parse_sensor,
    profile_names,
    serial_adapters,
)
from iotruntime.broker_access import CERTIFICATE_PORT, PASSWORD_PORT
from iotruntime.configfile import ConfigError
from iotruntime.console import CsvOption, JsonOption, Output, console, emit, fail
from iotruntime.registration import BoxKind, Location

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="agent config (YAML)")]
ACTION_STYLE = {"create": "green", "update": "yellow", "keep": "dim"}


def provision(
    device: Annotated[str | None, typer.Option(help="e.g. cam-dd-07")] = None,
    site: Annotated[str | None, typer.Option(help="e.g. duong-dong")] = None,
    kind: Annotated[BoxKind | None, typer.Option(help="what the box is")] = None,
    name: Annotated[str | None, typer.Option(help="the pole or station: where it stands")] = None,
    broker_host: Annotated[str | None, typer.Option(help="the center's broker")] = None,
    ca: Annotated[Path | None, typer.Option(help="the site CA certificate (PEM)")] = None,
    lat: Annotated[float | None, typer.Option(min=-90, max=90, help="latitude")] = None,
    lon: Annotated[float | None, typer.Option(min=-180, max=180, help="longitude")] = None,
    broker_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            help=f"default {PASSWORD_PORT} for a password, {CERTIFICATE_PORT} for a certificate,"
            " as `collector broker-config` sets the broker up",
        ),
    ] = None,
    device_ca: Annotated[
        Path | None,
        typer.Option(help="the device CA: issue a client certificate instead of a password"),
    ] = None,
    device_ca_key: Annotated[Path | None, typer.Option(help="the device CA's key")] = None,
    sensor: Annotated[
        list[str] | None,
        typer.Option(help=f"a Modbus sensor, {SENSOR_FORMAT} (repeat; `edge-agent profiles`)"),
    ] = None,
    serial: Annotated[
        str | None, typer.Option(help="the sensors' RS-485 adapter, e.g. /dev/ttyUSB0")
    ] = None,
    baudrate: Annotated[int | None, typer.Option(help="default: the profiles'")] = None,
    parity: Annotated[str | None, typer.Option(help="N, E or O; default: the profiles'")] = None,
    modbus_host: Annotated[
        str | None, typer.Option(help="the sensors' Modbus TCP device or gateway")
    ] = None,
    modbus_port: Annotated[int, typer.Option(min=1, max=65535)] = 502,
    camera: Annotated[
        list[str] | None,
        typer.Option(help="a camera pole's camera, NAME=URL (repeat; rtsp://, /dev/video0)"),
    ] = None,
    wifi_interface: Annotated[
        str | None, typer.Option(help="an access point's wireless interface, e.g. wlan1")
    ] = None,
    collector_key: Annotated[
        Path | None,
        typer.Option(help="the center's config-signing.pub: lets it push configs to the box"),
    ] = None,
    reset: Annotated[
        bool, typer.Option("--reset", help="start again from the template, not the box's config")
    ] = False,
    template: Annotated[
        Path | None, typer.Option(help="config template (default: configs/ for the box type)")
    ] = None,
    out: Annotated[Path, typer.Option(help="where the agent's files go")] = Path("/etc/edge-agent"),
    yes: Annotated[
        bool, typer.Option("--yes", help="change a provisioned box without asking")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="say what would change, write nothing")
    ] = False,
) -> None:
    """Write this box's config from the template for its type, its broker credential (a
    password, or a certificate signed by the device CA) and the registration bundle for
    `collector devices import`. Safe to run again: it keeps what is still right and says
    what it would change."""
    # Imported here: certificates need `cryptography`, a large import that `edge-agent run`,
    # which shares this module and runs all day on a small box, has no use for.
    from edge_agent.provision import Action, Request, apply, plan

    answers = _answers(
        {"device": device, "site": site, "kind": kind, "name": name},
        {"broker_host": broker_host, "ca": ca},
    )
    device, site, name = answers["device"], answers["site"], answers["name"]
    kind, broker_host = BoxKind(answers["kind"]), answers["broker_host"]
    ca = Path(answers["ca"])
    try:
        sensors = [parse_sensor(text) for text in sensor or ()]
        new_box = not (out / "agent.yaml").is_file() and template is None
        if sys.stdin.isatty() and not sensors and new_box:
            sensors, serial = _ask_sensors(serial, modbus_host)
    except ValueError as exc:
        raise fail(exc) from None
    if sensors and (serial is None) == (modbus_host is None):
        raise fail(ValueError("sensors hang on --serial PORT or --modbus-host HOST: give one"))
    if camera and kind is not BoxKind.CAMERA_POLE:
        raise fail(ValueError(f"--camera is for a camera_pole, not a {kind}"))
    if wifi_interface is not None and kind is not BoxKind.WIFI_AP:
        raise fail(ValueError(f"--wifi-interface is for a wifi_ap, not a {kind}"))
    try:
        cameras = tuple(parse_camera(text) for text in camera or ())
    except ValueError as exc:
        raise fail(exc) from None
    wiring = Wiring(serial, baudrate, parity, modbus_host, modbus_port)
    if (lat is None) != (lon is None):
        raise fail(ValueError("--lat and --lon go together"))
    location = Location(lat=lat, lon=lon) if lat is not None and lon is not None else None
    if (device_ca is None) != (device_ca_key is None):
        raise fail(ValueError("--device-ca and --device-ca-key go together"))
    request = Request(
        device,
        site,
        kind,
        name,
        location,
        broker_host,
        broker_port or (PASSWORD_PORT if device_ca is None else CERTIFICATE_PORT),
        ca,
        device_ca,
        device_ca_key,
        template,
        sensors=tuple(sensors),
        wiring=wiring,
        cameras=cameras,
        wifi_interface=wifi_interface,
        collector_key=collector_key,
        reset=reset,
    )
    try:
        planned = plan(request, out)
    except (ConfigError, OSError, ValueError) as exc:
        raise fail(exc) from None
    table = Table("file", "action", "what", title=f"Provisioning {device} in {out}")
    for change in planned.changes:
        style = ACTION_STYLE[change.action]
        table.add_row(change.name, f"[{style}]{change.action}[/{style}]", escape(change.detail))
    console.print(table)
    updates = [c for c in planned.pending if c.action is Action.UPDATE]
    if dry_run or not planned.pending:
        console.print("nothing to change" if not planned.pending else "dry run: nothing written")
        return
    if updates and not yes and not typer.confirm("this box is provisioned already; change it?"):
        raise typer.Exit(1)
    apply(planned)
    credential = planned.registration.credential
    console.print(f"written to {out}. Broker ACL for {device}:")
    for line in planned.acl:
        console.print(f"  {line}", highlight=False)
    if credential is not None and credential.password_entry:
        console.print("password-file entry:", highlight=False)
        console.print(f"  {credential.password_entry}", highlight=False, soft_wrap=True)
    console.print(
        f"bring {out / 'registration.yaml'} to the operations center:"
        " collector devices import, then collector broker-config"
    )


def _answers(identity: dict[str, object], broker: dict[str, object]) -> dict[str, str]:
    """The required values: given as flags, or asked (a terminal, or answers piped in);
    when the input ends first, the values still missing are named, all at once."""
    wanted = {**identity, **broker}
    questions = {
        "device": "device id (e.g. air-dd-01)",
        "site": "site (e.g. duong-dong)",
        "kind": f"box type ({', '.join(k.value for k in BoxKind)})",
        "name": "pole or station name",
        "broker_host": "broker host",
        "ca": "site CA certificate (PEM file)",
    }
    found: dict[str, str] = {}
    for key, value in wanted.items():
        if value is not None:
            found[key] = str(value)
            continue
        try:
            found[key] = typer.prompt(questions[key])
        except typer.Abort:
            missing = [k for k, v in wanted.items() if v is None and k not in found]
            flags = ", ".join("--" + k.replace("_", "-") for k in missing)
            raise fail(
                ValueError(f"missing {flags}: give them as flags, or answer the questions")
            ) from None
    try:
        BoxKind(found["kind"])
    except ValueError:
        raise fail(ValueError(f"box type {found['kind']!r}: one of {questions['kind']}")) from None
    return found


def _ask_sensors(serial: str | None, modbus_host: str | None) -> tuple[list[Sensor], str | None]:
    """At a terminal, for a new box given no --sensor: the profiles and adapters there
    are, then the sensors."""
    console.print("firmware profiles: " + ", ".join(profile_names()), highlight=False)
    if serial is None and modbus_host is None:
        adapters = serial_adapters()
        console.print("serial adapters found: " + (", ".join(adapters) or "none"), highlight=False)
        if adapters:
            serial = typer.prompt("the sensors' serial port", default=adapters[0])
    texts = typer.prompt(
        f"sensors, {SENSOR_FORMAT}, separated by spaces (empty: the template's)",
        default="",
        show_default=False,
    )
    return [parse_sensor(text) for text in texts.split()], serial


def profiles(csv_out: CsvOption = False, json_out: JsonOption = False) -> None:
    """The firmware profiles this agent knows, for `--sensor PROFILE:UNIT`."""
    rows = []
    for profile_name in profile_names():
        found = load_profile(builtin_profiles_dir() / f"{profile_name}.yaml")
        line = found.serial
        serial = f"{line.baudrate} {line.parity}" if line is not None else "set on the bus"
        points = (
            ", ".join(p.parameter for p in found.points)
            if isinstance(found, Profile)
            else ", ".join(f.parameter for f in found.fields)
        )
        rows.append((profile_name, found.manufacturer, found.model, found.protocol, serial, points))
    header = ("profile", "manufacturer", "model", "protocol", "serial", "parameters")
    out = Output.of(csv_out, json_out)
    emit(f"{len(rows)} firmware profile(s)", header, rows, out, whole=("profile",))


def check(config: ConfigOption) -> None:
    """Check this box before leaving it: the config, the broker over TLS with the device's
    credential, a message accepted and delivered back, every sensor once, one frame from
    every camera. Exits 1 when any line fails."""
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    lines = asyncio.run(run_checks(config))
    table = Table("check", "result", "detail", title=f"edge-agent check {config}")
    for line in lines:
        result = "[green]pass[/green]" if line.ok else "[red]FAIL[/red]"
        table.add_row(line.what, result, escape(line.detail))
    console.print(table)
    failed = [line.what for line in lines if not line.ok]
    if failed:
        console.print(
            f"[red]{len(failed)} of {len(lines)} check(s) failed[/red]: {', '.join(failed)}"
        )
        raise typer.Exit(1)
    console.print(f"[green]all {len(lines)} checks passed[/green]")


def _ago(at: float | None, now: float) -> str:
    if at is None:
        return "never"
    return f"{datetime.fromtimestamp(at):%H:%M:%S} ({now - at:.0f} s ago)"


def status(config: ConfigOption) -> None:
    """What the running agent is doing: outbox depth, the last publish the broker
    acknowledged, and each source's last value or error. Exits 1 when no agent has
    written its status lately."""
    try:
        loaded = load_agent(config)
    except ConfigError as exc:
        raise fail(exc) from None
    state_dir = loaded.config.state_dir
    current = read_status(state_dir)
    counts = outbox_counts(state_dir)
    now = time.time()
    if current is None:
        console.print(f"[red]no agent status in {state_dir}: has the agent run here?[/red]")
        raise typer.Exit(1)
    stale = now - current.written_at > 3 * STATUS_EVERY_S
    depth, dropped = counts if counts else (current.outbox_depth, current.outbox_dropped)
    console.print(
        f"{current.device} ({current.kind}), agent pid {current.pid} up since"
        f" {datetime.fromtimestamp(current.started_at):%Y-%m-%d %H:%M:%S};"
        f" status written {now - current.written_at:.0f} s ago",
        highlight=False,
    )
    console.print(
        f"outbox: {depth} message(s) waiting, {dropped} dropped;"
        f" broker {'connected' if current.broker_connected else '[red]not connected[/red]'};"
        f" last publish acknowledged {_ago(current.last_publish_at, now)}",
        highlight=False,
    )
    table = Table("source", "type", "last value", "at", "errors", "last error")
    for s in current.sources:
        table.add_row(
            s.name,
            s.kind,
            escape(s.last_value),
            _ago(s.last_value_at, now),
            str(s.errors),
            f"[red]{escape(s.last_error)}[/red]" if s.last_error else "",
        )
    console.print(table)
    if stale:
        console.print(
            f"[red]the status is {now - current.written_at:.0f} s old: the agent is not"
            " running, or is stuck[/red]"
        )
        raise typer.Exit(1)
