"""`collector photos`: a citizen's photo read for plates and a plate from it put on the
watchlist, from the duty desk's command line (the police API's photo endpoints)."""

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from collector.cli.common import ConfigOption
from collector.cli.police import ByOption, police_db
from collector.i18n import _
from collector.police.photos import PhotoError, Photos, ReaderUnavailableError
from collector.police.watchlist import Priority, WatchlistError
from iotruntime.console import Output, console, emit, fail

photos_app = typer.Typer(no_args_is_help=True, help=_("Citizens' photos: the plates in them."))


@photos_app.command(
    "upload",
    help=_("Read a photo with the poles' plate reader and keep it with the case (audited)."),
)
def photos_upload(
    config: ConfigOption,
    photo: Annotated[Path, typer.Argument(help=_("the photo (JPEG, PNG or WebP)"))],
    case: Annotated[str, typer.Option(help=_("the case number or report reference"))],
    by: ByOption,
) -> None:
    try:
        image = photo.read_bytes()
    except OSError as exc:
        raise fail(ValueError(f"{photo}: {exc.strerror}")) from None
    with police_db(config) as db:
        try:
            found = Photos(db).upload(image, by, case)
        except (PhotoError, ReaderUnavailableError) as exc:
            raise fail(exc) from None
    rows = [
        (p.display, p.plate, f"{p.confidence:.2f}", p.colour or "", ",".join(map(str, p.box)))
        for p in found.plates
    ]
    emit(
        _("photo {photo}: {count} plate(s)").format(photo=found.id, count=len(rows)),
        ("plate", "canonical", "confidence", "colour", "box"),
        rows,
        Output(),
        labels=(_("plate"), _("canonical"), _("confidence"), _("colour"), _("box")),
    )


@photos_app.command(
    "watch",
    help=_("Put a plate read in the photo on the watchlist, naming the case and the photo."),
)
def photos_watch(
    config: ConfigOption,
    photo_id: Annotated[str, typer.Argument(help=_("the photo's id, from upload"))],
    plate: Annotated[str, typer.Argument(help=_("one of the plates read in it"))],
    by: ByOption,
    reason: Annotated[str, typer.Option(help=_("why the plate is watched"))] = "",
    priority: Annotated[Priority, typer.Option(help=_("how urgent an alert is"))] = Priority.HIGH,
) -> None:
    with police_db(config) as db:
        try:
            entry = Photos(db).watch(photo_id, plate, reason, by, priority)
        except (PhotoError, WatchlistError) as exc:
            raise fail(exc) from None
    console.print(
        _("watching {plate}: {reason}").format(plate=entry.display, reason=escape(entry.reason)),
        highlight=False,
    )
