"""The `collector` command, one module per group of subcommands; `app` assembles them."""

from iotruntime.i18n import use_process_language_for_libraries

use_process_language_for_libraries()
