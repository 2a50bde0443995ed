"""`edge-agent`: what a technician types on the box, or on a laptop beside it."""

import asyncio
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from pydantic import ValidationError
from pymodbus.server import ModbusBaseServer
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from edge_agent.agent import Agent
from edge_agent.check import read_each_once
from edge_agent.cli.field import check, profiles, provision, status
from edge_agent.cli.plates import plates
from edge_agent.config import (
    AgentConfig,
    LoadedAgent,
    RtuBus,
    TcpBus,
    load_agent,
)
from edge_agent.modbus.bus import ModbusBus
from edge_agent.modbus.simulator import serve_rtu, serve_tcp
from edge_agent.profiles import Profile, SerialSettings, find_profile, load_profile
from edge_agent.remote_config import roll_back_unless_connected
from edge_agent.sources.base import SourceError
from iotruntime.configfile import ConfigError
from iotruntime.console import (
    CsvOption,
    JsonOption,
    Output,
    choose_language,
    console,
    emit,
    fail,
    number_text,
)
from iotruntime.logs import configure_logging
from iotwire.messages import Reading

app = typer.Typer(
    no_args_is_help=True, callback=choose_language, help="Edge agent for Phu Quoc field boxes."
)
app.command("provision")(provision)
app.command("check")(check)
app.command("status")(status)
app.command("profiles")(profiles)
app.add_typer(plates, name="plates")

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="agent config (YAML)")]
LogLevel = Annotated[str, typer.Option(help="debug, info, warning or error")]


def _setup_logging(level: str) -> None:
    configure_logging(level)
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _stop_on_signals(requested: threading.Event) -> None:
    """A stop asked for while the agent still reads its config or imports its models, or
    while it closes down after the event loop gave the signals back, is a clean exit
    like any other: systemd's stop of a box that just started must not end by signal."""

    def ask(signum: int, frame: FrameType | None) -> None:
        requested.set()

    for sig in STOP_SIGNALS:
        signal.signal(sig, ask)


