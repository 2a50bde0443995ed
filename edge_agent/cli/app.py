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
from edge_agent.i18n import _
from edge_agent.modbus.bus import ModbusBus
from edge_agent.modbus.simulator import serve_rtu, serve_tcp
from edge_agent.profiles import Profile, SerialSettings, find_profile, load_profile
from edge_agent.remote_config import roll_back_unless_connected
from edge_agent.software_update import try_release
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
    no_args_is_help=True,
    callback=choose_language,
    help=_("Edge agent for Phu Quoc field boxes."),
)
app.command(
    "provision",
    help=_(
        "Write this box's config from the template for its type, its broker credential (a"
        " password, or a certificate signed by the device CA) and the registration bundle"
        " for `collector devices import`. Safe to run again: it keeps what is still right"
        " and says what it would change."
    ),
)(provision)
app.command(
    "check",
    help=_(
        "Check this box before leaving it: the config, the broker over TLS with the"
        " device's credential, a message accepted and delivered back, every sensor once,"
        " one frame from every camera. Exits 1 when any line fails."
    ),
)(check)
app.command(
    "status",
    help=_(
        "What the running agent is doing: outbox depth, the last publish the broker"
        " acknowledged, and each source's last value or error. Exits 1 when no agent has"
        " written its status lately."
    ),
)(status)
app.command(
    "profiles", help=_("The firmware profiles this agent knows, for `--sensor PROFILE:UNIT`.")
)(profiles)
app.add_typer(plates, name="plates")

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help=_("agent config (YAML)"))]
LogLevel = Annotated[str, typer.Option(help=_("debug, info, warning or error"))]


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


