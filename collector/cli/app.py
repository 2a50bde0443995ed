"""`collector`: the command for the people of the operations center. Each group of
subcommands lives in a module of its own; this one assembles them."""

import typer

from collector.cli.alarms import alarms_app
from collector.cli.exports import export
from collector.cli.fleet import broker_config, command, devices_app
from collector.cli.limits import limits_app
from collector.cli.photos import photos_app
from collector.cli.plate_search import plates_app
from collector.cli.police import alerts_app, audit_log, watchlist_app
from collector.cli.run import run
from collector.cli.site import site_ca
from collector.cli.telemetry import latest, query
from collector.cli.tt10 import tt10_app
from collector.cli.users import users_app
from iotruntime.console import choose_language

app = typer.Typer(
    no_args_is_help=True,
    callback=choose_language,
    help="Operations-center collector for Phu Quoc telemetry.",
)
app.add_typer(watchlist_app, name="watchlist")
app.add_typer(alerts_app, name="alerts")
app.add_typer(plates_app, name="plates")
app.add_typer(photos_app, name="photos")
app.command("audit")(audit_log)
app.add_typer(devices_app, name="devices")
app.command("site-ca")(site_ca)
app.command("broker-config")(broker_config)
app.command("command")(command)
app.command()(run)
app.command()(query)
app.command()(latest)
app.command()(export)
app.add_typer(limits_app, name="limits")
app.add_typer(users_app, name="users")
app.add_typer(tt10_app, name="tt10")
app.add_typer(alarms_app, name="alarms")
