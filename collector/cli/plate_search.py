"""`collector plates search`: the police API's plate search on the command line, audited
under the officer named with `--by`."""

import base64
import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from collector.cli.common import ConfigOption, parse_when, settings_of, when_text
from collector.cli.police import WHEN_HELP, ByOption, alert_settings, police_db
from collector.fleet.registry import RegisteredDevice, Registry
from collector.i18n import _
from collector.police.areas import AreaError, parse_area
from collector.police.search import MAX_RESULTS, PlateQuery, SearchError, Sighting, scope, search
from iotruntime.console import CsvOption, JsonOption, Output, console, emit, fail

plates_app = typer.Typer(
    no_args_is_help=True, help=_("Plate reads: where and when a plate was seen.")
)


@contextlib.contextmanager
def _registry(config: Path) -> Iterator[Registry | None]:
    settings = settings_of(config)
    registry = Registry(settings.registry.path) if settings.registry else None
    try:
        yield registry
    finally:
        if registry is not None:
            registry.close()


@plates_app.command(
    "search", help=_("Where and when a plate was seen, newest first; the search is audited.")
)
def plates_search(
    config: ConfigOption,
    plate: Annotated[
        str, typer.Argument(help=_("51F-123.45, or with wildcards: 51F-12?.?5, *6273"))
    ],
    purpose: Annotated[str, typer.Option(help=_("why: the case number or report reference"))],
    by: ByOption,
    fuzzy: Annotated[
        bool, typer.Option(help=_("also plates one OCR confusion or one character away"))
    ] = False,
    since: Annotated[str | None, typer.Option(help=WHEN_HELP)] = None,
    until: Annotated[str | None, typer.Option(help=WHEN_HELP)] = None,
    site: Annotated[list[str] | None, typer.Option(help=_("site id (repeatable)"))] = None,
    device: Annotated[list[str] | None, typer.Option(help=_("camera box (repeatable)"))] = None,
    camera: Annotated[str | None, typer.Option(help=_("the camera's name on its box"))] = None,
    area: Annotated[
        str | None, typer.Option(help=_("a polygon: lat,lon;lat,lon;lat,lon..."))
    ] = None,
    route: Annotated[bool, typer.Option(help=_("oldest first: the plate's way across"))] = False,
    limit: Annotated[
        int, typer.Option(min=1, max=MAX_RESULTS, help=_("at most this many sightings"))
    ] = 200,
    crops: Annotated[
        Path | None, typer.Option(help=_("write each sighting's crop as a JPEG into this folder"))
    ] = None,
    csv_out: CsvOption = False,
    json_out: JsonOption = False,
) -> None:
    out = Output.of(csv_out, json_out)
    now = datetime.now(UTC)
    settings = alert_settings(config)
    with _registry(config) as registry:
        try:
            where = parse_area(area) if area else None
            devices = scope(registry, site or (), device or (), where)
        except (SearchError, AreaError) as exc:
            raise fail(exc) from None
        query = PlateQuery(
            plate,
            purpose,
            fuzzy=fuzzy,
            since=parse_when(since, now) if since else None,
            until=parse_when(until, now) if until else None,
            devices=devices,
            camera=camera,
            oldest_first=route,
            limit=limit,
            filters={
                k: v
                for k, v in {"site": site, "device": device, "camera": camera, "area": area}.items()
                if v
            },
        )
        with police_db(config) as db:
            try:
                found = search(db, query, by, settings.reads_days, now)
            except SearchError as exc:
                raise fail(exc) from None
        poles = {d: registry.get(d) if registry else None for d in {s.device for s in found}}
    if crops is not None:
        _write_crops(crops, found)
    rows = [
        (
            when_text(s.ts, out.machine),
            s.display,
            s.match.value,
            _pole(poles[s.device], s.device),
            _where(poles[s.device]),
            s.camera,
            f"{s.confidence:.2f}",
        )
        for s in found
    ]
    header = ("time", "plate", "match", "pole", "lat,lon", "camera", "confidence")
    labels = (
        _("time"),
        _("plate"),
        _("match"),
        _("pole"),
        _("lat,lon"),
        _("camera"),
        _("confidence"),
    )
    title = _("{count} sighting(s) of {plate}").format(count=len(rows), plate=plate)
    emit(title, header, rows, out, labels=labels)


def _pole(pole: RegisteredDevice | None, device: str) -> str:
    return pole.name if pole else device


def _where(pole: RegisteredDevice | None) -> str:
    location = pole.location if pole else None
    return f"{location.lat:.5f},{location.lon:.5f}" if location else ""


def _write_crops(folder: Path, found: list[Sighting]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for s in found:
        if s.crop_jpeg_b64:
            name = f"{s.ts:%Y%m%dT%H%M%S}-{s.device}-{s.seq}-{s.plate}.jpg"
            (folder / name).write_bytes(base64.b64decode(s.crop_jpeg_b64))
            written += 1
    console.print(
        _("{count} crop(s) written to {folder}").format(count=written, folder=folder),
        highlight=False,
    )
