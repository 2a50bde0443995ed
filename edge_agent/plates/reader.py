"""Find and read plates in a frame with ONNX Runtime: text lines, then plates from lines.

The default models are PP-OCR's text detector and recogniser (`ocr.py`), shipped inside
the `rapidocr-onnxruntime` package, so nothing is downloaded on a pole. A plate is one text
row that parses as a plate, or two rows stacked one above the other (a motorbike's, or a
two-row car plate's) that parse together: reading rows separately and pairing them by
geometry is what lets two-row plates, the common case here, read as well as one-row
ones. With a plate detector configured (the shipped one, `detector.py`, or a YOLO-layout
model, `yolo.py`), each plate it finds is first straightened and cut into its rows by its
own geometry (`rectify.py`) and read row by row; a plate that does not read that way is
searched for text inside its box as before. A tilted text row found without a detector is
read straightened along its own rotated rectangle.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from edge_agent.plates.colour import plate_colour
from edge_agent.plates.ocr import RowRead, Runtime, TextBox, TextDetector, TextRecogniser
from edge_agent.plates.rectify import Quad, cuts, quad_size, warp
from iotwire.plate_formats import Colour, Plate, PlateError, Vehicle, parse_plate, parse_row

Image = NDArray[np.uint8]
Box = tuple[int, int, int, int]
MAX_TILTED_RETRIES = 4
SURE = 0.9
# A tracked plate's read is one vote among its frames' (`tracker.py`): a less sure one
# spares the region's text search.
TRACKED_SURE = 0.7
# The second look's detector score floor, below the detector's own 0.4: a plate in an
# unfamiliar lettering scores 0.2-0.4, and an unsure box costs a few milliseconds.
SECOND_LOOK_MIN_SCORE = 0.2
# Below this score a second-look box's read stands only when it reads as a plate is
# printed (`printed_as_plate`): in boxes the detector doubts, the reads that parsed but
# were not were shop signs' numbers ('1900 7782' read as 88B / 19007).
DOUBTED_BELOW = 0.4


class RowReader(Protocol):
    """A recogniser of straightened rows: PP-OCR's (`ocr.py`) or the plate one
    (`recogniser.py`)."""

    def recognise(self, rows: Sequence[Image]) -> list[RowRead]: ...


class PlateFinder(Protocol):
    """A plate detector: the shipped one (`detector.py`) or a YOLO-layout model of the
    user's own (`yolo.py`)."""

    def regions(self, frame: Image) -> list[Box]: ...


class ScoredPlate(Protocol):
    """A detector's plate with the model's score for it."""

    @property
    def box(self) -> Box: ...

    @property
    def score(self) -> float: ...


class ScoringFinder(PlateFinder, Protocol):
    """A plate detector that scores its plates: the shipped one, for the second look."""

    def detect(self, frame: Image) -> Sequence[ScoredPlate]: ...


@dataclass(frozen=True)
class TextLine:
    """A row read: its upright box, and for a tilted row its rotated rectangle's corners
    (top-left first, clockwise), in frame pixels."""

    box: Box
    text: str
    score: float
    quad: Quad | None = None

    @property
    def centre_x(self) -> float:
        return self.box[0] + self.box[2] / 2

    def corners(self) -> NDArray[np.float32]:
        """Its four corners, top-left first, clockwise."""
        if self.quad is not None:
            return self.quad
        x, y, w, h = self.box
        return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float32)

    def turned(self, angle: float) -> "TextLine":
        """This row as seen with the image turned back by `angle` radians: a tilted
        plate's rows, upright, for comparing where they lie."""
        cos, sin = np.cos(angle), np.sin(angle)
        turned = self.corners() @ np.array([[cos, -sin], [sin, cos]], np.float32)
        x0, y0 = turned.min(axis=0)
        x1, y1 = turned.max(axis=0)
        return TextLine((int(x0), int(y0), int(x1 - x0), int(y1 - y0)), self.text, self.score)


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
    """How text is found and read. `rectify` straightens tilted rows and detected plates
    before reading them (`rectify.py`); off, the reader is the upright-only one it
    replaced, which the benchmark measures it against."""

    runtime: Runtime = field(default_factory=Runtime)
    side_px: int = 768
    min_score: float = 0.5
    det_model: Path | None = None
    rec_model: Path | None = None
    rectify: bool = True


def _union(a: Box, b: Box) -> Box:
    x0, y0 = min(a[0], b[0]), min(a[1], b[1])
    x1, y1 = max(a[0] + a[2], b[0] + b[2]), max(a[1] + a[3], b[1] + b[3])
    return x0, y0, x1 - x0, y1 - y0


