"""What every command of both CLIs shares: one console, and an error as one line."""

import typer
from rich.console import Console
from rich.markup import escape

console = Console()


def fail(exc: Exception) -> typer.Exit:
    """Print `exc` as one red line and return the exit (status 2) to raise."""
    console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
    return typer.Exit(2)
