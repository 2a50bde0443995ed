"""The agent's texts in the technician's language (`iotruntime.i18n`): the `edge_agent`
catalog, for the `edge-agent` command and the messages the box writes for people."""

from pathlib import Path

from iotruntime.i18n import Catalog

catalog = Catalog("edge_agent", Path(__file__).parent / "locale")
_ = catalog.gettext
ngettext = catalog.ngettext
