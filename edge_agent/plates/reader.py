"""Find and read plates in a frame with ONNX Runtime: text lines, then plates from lines.

The default models are PP-OCR's text detector and recogniser (`ocr.py`), shipped inside
the `rapidocr-onnxruntime` package, so nothing is downloaded on a pole. A plate is one text
row that parses as a plate, or two rows stacked one above the other (a motorbike's, or a
two-row car plate's) that parse together: reading rows separately and pairing them by
geometry is what lets two-row plates, the common case here, read as well as one-row
ones. With a plate detector configured (the shipped one, `detector.py`, or a YOLO-layout
model, `yolo.py`), text is looked for only inside the boxes it finds.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from edge_agent.plates.colour import plate_colour
from edge_agent.plates.ocr import Runtime, TextDetector, TextRecogniser
from iotwire.plate_formats import Colour, Plate, PlateError, parse_plate

Image = NDArray[np.uint8]
Box = tuple[int, int, int, int]


class PlateFinder(Protocol):
    """A plate detector: the shipped one (`detector.py`) or a YOLO-layout model of the
    user's own (`yolo.py`)."""

    def regions(self, frame: Image) -> list[Box]: ...


@dataclass(frozen=True)
class TextLine:
    box: Box
    text: str
    score: float

    @property
    def centre_x(self) -> float:
        return self.box[0] + self.box[2] / 2


@dataclass(frozen=True)
class PlateCandidate:
    """One plate read in one frame."""

    plate: Plate
    confidence: float
    box: Box
    colour: Colour | None
    rows: tuple[str, ...]


@dataclass(frozen=True)
class OcrOptions:
    runtime: Runtime = field(default_factory=Runtime)
    side_px: int = 576
    min_score: float = 0.5
    det_model: Path | None = None
    rec_model: Path | None = None


def _union(a: Box, b: Box) -> Box:
    x0, y0 = min(a[0], b[0]), min(a[1], b[1])
    x1, y1 = max(a[0] + a[2], b[0] + b[2]), max(a[1] + a[3], b[1] + b[3])
    return x0, y0, x1 - x0, y1 - y0


def stacked(top: TextLine, bottom: TextLine) -> bool:
    """`bottom` sits right under `top`, as a plate's second row does."""
    height = max(top.box[3], bottom.box[3])
    gap = bottom.box[1] - (top.box[1] + top.box[3])
    width = max(top.box[2], bottom.box[2])
    return (
        -0.5 * height <= gap <= 1.0 * height and abs(top.centre_x - bottom.centre_x) < 0.35 * width
    )


def group_plates(lines: Sequence[TextLine]) -> list[tuple[Plate, float, Box, tuple[str, ...]]]:
    """Plates from text rows: pairs of stacked rows and single rows that parse, the most
    confident first, each row used once."""
    found: list[tuple[float, Plate, Box, tuple[int, ...], tuple[str, ...]]] = []
    for i, top in enumerate(lines):
        for j, bottom in enumerate(lines):
            if i != j and stacked(top, bottom):
                try:
                    plate = parse_plate(f"{top.text}\n{bottom.text}")
                except PlateError:
                    continue
                score = min(top.score, bottom.score)
                found.append(
                    (score, plate, _union(top.box, bottom.box), (i, j), (top.text, bottom.text))
                )
        try:
            plate = parse_plate(top.text.replace(" ", ""))
        except PlateError:
            continue
        found.append((top.score, plate, top.box, (i,), (top.text,)))
    # Two rows that parse together beat either row alone.
    found.sort(key=lambda f: (len(f[3]), f[0]), reverse=True)
    used: set[int] = set()
    plates = []
    for score, plate, box, members, rows in found:
        if used.isdisjoint(members):
            used.update(members)
            plates.append((plate, score, box, rows))
    return plates


def _clip(box: Box, width: int, height: int) -> Box:
    x0, y0 = max(0, box[0]), max(0, box[1])
    x1, y1 = min(width, box[0] + box[2]), min(height, box[1] + box[3])
    return x0, y0, x1 - x0, y1 - y0


class PlateReader:
    def __init__(self, options: OcrOptions, detector: PlateFinder | None = None) -> None:
        self._options = options
        self._detector = detector
        self._text = TextDetector(options.runtime, options.det_model)
        self._words = TextRecogniser(options.runtime, options.rec_model)

    def lines(self, image: Image, scale: float, offset: tuple[int, int] = (0, 0)) -> list[TextLine]:
        """Every text row in `image`, read, in the coordinates of the frame it came from.
        Rows are found on the image at `scale` and read at full resolution."""
        boxes = [b for b in self._text.detect(image, scale) if b[2] and b[3]]
        rows = [image[y : y + h, x : x + w] for x, y, w, h in boxes]
        return [
            TextLine((x + offset[0], y + offset[1], w, h), text, score)
            for (x, y, w, h), (text, score) in zip(boxes, self._words.read(rows), strict=True)
            if score >= self._options.min_score
        ]

    def read(self, frame: Image, regions: Sequence[Box] = ()) -> list[PlateCandidate]:
        """The plates in `frame`. With `regions` (where plates were just seen), text is
        looked for only there, at the frame's scale: a fraction of the frame's cost, while
        a vehicle is in view. A plate detector's boxes are searched at full resolution."""
        height, width = frame.shape[:2]
        scale = min(1.0, self._options.side_px / max(height, width))
        if regions:
            areas = [_clip(r, width, height) for r in regions]
        elif self._detector is not None:
            areas, scale = self._detector.regions(frame), 1.0
        else:
            areas = [(0, 0, width, height)]
        lines = []
        for x, y, w, h in areas:
            if w > 0 and h > 0:
                lines += self.lines(frame[y : y + h, x : x + w], scale, (x, y))
        return [
            PlateCandidate(plate, score, box, plate_colour(frame, box), rows)
            for plate, score, box, rows in group_plates(lines)
        ]
