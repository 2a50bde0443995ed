"""`collector`: the command for the people of the operations center. Each group of
subcommands lives in a module of its own; this one assembles them."""

import typer

from collector.cli.alarms import alarms_app
from collector.cli.exports import EXPORT_HELP, export
from collector.cli.fleet import (
    BROKER_CONFIG_HELP,
    COMMAND_HELP,
    broker_config,
    command,
    devices_app,
)
from collector.cli.limits import limits_app
from collector.cli.photos import photos_app
from collector.cli.plate_search import plates_app
from collector.cli.police import AUDIT_HELP, alerts_app, audit_log, watchlist_app
from collector.cli.releases import releases_app
from collector.cli.run import RUN_HELP, run
from collector.cli.site import SITE_CA_HELP, site_ca
from collector.cli.telemetry import LATEST_HELP, QUERY_HELP, latest, query
from collector.cli.tt10 import tt10_app
from collector.cli.users import users_app
from collector.i18n import _
from iotruntime.console import choose_language

app = typer.Typer(
    no_args_is_help=True,
    callback=choose_language,
    help=_("Operations-center collector for Phu Quoc telemetry."),
)
app.add_typer(watchlist_app, name="watchlist")
app.add_typer(alerts_app, name="alerts")
app.add_typer(plates_app, name="plates")
app.add_typer(photos_app, name="photos")
app.command("audit", help=AUDIT_HELP)(audit_log)
app.add_typer(devices_app, name="devices")
app.command("site-ca", help=SITE_CA_HELP)(site_ca)
app.command("broker-config", help=BROKER_CONFIG_HELP)(broker_config)
app.command("command", help=COMMAND_HELP)(command)
app.command(help=RUN_HELP)(run)
app.command(help=QUERY_HELP)(query)
app.command(help=LATEST_HELP)(latest)
app.command(help=EXPORT_HELP)(export)
app.add_typer(limits_app, name="limits")
app.add_typer(users_app, name="users")
app.add_typer(tt10_app, name="tt10")
app.add_typer(alarms_app, name="alarms")
app.add_typer(releases_app, name="releases")
