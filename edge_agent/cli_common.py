"""What every `edge-agent` command shares: one console, and errors as one line."""

import typer
from rich.console import Console
from rich.markup import escape

console = Console()


def fail(exc: Exception) -> typer.Exit:
    console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
    return typer.Exit(2)
