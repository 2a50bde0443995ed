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


def number_text(value: float) -> str:
    """A reading as people read it: up to six significant digits, so an instrument's own
    precision shows (1008.9 hPa stays 1008.9, not 1009) without float noise."""
    return f"{value:.6g}"