@app.command(help=_("Run the agent: poll every source, keep everything in the outbox, publish it."))
def run(config: ConfigOption, log_level: LogLevel = "info") -> None:
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
        # The same process (and pid, for systemd) with the config read afresh: this very
        # command, or an offered release's once it came up healthy on trial.
        program = try_release(loaded.config, sys.argv[1:], requested)
        if requested.is_set():
            return
        logging.getLogger(__name__).info("restarting with %s as %s", config, program)
        os.execv(program, [program, *sys.argv[1:]])  # noqa: S606 - the agent again


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
        raise typer.BadParameter(_("give either --serial PORT or --host HOST"))
    if host is not None:
        return TcpBus(type="tcp", name="cli", host=host, port=tcp_port, timeout_s=timeout_s)
    if profile.serial is None and (baudrate is None or parity is None):
        raise typer.BadParameter(
            _("this profile does not state serial settings: give --baudrate and --parity")
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
    for column in (_("parameter"), _("value"), _("unit"), _("quality")):
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


@app.command(
    help=_(
        "Read sensors once and print the decoded values: every source of a config, or one"
        " Modbus device given by profile, unit and port. A quick check on site."
    )
)
def read(
    config: Annotated[Path | None, typer.Option("--config", "-c", help=_("agent config"))] = None,
    source: Annotated[str | None, typer.Option(help=_("with --config: only this source"))] = None,
    profile: Annotated[
        str | None, typer.Option(help=_("without --config: the device's profile"))
    ] = None,
    unit: Annotated[int, typer.Option(min=0, max=247, help=_("Modbus unit id"))] = 1,
    serial: Annotated[str | None, typer.Option(help=_("serial port of an RS-485 adapter"))] = None,
    host: Annotated[str | None, typer.Option(help=_("Modbus TCP device or gateway"))] = None,
    tcp_port: Annotated[
        int, typer.Option("--port", "--tcp-port", help=_("Modbus TCP port (with --host)"))
    ] = 502,
    baudrate: Annotated[int | None, typer.Option(help=_("default: the profile's"))] = None,
    parity: Annotated[str | None, typer.Option(help=_("N, E or O; default: the profile's"))] = None,
    timeout_s: Annotated[
        float, typer.Option(help=_("how long the device may take to answer"))
    ] = 1.0,
) -> None:
    _setup_logging("critical")
    try:
        if config is not None:
            loaded = load_agent(config)
            if source is not None and source not in {s.name for s in loaded.config.sources}:
                raise fail(
                    ValueError(
                        _("no source named {source} in {config}").format(
                            source=repr(source), config=config
                        )
                    )
                )
        elif profile is not None:
            chosen = load_profile(find_profile(profile, [], Path.cwd()))
            if not isinstance(chosen, Profile):
                raise fail(
                    ValueError(
                        _("{profile} is a line profile; give it a config").format(profile=profile)
                    )
                )
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
            raise typer.BadParameter(_("give --config, or --profile with --serial or --host"))
    except (ConfigError, LookupError, ValidationError) as exc:
        raise fail(exc) from None
    if not asyncio.run(_read_once(loaded, source)):
        raise typer.Exit(1)


def _unit_range(text: str) -> list[int]:
    first, _dash, last = text.partition("-")
    try:
        low, high = int(first), int(last or first)
    except ValueError:
        raise typer.BadParameter(
            _("{text} is not a unit range like 1-247").format(text=repr(text))
        ) from None
    if not 1 <= low <= high <= 247:
        raise typer.BadParameter(_("unit ids run from 1 to 247"))
    return list(range(low, high + 1))


@app.command(
    help=_("Find what answers on a bus: every unit id, at each baud rate and parity given.")
)
def probe(
    serial: Annotated[str | None, typer.Option(help=_("serial port of an RS-485 adapter"))] = None,
    host: Annotated[str | None, typer.Option(help=_("Modbus TCP device or gateway"))] = None,
    tcp_port: Annotated[
        int, typer.Option("--port", "--tcp-port", help=_("Modbus TCP port (with --host)"))
    ] = 502,
    units: Annotated[str, typer.Option(help=_("unit ids to try, e.g. 1-32"))] = "1-247",
    baudrate: Annotated[list[int] | None, typer.Option(help=_("repeat to try several"))] = None,
    parity: Annotated[
        list[str] | None, typer.Option(help=_("N, E or O; repeat to try several"))
    ] = None,
    timeout_s: Annotated[float, typer.Option(help=_("how long each unit id may take"))] = 0.2,
    csv_out: CsvOption = False,
    json_out: JsonOption = False,
) -> None:
    _setup_logging("critical")
    ids = _unit_range(units)
    if (serial is None) == (host is None):
        raise typer.BadParameter(_("give either --serial PORT or --host HOST"))
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
            task = progress.add_task(_("probing"), total=len(settings) * len(ids))
            for bus_settings in settings:
                line = (
                    f"{bus_settings.baudrate} {bus_settings.parity}"
                    if isinstance(bus_settings, RtuBus)
                    else bus_settings.host
                )
                bus = ModbusBus(bus_settings)
                try:
                    for unit in ids:
                        progress.update(
                            task, description=_("{line} unit {unit}").format(line=line, unit=unit)
                        )
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
    emit(
        _("{count} unit(s) answered").format(count=len(found)),
        ("line", "unit", "answer"),
        rows,
        out,
        labels=(_("line"), _("unit id"), _("answer")),
    )
    if not found:
        raise typer.Exit(1)
    if not out.machine:
        console.print(_provision_hint(settings, found), highlight=False, soft_wrap=True)


def _provision_hint(settings: list[RtuBus | TcpBus], found: list[tuple[str, int, str]]) -> str:
    """The `edge-agent provision` flags that wire what answered: the technician names
    each unit's profile (`edge-agent profiles`) and the box has its sensors."""
    line = found[0][0]
    bus = next(
        b
        for b in settings
        if (isinstance(b, RtuBus) and f"{b.baudrate} {b.parity}" == line)
        or (isinstance(b, TcpBus) and b.host == line)
    )
    units = " ".join(f"--sensor PROFILE:{unit}" for ln, unit, _answer in found if ln == line)
    where = (
        f"--serial {bus.port} --baudrate {bus.baudrate} --parity {bus.parity}"
        if isinstance(bus, RtuBus)
        else f"--modbus-host {bus.host} --modbus-port {bus.port}"
    )
    return _("to add them: edge-agent provision ... {units} {where}").format(
        units=units, where=where
    )


def _parse_units(specs: list[str]) -> dict[int, Profile]:
    units: dict[int, Profile] = {}
    for spec in specs:
        unit_text, _colon, name = spec.rpartition(":")
        unit_id = int(unit_text) if unit_text else len(units) + 1
        if unit_id in units or not 0 < unit_id < 248:
            raise typer.BadParameter(
                _("{spec}: unit ids are 1-247 and each used once").format(spec=repr(spec))
            )
        chosen = load_profile(find_profile(name, [], Path.cwd()))
        if not isinstance(chosen, Profile):
            raise typer.BadParameter(
                _("{name} is a line profile; only Modbus devices are simulated").format(name=name)
            )
        units[unit_id] = chosen
    return units


@app.command(
    help=_(
        "Serve simulated devices that behave as their profiles describe, over Modbus TCP or"
        " as an RS-485 line on a serial port."
    )
)
def simulate(
    units: Annotated[list[str], typer.Argument(help=_("PROFILE or UNIT:PROFILE, one per unit"))],
    host: Annotated[str, typer.Option(help=_("address to serve Modbus TCP on"))] = "127.0.0.1",
    port: Annotated[int, typer.Option(help=_("Modbus TCP port"))] = 5020,
    serial: Annotated[str | None, typer.Option(help=_("serve RTU on this serial port"))] = None,
    baudrate: Annotated[int | None, typer.Option(help=_("default: the first profile's"))] = None,
    seed: Annotated[int, typer.Option(help=_("seed of the simulated values"))] = 0,
) -> None:
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
            where = _("{serial} at {baudrate} baud").format(
                serial=serial, baudrate=settings.baudrate
            )
        else:
            server = await serve_tcp(devices, host, port, seed)
            where = f"{host}:{port}"
        listing = ", ".join(
            _("unit {unit} {model}").format(unit=u, model=p.model) for u, p in devices.items()
        )
        console.print(
            _("simulating {listing} on {where}").format(listing=listing, where=where),
            highlight=False,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        # pymodbus ships py.typed but leaves ModbusBaseServer.shutdown unannotated.
        await server.shutdown()  # type: ignore[no-untyped-call]

    asyncio.run(serve_until_signalled())
