"""The collector's texts (`iotruntime.i18n`), one catalog per surface: `commands` for the
`collector` command line, `services` for what its services say to people (config errors,
the registry, the watchlist, alarms, station files), `reports` for the documents an
officer sends (reports, workbooks, CSV headers, VN_AQI public information), `web` for the
wall's screens and the API's human-facing texts. A command speaks the process's language
(`_`); a report or a screen asks for its own with `reports.for_language(...)` or
`web.for_language(...)`."""

from pathlib import Path

from iotruntime.i18n import Catalog

_LOCALEDIR = Path(__file__).parent / "locale"
commands = Catalog("collector", _LOCALEDIR)
services = Catalog("services", _LOCALEDIR)
reports = Catalog("reports", _LOCALEDIR)
web = Catalog("web", _LOCALEDIR)
_ = commands.gettext
ngettext = commands.ngettext