def stacked(top: TextLine, bottom: TextLine) -> bool:
    """`bottom` sits right under `top`, as a plate's second row does; for tilted rows,
    as seen along the top row (upright boxes of a tilted plate's rows overlap)."""
    tilted = top.quad if top.quad is not None else bottom.quad
    if tilted is not None:
        dx, dy = tilted[1] - tilted[0]
        angle = float(np.arctan2(dy, dx))
        top, bottom = top.turned(angle), bottom.turned(angle)
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
            plate = parse_row(top.text)
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
    def __init__(
        self,
        options: OcrOptions,
        detector: PlateFinder | None = None,
        plate_rows: RowReader | None = None,
        second_look: ScoringFinder | None = None,
    ) -> None:
        self._options = options
        self._detector = detector
        self._text = TextDetector(options.runtime, options.det_model)
        self._words = TextRecogniser(options.runtime, options.rec_model)
        self._recognisers = [r for r in (plate_rows, self._words) if r is not None]
        self._plate_rows = plate_rows
        self._second_look = second_look

    def lines(self, image: Image, scale: float, offset: tuple[int, int] = (0, 0)) -> list[TextLine]:
        """Every text row in `image`, read, in the coordinates of the frame it came from.
        Rows are found on the image at `scale` and read at full resolution, a tilted
        one straightened."""
        straighten = self._options.rectify
        found = [b for b in self._text.detect(image, scale, straighten) if b.box[2] and b.box[3]]
        rows = [self._row(image, b) for b in found]
        reads = self._words.read(rows)
        shift = np.array(offset, np.float32)
        return [
            TextLine(
                (b.box[0] + offset[0], b.box[1] + offset[1], b.box[2], b.box[3]),
                text,
                score,
                None if b.quad is None else b.quad + shift,
            )
            for b, (text, score) in zip(found, reads, strict=True)
            if score >= self._options.min_score
        ]

    def _row(self, image: Image, found: TextBox) -> Image:
        x, y, w, h = found.box
        if found.quad is None:
            return image[y : y + h, x : x + w]
        width, height = quad_size(found.quad)
        return warp(image, found.quad, (max(1, round(width)), max(1, round(height))))

    def read_plate(
        self,
        frame: Image,
        box: Box,
        recognisers: Sequence[RowReader] = (),
        strict: bool = False,
    ) -> PlateCandidate | None:
        """The plate in or around `box` (a detector's box, or a tilted row's) straightened,
        cut into rows by its shape and read row by row, or None when the rows do not read
        as a plate (`strict`: as a plate is printed). Each cut (by the border, the
        lettering, the box) is read with its rows trimmed to their characters and whole
        (a trim can take a character off with the border), by each of `recognisers` (by
        default the plate recogniser, then PP-OCR's); the most confident read that parses
        wins, and once one is SURE the cuts after it are not made."""
        best = None
        readers = recognisers or self._recognisers
        for plate in cuts(frame, box):
            for images, recogniser in product((plate.rows, plate.whole_rows), readers):
                read = self._parsed(recogniser.recognise(images), strict)
                if read is not None and (best is None or read[1] > best[1][1]):
                    best = (plate, read)
            if best is not None and best[1][1] >= SURE:
                break
        if best is None:
            return None
        plate, (parsed, confidence, rows) = best
        height, width = plate.image.shape[:2]
        colour = plate_colour(plate.image, (0, 0, width, height))
        frame_box = _clip(plate.box, frame.shape[1], frame.shape[0])
        return PlateCandidate(parsed, confidence, frame_box, colour, rows)

    def _parsed(
        self, reads: Sequence[RowRead], strict: bool = False
    ) -> tuple[Plate, float, tuple[str, ...]] | None:
        confidence = min(r.confidence for r in reads)
        if confidence < self._options.min_score:
            return None
        rows = tuple(r.text for r in reads)
        try:
            plate = parse_plate("\n".join(rows))
        except PlateError:
            return None
        if strict and not printed_as_plate(plate, rows):
            return None
        return plate, confidence, rows

    def read(self, frame: Image, regions: Sequence[Box] = ()) -> list[PlateCandidate]:
        """The plates in `frame`. With `regions` (where plates were just seen), text is
        looked for only there, at the frame's scale: a fraction of the frame's cost, while
        a vehicle is in view. A plate detector's plates are read straightened, and searched
        for text at full resolution when that does not read."""
        height, width = frame.shape[:2]
        scale = min(1.0, self._options.side_px / max(height, width))
        plates: list[PlateCandidate] = []
        unsure: list[PlateCandidate] = []
        if regions:
            areas = [_clip(r, width, height) for r in regions]
            plates, unsure, areas = self._tracked(frame, areas)
        elif self._detector is not None:
            areas, scale = [], 1.0
            for box in self._detector.regions(frame):
                read = self.read_plate(frame, box) if self._options.rectify else None
                if read is None:
                    areas.append(box)
                else:
                    plates.append(read)
        else:
            areas = [(0, 0, width, height)]
        lines = []
        for x, y, w, h in areas:
            if w > 0 and h > 0:
                lines += self.lines(frame[y : y + h, x : x + w], scale, (x, y))
        plates += [
            PlateCandidate(plate, score, box, plate_colour(frame, box), rows)
            for plate, score, box, rows in group_plates(lines)
        ]
        if self._options.rectify:
            plates += self._tilted_plates(frame, lines, plates)
            if not regions and self._detector is None:
                plates = self._second_looks(frame, plates)
        for read in unsure:
            _settle(plates, read)
        return plates

    def _tracked(
        self, frame: Image, regions: Sequence[Box]
    ) -> tuple[list[PlateCandidate], list[PlateCandidate], list[Box]]:
        """In `regions` (where plates were just seen), the plates read surely from the
        second-look detector's boxes by the plate recogniser, those read less surely, and
        the regions without a sure read, which are searched for text as before (an unsure
        read then stands where the text search reads nothing surer). The detector on the
        whole frame and a recognition a plate cost a third of a text search in the
        regions, and while a vehicle is in view most reads are of this kind."""
        if self._second_look is None or self._plate_rows is None:
            return [], [], list(regions)
        boxes = self._second_look.regions(frame)
        sure: list[PlateCandidate] = []
        unsure: list[PlateCandidate] = []
        searched = []
        for region in regions:
            reads = [
                read
                for box in boxes
                if _covers(region, box)
                and (read := self.read_plate(frame, box, (self._plate_rows,))) is not None
            ]
            if reads and any(read.confidence >= TRACKED_SURE for read in reads):
                sure += reads
            else:
                unsure += reads
                searched.append(region)
        return sure, unsure, searched

    def _second_looks(self, frame: Image, found: list[PlateCandidate]) -> list[PlateCandidate]:
        """`found` after a second look at the plates the second-look detector finds,
        each straightened and read by the plate recogniser alone (a few milliseconds a
        plate). Where the text search read nothing, a plate whose rows the text detector
        missed or cut (small, blurred, two rows run together) is still read, and a sign,
        which the detector seldom takes for a plate, still does not reach the recogniser;
        a box it doubts (below DOUBTED_BELOW) stands only when it reads as printed.
        Where it read a plate less than SURE, the more confident of the two reads stays:
        the text search's unsure reads are its misreads (a series letter next to the dash
        lost, a 7 read as 1)."""
        if self._second_look is None or self._plate_rows is None:
            return found
        plates = list(found)
        for detected in self._second_look.detect(frame):
            box = detected.box
            if any(p.confidence >= SURE and _same_place(p.box, box) for p in plates):
                continue
            strict = detected.score < DOUBTED_BELOW
            read = self.read_plate(frame, box, (self._plate_rows,), strict)
            if read is not None:
                _settle(plates, read)
        return plates

    def _tilted_plates(
        self, frame: Image, lines: Sequence[TextLine], found: Sequence[PlateCandidate]
    ) -> list[PlateCandidate]:
        """Plates around the tilted rows that no plate was read from: a tilted plate's
        rows, each read straightened alone, can still lose a character at an end or
        fail to pair; the plate straightened by its border and cut by its shape reads
        whole. At most MAX_TILTED_RETRIES a frame, each read by the first recogniser
        alone (the plate recogniser when there is one): each costs recognitions."""
        plates: list[PlateCandidate] = []
        tried = 0
        for line in lines:
            if line.quad is None or tried == MAX_TILTED_RETRIES:
                continue
            if any(_covers(p.box, line.box) for p in (*found, *plates)):
                continue
            tried += 1
            read = self.read_plate(frame, line.box, self._recognisers[:1])
            if read is not None:
                plates.append(read)
        return plates


