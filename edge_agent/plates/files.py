"""The camera's plate reader on photos and video files, for `edge-agent plates read`
(edge_agent/cli/plates.py, which imports this only when it runs: OpenCV and ONNX Runtime
come with the vision extra, which only camera poles install).

A technician aiming a camera records a clip or takes a still and sees what the box would
read from it, with the same reader, settings and tracker as the camera path
(`sources/camera.py`), so what this prints is what the camera would report. A photo gives
one line with every plate in it; a video gives one line per vehicle, decided by the
tracker's vote over the frames it was seen in. With `--json` each line is one JSON
object for scripts (and for the collector's reading of citizens' photos).

A file that cannot be read is reported on stderr and the others are still read; the exit
status then says that some were not.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import cv2
import numpy as np
from numpy.typing import NDArray
from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors
from rich.console import Console
from rich.markup import escape

from edge_agent.config import CameraSettings
from edge_agent.i18n import _
from edge_agent.plates.detector import BUILTIN, PlateModelError
from edge_agent.plates.ocr import ModelMissingError
from edge_agent.plates.reader import PlateReader
from edge_agent.plates.tracker import PlateEvent, PlateTracker, Sighting
from edge_agent.sources.camera import build_reader, jpeg_crop, plate_crop
from iotwire.plate_formats import Colour, Plate

Image = NDArray[np.uint8]
Box = tuple[int, int, int, int]
# What ONNX Runtime raises for a model file it cannot load: its own classes, not OSError.
MODEL_ERRORS = (
    OSError,
    ValueError,
    RuntimeError,
    ort_errors.Fail,
    ort_errors.InvalidArgument,
    ort_errors.InvalidGraph,
    ort_errors.InvalidProtobuf,
    ort_errors.NoSuchFile,
)

UNDECODABLE = _("neither an image nor a video this box can decode")

errors = Console(stderr=True)


class UnreadableError(Exception):
    """A file that is neither an image nor a video this box can decode."""


@dataclass(frozen=True)
class Read:
    """One plate as printed: from a photo, or a vehicle's decided plate in a video."""

    plate: Plate
    confidence: float
    box: Box
    colour: Colour | None
    crop: str | None = None  # base64 JPEG, with --crops

    def as_json(self) -> dict[str, object]:
        x, y, w, h = self.box
        found: dict[str, object] = {
            "plate": self.plate.canonical,
            "display": self.plate.display,
            "confidence": round(self.confidence, 3),
            "box": [x, y, x + w, y + h],
            "colour": self.colour.value if self.colour else None,
        }
        if self.crop is not None:
            found["crop_jpeg_b64"] = self.crop
        return found

    def as_text(self) -> str:
        x, y, w, h = self.box
        colour = self.colour.value if self.colour else "colour unknown"
        return f"{self.plate.display} ({self.confidence:.2f}, {colour}, at {x},{y}-{x + w},{y + h})"


def _image(path: Path) -> Image | None:
    """The file as an image, or None if it is not one. Opened here first, so a file that
    cannot be read says why rather than looking like a non-image; only a file whose
    header is an image format's is decoded as one, so a video is not read whole."""
    with path.open("rb") as file:
        if not file.read(1):
            raise UnreadableError(_("an empty file"))
    if not cv2.haveImageReader(str(path)):
        return None
    image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise UnreadableError(UNDECODABLE)
    return cast(Image, image)


def _frames(path: Path) -> Iterator[tuple[float, Image]]:
    """A video's frames with their time in seconds from its start."""
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise UnreadableError(UNDECODABLE)
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok or frame is None:
                break
            yield index / fps, cast(Image, frame)
            index += 1
        if index == 0:
            raise UnreadableError(UNDECODABLE)
    finally:
        capture.release()


def _events(reader: PlateReader, settings: CameraSettings, path: Path) -> list[PlateEvent]:
    """Each vehicle's event, as `camera.watch_camera` decides them, but with every frame
    read rather than only those a live camera has time for: a file does not move on."""
    tracker = PlateTracker(settings.gap_s, settings.repeat_after_s, settings.min_frames)
    events: list[PlateEvent] = []
    for number, (at, frame) in enumerate(_frames(path)):
        whole = number % settings.full_frame_every == 0
        candidates = reader.read(frame, [] if whole else tracker.regions())
        sightings = [
            Sighting(c.plate, c.confidence, c.box, c.colour, at, plate_crop(frame, c.box))
            for c in candidates
        ]
        events += tracker.update(sightings, at)
    return events + tracker.flush()


def _print(path: Path, reads: list[Read], as_json: bool, extra: dict[str, object]) -> None:
    if as_json:
        print(
            json.dumps(
                {"file": str(path), **extra, "plates": [r.as_json() for r in reads]},
                ensure_ascii=False,
            ),
            flush=True,
        )
        return
    where = (
        _("{path} at {seconds} s").format(path=path, seconds=f"{extra['time_s']:.1f}")
        if "time_s" in extra
        else str(path)
    )
    found = "; ".join(r.as_text() for r in reads) or _("no plate")
    votes = (
        " " + _("[{votes} of {frames} frames]").format(votes=extra["votes"], frames=extra["frames"])
        if "votes" in extra
        else ""
    )
    print(f"{where}: {found}{votes}", flush=True)


def _read_file(
    reader: PlateReader, settings: CameraSettings, path: Path, as_json: bool, crops: bool
) -> None:
    if path.is_dir():
        raise UnreadableError(_("a directory: give the files in it"))
    image = _image(path)
    max_bytes = settings.crop_max_kb * 1024
    if image is not None:
        reads = [
            Read(
                c.plate,
                c.confidence,
                c.box,
                c.colour,
                jpeg_crop(plate_crop(image, c.box), max_bytes) if crops else None,
            )
            for c in reader.read(image)
        ]
        _print(path, reads, as_json, {})
        return
    events = _events(reader, settings, path)
    if not events:
        _print(path, [], as_json, {})
    for event in events:
        best = event.best
        crop = jpeg_crop(best.crop, max_bytes) if crops else None
        read = Read(best.plate, event.confidence, best.box, best.colour, crop)
        extra: dict[str, object] = {
            "time_s": round(best.at, 2),
            "votes": event.votes,
            "frames": event.frames,
        }
        _print(path, [read], as_json, extra)


def _error(message: str) -> None:
    label = _("error:")
    errors.print(f"[red]{label}[/red] {escape(message)}", highlight=False, soft_wrap=True)


def read_files(
    paths: list[Path],
    settings: CameraSettings,
    as_json: bool,
    crops: bool,
) -> int:
    """Read the plates in photos and videos, as a camera with these settings would: one
    line per photo, one line per vehicle in a video; the exit status: 2 when the models
    would not load, 1 when a file could not be read."""
    models = (settings.detector, settings.ocr.det_model, settings.ocr.rec_model)
    for model in models:
        if model is not None and model.name != BUILTIN and not model.is_file():
            _error(_("model {model}: no such file").format(model=model))
            return 2
    try:
        reader = build_reader(settings)
    except (ModelMissingError, PlateModelError) as exc:
        _error(str(exc))
        return 2
    except MODEL_ERRORS as exc:
        _error(_("the plate reader's models would not load: {why}").format(why=exc))
        return 2
    failed = 0
    for path in paths:
        try:
            _read_file(reader, settings, path, as_json, crops)
        except (UnreadableError, OSError, cv2.error) as exc:
            failed += 1
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            _error(f"{path}: {reason}")
    return 1 if failed else 0
