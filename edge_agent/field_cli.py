"""The technician's commands on site: `provision` a bare box, `check` it before leaving."""

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from edge_agent.check import run_checks
from edge_agent.cli_common import console, fail
from edge_agent.provision import Action, Request, apply, plan
from iotwire.configfile import ConfigError
from iotwire.registration import BoxKind, Location

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="agent config (YAML)")]
ACTION_STYLE = {Action.CREATE: "green", Action.UPDATE: "yellow", Action.KEEP: "dim"}


def provision(
    device: Annotated[str, typer.Option(prompt="device id", help="e.g. cam-dd-07")],
    site: Annotated[str, typer.Option(prompt="site", help="e.g. duong-dong")],
    kind: Annotated[BoxKind, typer.Option(prompt="box type", help="what the box is")],
    name: Annotated[str, typer.Option(prompt="pole or station name", help="where it stands")],
    broker_host: Annotated[str, typer.Option(prompt="broker host", help="the center's broker")],
    ca: Annotated[Path, typer.Option(help="the site CA certificate (PEM)")],
    lat: Annotated[float | None, typer.Option(min=-90, max=90, help="latitude")] = None,
    lon: Annotated[float | None, typer.Option(min=-180, max=180, help="longitude")] = None,
    broker_port: Annotated[int, typer.Option(min=1, max=65535)] = 8883,
    ca_key: Annotated[
        Path | None,
        typer.Option(help="the site CA key: issue a client certificate instead of a password"),
    ] = None,
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
    password, or a certificate signed by the site CA) and the registration bundle for
    `collector devices import`. Safe to run again: it keeps what is still right and says
    what it would change."""
    if (lat is None) != (lon is None):
        raise fail(ValueError("--lat and --lon go together"))
    location = Location(lat=lat, lon=lon) if lat is not None and lon is not None else None
    request = Request(
        device, site, kind, name, location, broker_host, broker_port, ca, ca_key, template
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