def printed_as_plate(plate: Plate, rows: Sequence[str]) -> bool:
    """The rows were read as the plate is printed: no character corrected, and the dash
    and the number's dot where the plate has them (`51F-123.45`; `51F` over `123.45`;
    `29-B1` over `123.45`). The plate recogniser reads the separators too, and a sign's
    number that parses as a plate seldom has them in those places."""
    if plate.corrections:
        return False
    printed = plate.display.replace("Đ", "D").replace(" ", "")
    if len(rows) == 2 and plate.vehicle is not Vehicle.MOTORBIKE:
        printed = printed.replace("-", "")
    return "".join(rows).replace("Đ", "D") == printed


def _settle(plates: list[PlateCandidate], read: PlateCandidate) -> None:
    """`read` added to `plates` where none of them lies, or in place of the one plate
    there when it is more confident than that plate."""
    near = [i for i, p in enumerate(plates) if _same_place(p.box, read.box)]
    if not near:
        plates.append(read)
    elif len(near) == 1 and read.confidence > plates[near[0]].confidence:
        plates[near[0]] = read


def _same_place(a: Box, b: Box) -> bool:
    """Most of one box lies inside the other: two reads of one plate."""
    return _covers(a, b) or _covers(b, a)


def _covers(outer: Box, inner: Box) -> bool:
    """Most of `inner` lies inside `outer`."""
    w = max(0, min(outer[0] + outer[2], inner[0] + inner[2]) - max(outer[0], inner[0]))
    h = max(0, min(outer[1] + outer[3], inner[1] + inner[3]) - max(outer[1], inner[1]))
    return w * h >= 0.5 * inner[2] * inner[3]
