"""The `edge-agent` command: `app` for running and reading, `field` for the technician's
provision, check and status."""
