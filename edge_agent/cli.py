"""`edge-agent`: what a technician types on the box, or on a laptop beside it."""

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from edge_agent.agent import Agent
from edge_agent.config import LoadedAgent, load_agent
from edge_agent.profiles import find_profile, load_profile
from edge_agent.simulator import serve
from edge_agent.sources.base import SourceError
from edge_agent.sources.modbus import ModbusTcpReader
from iotwire.configfile import ConfigError

app = typer.Typer(no_args_is_help=True, help="Edge agent for Phu Quoc field boxes.")
console = Console()

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="agent config (YAML)")]
LogLevel = Annotated[str, typer.Option(help="debug, info, warning or error")]


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


def _fail(exc: Exception) -> typer.Exit:
    console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
    return typer.Exit(2)


async def _run_until_signalled(loaded: LoadedAgent) -> None:
    agent = Agent(loaded)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await agent.run(stop)


@app.command()
def run(config: ConfigOption, log_level: LogLevel = "info") -> None:
    """Run the agent: poll every source, keep everything in the outbox, publish it."""
    _setup_logging(log_level)
    try:
        loaded = load_agent(config)
    except ConfigError as exc:
        raise _fail(exc) from None
    asyncio.run(_run_until_signalled(loaded))


@app.command()
def read(
    config: ConfigOption,
    source: Annotated[str | None, typer.Option(help="only this source")] = None,
) -> None:
    """Read every configured sensor once and print the values: a quick check on site."""
    _setup_logging("error")
    try:
        loaded = load_agent(config)
    except ConfigError as exc:
        raise _fail(exc) from None
    chosen = [s for s in loaded.config.sources if source in (None, s.name)]
    if not chosen:
        raise _fail(ValueError(f"no source named {source!r} in {config}"))

    async def read_all() -> bool:
        ok = True
        for settings in chosen:
            reader = ModbusTcpReader(settings, loaded.profiles[settings.name])
            table = Table(title=f"{settings.name} ({reader.endpoint})")
            for column in ("parameter", "value", "unit", "quality"):
                table.add_column(column)
            try:
                for r in await reader.read():
                    table.add_row(r.parameter, f"{r.value:.4g}", r.unit, r.quality.value)
                console.print(table)
            except SourceError as exc:
                ok = False
                console.print(f"[red]{settings.name}: {escape(str(exc))}[/red]", highlight=False)
            finally:
                await reader.close()
        return ok

    if not asyncio.run(read_all()):
        raise typer.Exit(1)


@app.command()
def simulate(
    profile: Annotated[str, typer.Argument(help="firmware profile name or YAML path")],
    host: str = "127.0.0.1",
    port: int = 5020,
    unit: int = 1,
    seed: int = 0,
) -> None:
    """Serve a simulated device over Modbus TCP, behaving as the profile describes."""
    _setup_logging("warning")
    try:
        loaded = load_profile(find_profile(profile, [], Path.cwd()))
    except (ConfigError, LookupError) as exc:
        raise _fail(exc) from None

    async def serve_until_signalled() -> None:
        server = await serve(loaded, host, port, unit, seed)
        console.print(f"simulating {loaded.model} on {host}:{port} unit {unit}", highlight=False)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.shutdown()

    asyncio.run(serve_until_signalled())
