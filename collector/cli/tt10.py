"""`collector tt10`: what the uploader of the Circular 10/2021 station data files has sent
to the authority, and sending files again when the authority asks for them."""

import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from collector.cli.common import ConfigOption, parse_when, settings_of
from collector.config import CollectorConfig, Tt10Settings, Tt10UploadSettings
from collector.i18n import _
from collector.tt10.ledger import Ledger, UploadStatus
from iotruntime.console import console, fail

tt10_app = typer.Typer(
    no_args_is_help=True, help=_("Station data files sent to the authority (Circular 10/2021).")
)


def _upload_settings(settings: CollectorConfig) -> tuple[Tt10Settings, Path]:
    tt10 = settings.tt10
    if tt10 is None or tt10.ledger_path is None:
        raise fail(ValueError(_("collector tt10 needs a tt10 section with an upload section")))
    return tt10, tt10.ledger_path


def _when(value: datetime | None) -> str:
    return value.astimezone().isoformat(timespec="seconds") if value else _("never")


@tt10_app.command(
    "status",
    help=_(
        "The link to the authority's server (ok, or retrying after which error and until"
        " when) and the files sent, waiting, and held because they changed after sending, as"
        " the running collector last recorded them."
    ),
)
def status(
    config: ConfigOption,
    as_json: Annotated[
        bool, typer.Option("--json", help=_("one JSON object, for a display"))
    ] = False,
) -> None:
    tt10, path = _upload_settings(settings_of(config))
    ledger = Ledger(path)
    try:
        state = ledger.status()
    finally:
        ledger.close()
    if as_json:
        console.print_json(json.dumps(asdict(state), default=str))
        return
    if tt10.upload is not None:
        _print_status(tt10.upload, state)


def _print_status(upload: Tt10UploadSettings, state: UploadStatus) -> None:
    link = state.link
    where = f"{upload.protocol}://{upload.host}:{upload.port}/{upload.remote_dir}"
    line = _("upload to {where}: {state}, last file taken {when}").format(
        where=where, state=link.state, when=_when(link.last_success)
    )
    if link.state == "retrying":
        line += _("; {failures} failed attempt(s), last: {error}; next try {when}").format(
            failures=link.failures, error=link.last_error, when=_when(link.next_attempt)
        )
    console.print(escape(line), highlight=False)
    if state.oldest_pending:
        files = _("files: {sent} sent, {pending} waiting, oldest interval {oldest}, {held} held")
    else:
        files = _("files: {sent} sent, {pending} waiting, {held} held")
    console.print(
        files.format(
            sent=state.sent, pending=state.pending, oldest=state.oldest_pending, held=state.held
        ),
        highlight=False,
    )
    if state.held:
        console.print(
            _(
                "held (changed after they were sent; `collector tt10 resend --file NAME` sends"
                " the new content under the same name):"
            ),
            highlight=False,
        )
        for name in state.held_names:
            console.print(f"  {escape(name)}", highlight=False)


@tt10_app.command(
    "resend",
    help=_(
        "Mark files to be sent again, by name or from a time on (an ISO 8601 time, or a"
        " duration like 2h or 3d ago); the running collector sends them at its next look."
    ),
)
def resend(
    config: ConfigOption,
    file: Annotated[
        list[str] | None,
        typer.Option("--file", help=_("a file name to send again (repeatable)")),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help=_("send again every file of an interval ending at or after this time")),
    ] = None,
) -> None:
    settings = settings_of(config)
    tt10, path = _upload_settings(settings)
    names = file or []
    if not names and since is None:
        raise fail(ValueError(_("say which files: --file NAME or --since TIME")))
    stamp = None
    if since is not None:
        when = parse_when(since, datetime.now(UTC))
        stamp = when.astimezone(settings.export.zone).strftime("%Y%m%d%H%M%S")
    ledger = Ledger(path)
    try:
        ledger.scan(tt10.directory)
        marked = ledger.resend(names, stamp)
    finally:
        ledger.close()
    unknown = sorted(set(names) - set(marked))
    if unknown:
        if marked:
            problem = _(
                "not a station data file in {folder}: {names} ({count} other file(s) marked)"
            )
        else:
            problem = _("not a station data file in {folder}: {names}")
        listed = ", ".join(unknown)
        raise fail(
            ValueError(problem.format(folder=tt10.directory, names=listed, count=len(marked)))
        )
    console.print(
        _("{count} file(s) marked to be sent again").format(count=len(marked)), highlight=False
    )