async def _run_until_signalled(
    loaded: LoadedAgent, config: Path, requested: threading.Event
) -> bool:
    """Run until a signal; whether the agent is to start again: asked to (reload_config,
    a pushed config), or back on its previous config after a push that did not reach the
    broker (edge_agent/remote_config.py)."""
    agent = Agent(loaded, config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    if requested.is_set():
        stop.set()
    rolled_back = asyncio.create_task(
        roll_back_unless_connected(loaded, config, lambda: agent.uplink.connected, stop)
    )
    await agent.run(stop)
    return await rolled_back or agent.restart_requested


@app.command()
def run(config: ConfigOption, log_level: LogLevel = "info") -> None:
    """Run the agent: poll every source, keep everything in the outbox, publish it."""
    _setup_logging(log_level)
    requested = threading.Event()
    _stop_on_signals(requested)
    try:
        loaded = load_agent(config)
    except ConfigError as exc:
        raise fail(exc) from None
    restart = asyncio.run(_run_until_signalled(loaded, config, requested))
    _stop_on_signals(requested)
    if restart and not requested.is_set():
        # The same process (and pid, for systemd) with the config read afresh.
        logging.getLogger(__name__).info("restarting with %s", config)
        os.execv(sys.argv[0], sys.argv)  # noqa: S606 - this very command again


def _bus_from_flags(
    serial: str | None,
    host: str | None,
    tcp_port: int,
    profile: Profile,
    baudrate: int | None,
    parity: str | None,
    timeout_s: float,
) -> RtuBus | TcpBus:
    if (serial is None) == (host is None):
        raise typer.BadParameter("give either --serial PORT or --host HOST")
    if host is not None:
        return TcpBus(type="tcp", name="cli", host=host, port=tcp_port, timeout_s=timeout_s)
    if profile.serial is None and (baudrate is None or parity is None):
        raise typer.BadParameter(
            "this profile does not state serial settings: give --baudrate and --parity"
        )
    stated = profile.serial or SerialSettings()
    return RtuBus.model_validate(
        {
            "type": "rtu",
            "name": "cli",
            "port": serial,
            "timeout_s": timeout_s,
            "baudrate": baudrate or stated.baudrate,
            "parity": parity or stated.parity,
            "stopbits": stated.stopbits,
            "bytesize": stated.bytesize,
        }
    )


def _print_readings(title: str, readings: tuple[Reading, ...]) -> None:
    table = Table(title=title)
    for column in ("parameter", "value", "unit", "quality"):
        table.add_column(column, no_wrap=True)
    for r in readings:
        value = "-" if r.value is None else number_text(r.value)
        table.add_row(r.parameter, value, r.unit, r.quality.value)
    console.print(table)


async def _read_once(loaded: LoadedAgent, only: str | None) -> bool:
    ok = True
    async for name, kind, result in read_each_once(loaded, only):
        if isinstance(result, SourceError):
            ok = False
            console.print(f"[red]{name}: {escape(str(result))}[/red]", highlight=False)
        else:
            _print_readings(f"{name} ({kind})", result)
    return ok


@app.command()
def read(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="agent config")] = None,
    source: Annotated[str | None, typer.Option(help="with --config: only this source")] = None,
    profile: Annotated[
        str | None, typer.Option(help="without --config: the device's profile")
    ] = None,
    unit: Annotated[int, typer.Option(min=0, max=247)] = 1,
    serial: Annotated[str | None, typer.Option(help="serial port of an RS-485 adapter")] = None,
    host: Annotated[str | None, typer.Option(help="Modbus TCP device or gateway")] = None,
    tcp_port: Annotated[
        int, typer.Option("--port", "--tcp-port", help="Modbus TCP port (with --host)")
    ] = 502,
    baudrate: Annotated[int | None, typer.Option(help="default: the profile's")] = None,
    parity: Annotated[str | None, typer.Option(help="N, E or O; default: the profile's")] = None,
    timeout_s: float = 1.0,
) -> None:
    """Read sensors once and print the decoded values: every source of a config, or one
    Modbus device given by profile, unit and port. A quick check on site."""
    _setup_logging("critical")
    try:
        if config is not None:
            loaded = load_agent(config)
            if source is not None and source not in {s.name for s in loaded.config.sources}:
                raise fail(ValueError(f"no source named {source!r} in {config}"))
        elif profile is not None:
            chosen = load_profile(find_profile(profile, [], Path.cwd()))
            if not isinstance(chosen, Profile):
                raise fail(ValueError(f"{profile} is a line profile; give it a config"))
            bus = _bus_from_flags(serial, host, tcp_port, chosen, baudrate, parity, timeout_s)
            loaded = LoadedAgent(
                config=AgentConfig.model_validate(
                    {
                        "device": {
                            "id": "cli",
                            "site": "cli",
                            "kind": "air",
                            "name": "edge-agent read",
                        },
                        "buses": [bus.model_dump()],
                        "sources": [
                            {
                                "type": "modbus",
                                "name": "device",
                                "bus": bus.name,
                                "unit": unit,
                                "profile": profile,
                            }
                        ],
                    }
                ),
                profiles={"device": chosen},
                buses={bus.name: bus},
            )
        else:
            raise typer.BadParameter("give --config, or --profile with --serial or --host")
    except (ConfigError, LookupError, ValidationError) as exc:
        raise fail(exc) from None
    if not asyncio.run(_read_once(loaded, source)):
        raise typer.Exit(1)


def _unit_range(text: str) -> list[int]:
    first, _, last = text.partition("-")
    try:
        low, high = int(first), int(last or first)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a unit range like 1-247") from None
    if not 1 <= low <= high <= 247:
        raise typer.BadParameter("unit ids run from 1 to 247")
    return list(range(low, high + 1))


