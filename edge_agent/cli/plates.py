"""`edge-agent plates read`: the camera's plate reader on photos and video files
(edge_agent/plates/files.py).

The reader needs OpenCV and ONNX Runtime, which only camera poles install (the vision
extra): they are imported when the command runs, so `edge-agent` itself starts on every
box, and on one without them this command says what to install.
"""

from pathlib import Path
from typing import Annotated

import typer

from edge_agent.config import CameraSettings, OcrSettings
from edge_agent.i18n import _
from iotruntime.console import fail

plates = typer.Typer(no_args_is_help=True, help=_("Read plates as the cameras do."))


@plates.command(
    "read",
    help=_(
        "Read the plates in photos and videos, as a camera with these ocr settings would:"
        " one line per photo, one line per vehicle in a video."
    ),
)
def read_plates(
    paths: Annotated[list[Path], typer.Argument(help=_("photos and video files"))],
    as_json: Annotated[bool, typer.Option("--json", help=_("one JSON object a line"))] = False,
    crops: Annotated[
        bool, typer.Option("--crops", help=_("with --json, each plate's crop as base64 JPEG"))
    ] = False,
    threads: Annotated[int, typer.Option(min=1, max=16, help=_("ONNX Runtime threads"))] = 2,
    provider: Annotated[
        list[str] | None,
        typer.Option(help=_("ONNX Runtime execution provider, in order; repeat for several")),
    ] = None,
    detector: Annotated[
        Path | None,
        typer.Option(help=_("a plate detector: builtin (shipped), or an ONNX file (YOLO layout)")),
    ] = None,
    side_px: Annotated[
        int,
        typer.Option(min=160, max=4096, help=_("the frame's longer side when looking for text")),
    ] = OcrSettings().side_px,
    min_score: Annotated[
        float, typer.Option(min=0, max=1, help=_("the least confidence a text row is kept at"))
    ] = OcrSettings().min_score,
    det_model: Annotated[Path | None, typer.Option(help=_("a text detector model"))] = None,
    rec_model: Annotated[Path | None, typer.Option(help=_("a text recogniser model"))] = None,
    rectify: Annotated[
        bool, typer.Option(help=_("straighten tilted plates before reading them"))
    ] = OcrSettings().rectify,
    second_look: Annotated[
        bool,
        typer.Option(
            help=_(
                "without --detector, also read the plates the shipped plate detector finds"
                " where the text search read none"
            )
        ),
    ] = OcrSettings().second_look,
) -> None:
    try:
        from edge_agent.plates.files import read_files
    except ImportError as exc:
        raise fail(
            ValueError(
                _(
                    "plates read needs the vision extra (EXTRAS=vision scripts/install-edge.sh):"
                    " {why}"
                ).format(why=exc)
            )
        ) from None
    settings = CameraSettings(
        name="cli",
        url="cli",
        detector=detector,
        ocr=OcrSettings(
            threads=threads,
            providers=tuple(provider or OcrSettings().providers),
            side_px=side_px,
            min_score=min_score,
            det_model=det_model,
            rec_model=rec_model,
            rectify=rectify,
            second_look=second_look,
        ),
    )
    raise typer.Exit(read_files(paths, settings, as_json, crops))
