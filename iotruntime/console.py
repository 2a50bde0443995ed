"""What every command of both CLIs shares: one console, an error as one line, and
listings as a table for people or CSV or JSON for programs (`--csv`, `--json`)."""

import csv
import json
import sys
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from iotruntime.i18n import LANGUAGES, UnknownLanguage, _, parse_language

console = Console()
CsvOption = Annotated[bool, typer.Option("--csv", help=_("CSV on stdout instead of a table"))]
JsonOption = Annotated[bool, typer.Option("--json", help=_("JSON on stdout instead of a table"))]


def choose_language(
    lang: Annotated[
        str | None,
        typer.Option(
            "--lang",
            help=_("language of every text: {choices} (default: from LANG)").format(
                choices=", ".join(LANGUAGES)
            ),
        ),
    ] = None,
) -> None:
    """The root callback of both commands. The language itself was chosen when the first
    text was translated (`iotruntime.i18n.process_language`, which reads `--lang` from the
    command line); here an unknown one is refused rather than shown in English."""
    if lang is not None:
        try:
            parse_language(lang)
        except UnknownLanguage as exc:
            raise typer.BadParameter(
                _("unknown language {value}: use one of {choices}").format(
                    value=repr(lang), choices=", ".join(LANGUAGES)
                ),
                param_hint="'--lang'",
            ) from exc


def fail(exc: Exception) -> typer.Exit:
    """Print `exc` as one red line and return the exit (status 2) to raise. One line
    truly: the terminal may fold it, but a path in it copies whole, and a script reading
    the error finds it on one line whatever the terminal's width."""
    label = _("error:")
    console.print(f"[red]{label}[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


def number_text(value: float) -> str:
    """A reading as people read it: up to six significant digits, so an instrument's own
    precision shows (1008.9 hPa stays 1008.9, not 1009) without float noise."""
    return f"{value:.6g}"


@dataclass(frozen=True)
class Output:
    """How a listing is printed: a table for people, CSV or JSON for programs. `machine`
    says the values are written for programs (ISO times, full-precision numbers)."""

    csv: bool = False
    json: bool = False

    @classmethod
    def of(cls, csv_out: bool, json_out: bool) -> "Output":
        if csv_out and json_out:
            raise typer.BadParameter(_("--csv or --json, not both"))
        return cls(csv_out, json_out)

    @property
    def machine(self) -> bool:
        return self.csv or self.json


def _json_value(text: str) -> str | int | float | None:
    """A cell as JSON: what CSV writes as a number is a number, an empty cell null."""
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def emit(
    title: str,
    header: Sequence[str],
    rows: Sequence[tuple[str, ...]],
    out: Output,
    whole: Collection[str] | None = None,
    labels: Sequence[str] | None = None,
) -> None:
    """The rows as `out` says; in a table the columns named in `whole` never fold (by
    default, every column but a unit's). `header` names the columns for programs (CSV and
    JSON keys, stable in every language); `labels`, when given, titles them for people."""
    if out.json:
        listed = [{k: _json_value(v) for k, v in zip(header, row, strict=True)} for row in rows]
        print(json.dumps(listed, ensure_ascii=False, indent=2))
        return
    if out.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(header)
        writer.writerows(rows)
        return
    table = Table(title=title)
    for name, label in zip(header, labels or header, strict=True):
        table.add_column(label, no_wrap=name in whole if whole is not None else name != "unit")
    for row in rows:
        table.add_row(*map(escape, row))
    console.print(table)