@app.command()
def probe(
    serial: Annotated[str | None, typer.Option(help="serial port of an RS-485 adapter")] = None,
    host: Annotated[str | None, typer.Option(help="Modbus TCP device or gateway")] = None,
    tcp_port: Annotated[
        int, typer.Option("--port", "--tcp-port", help="Modbus TCP port (with --host)")
    ] = 502,
    units: Annotated[str, typer.Option(help="unit ids to try, e.g. 1-32")] = "1-247",
    baudrate: Annotated[list[int] | None, typer.Option(help="repeat to try several")] = None,
    parity: Annotated[
        list[str] | None, typer.Option(help="N, E or O; repeat to try several")
    ] = None,
    timeout_s: Annotated[float, typer.Option(help="how long each unit id may take")] = 0.2,
    csv_out: CsvOption = False,
    json_out: JsonOption = False,
) -> None:
    """Find what answers on a bus: every unit id, at each baud rate and parity given."""
    _setup_logging("critical")
    ids = _unit_range(units)
    if (serial is None) == (host is None):
        raise typer.BadParameter("give either --serial PORT or --host HOST")
    if host is not None:
        settings: list[RtuBus | TcpBus] = [
            TcpBus(type="tcp", name="probe", host=host, port=tcp_port, timeout_s=timeout_s)
        ]
    else:
        try:
            settings = [
                RtuBus.model_validate(
                    {
                        "type": "rtu",
                        "name": "probe",
                        "port": serial,
                        "baudrate": b,
                        "parity": p,
                        "stopbits": 1,
                        "bytesize": 8,
                        "timeout_s": timeout_s,
                    }
                )
                for b in (baudrate or [9600])
                for p in (parity or ["N"])
            ]
        except ValidationError as exc:
            raise fail(exc) from None

    async def scan() -> list[tuple[str, int, str]]:
        found: list[tuple[str, int, str]] = []
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("probing", total=len(settings) * len(ids))
            for bus_settings in settings:
                line = (
                    f"{bus_settings.baudrate} {bus_settings.parity}"
                    if isinstance(bus_settings, RtuBus)
                    else bus_settings.host
                )
                bus = ModbusBus(bus_settings)
                try:
                    for unit in ids:
                        progress.update(task, description=f"{line} unit {unit}")
                        answer = await bus.probe(unit)
                        if answer is not None:
                            found.append((line, unit, answer))
                        progress.advance(task)
                except SourceError as exc:
                    raise fail(exc) from None
                finally:
                    bus.close()
        return found

    found = asyncio.run(scan())
    out = Output.of(csv_out, json_out)
    rows = [(line, str(unit), answer) for line, unit, answer in found]
    emit(f"{len(found)} unit(s) answered", ("line", "unit", "answer"), rows, out)
    if not found:
        raise typer.Exit(1)
    if not out.machine:
        console.print(_provision_hint(settings, found), highlight=False, soft_wrap=True)


def _provision_hint(settings: list[RtuBus | TcpBus], found: list[tuple[str, int, str]]) -> str:
    """The `edge-agent provision` flags that wire what answered: the technician names
    each unit's profile (`edge-agent profiles`) and the box has its sensors."""
    line, *_ = found[0]
    bus = next(
        b
        for b in settings
        if (isinstance(b, RtuBus) and f"{b.baudrate} {b.parity}" == line)
        or (isinstance(b, TcpBus) and b.host == line)
    )
    units = " ".join(f"--sensor PROFILE:{unit}" for ln, unit, _ in found if ln == line)
    where = (
        f"--serial {bus.port} --baudrate {bus.baudrate} --parity {bus.parity}"
        if isinstance(bus, RtuBus)
        else f"--modbus-host {bus.host} --modbus-port {bus.port}"
    )
    return f"to add them: edge-agent provision ... {units} {where}"


def _parse_units(specs: list[str]) -> dict[int, Profile]:
    units: dict[int, Profile] = {}
    for spec in specs:
        unit_text, _, name = spec.rpartition(":")
        unit_id = int(unit_text) if unit_text else len(units) + 1
        if unit_id in units or not 0 < unit_id < 248:
            raise typer.BadParameter(f"{spec!r}: unit ids are 1-247 and each used once")
        chosen = load_profile(find_profile(name, [], Path.cwd()))
        if not isinstance(chosen, Profile):
            raise typer.BadParameter(f"{name} is a line profile; only Modbus devices are simulated")
        units[unit_id] = chosen
    return units


@app.command()
def simulate(
    units: Annotated[list[str], typer.Argument(help="PROFILE or UNIT:PROFILE, one per unit")],
    host: str = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Modbus TCP port")] = 5020,
    serial: Annotated[str | None, typer.Option(help="serve RTU on this serial port")] = None,
    baudrate: Annotated[int | None, typer.Option(help="default: the first profile's")] = None,
    seed: int = 0,
) -> None:
    """Serve simulated devices that behave as their profiles describe, over Modbus TCP or
    as an RS-485 line on a serial port."""
    _setup_logging("warning")
    try:
        devices = _parse_units(units)
    except (ConfigError, LookupError, ValueError) as exc:
        raise fail(exc) from None
    first = next(iter(devices.values()))

    async def serve_until_signalled() -> None:
        server: ModbusBaseServer
        if serial is not None:
            stated = first.serial or SerialSettings()
            settings = stated.model_copy(update={"baudrate": baudrate or stated.baudrate})
            server = await serve_rtu(devices, serial, settings, seed)
            where = f"{serial} at {settings.baudrate} baud"
        else:
            server = await serve_tcp(devices, host, port, seed)
            where = f"{host}:{port}"
        listing = ", ".join(f"unit {u} {p.model}" for u, p in devices.items())
        console.print(f"simulating {listing} on {where}", highlight=False)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        # pymodbus ships py.typed but leaves ModbusBaseServer.shutdown unannotated.
        await server.shutdown()  # type: ignore[no-untyped-call]

    asyncio.run(serve_until_signalled())
