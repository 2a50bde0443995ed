"""The `edge-agent` command: `app` for running and reading, `field` for the technician's
provision, check and status."""

from iotruntime.i18n import use_process_language_for_libraries

use_process_language_for_libraries()
