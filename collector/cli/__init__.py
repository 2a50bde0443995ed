"""The `collector` command, one module per group of subcommands; `app` assembles them."""
