"""What every command of both CLIs shares: one console, and an error as one line."""

import typer
from rich.console import Console
from rich.markup import escape

console = Console()


def fail(exc: Exception) -> typer.Exit:
    """Print `exc` as one red line and return the exit (status 2) to raise. One line
    truly: the terminal may fold it, but a path in it copies whole, and a script reading
    the error finds it on one line whatever the terminal's width."""
    console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
    return typer.Exit(2)
