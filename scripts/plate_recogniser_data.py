"""Training rows for the plate recogniser: generated plates cut as the reader cuts them.

Each plate is lettered in the TRAINING style's faces (never HELD_OUT's, which the
benchmark reads) and in the narrow sans faces of a few Debian font packages (DIN, the
plates' own model, among them; `make plate-recogniser` installs them), narrowed or
widened, thickened or thinned, pasted rolled
by up to 20 degrees and in perspective onto a patch of a TRAINING backdrop at the sizes a
pole camera sees, degraded (night, glare, blur, noise, JPEG), then straightened and cut
into rows by `edge_agent.plates.rectify` from a box as loose as a detector's, the rows
trimmed to their lettering or whole (the reader reads both). The network
so learns from the rows it will be given, mistakes of the cut included. A plate cut into
another number of rows than it has is left out: its rows have no labels. Everything
follows from a seed.
"""

import random
from multiprocessing import Pool
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray
from plate_detector_data import _degrade

from edge_agent.plates.recogniser import prepare
from edge_agent.plates.rectify import rectify
from iotwire.plate_formats import SERIES_LETTERS, SPECIAL_SERIES, Colour, Plate, parse_plate
from testbed.plate_scenes import (
    MAX_TILT_DEGREES,
    TRAINING,
    Layout,
    _paste,
    _rows,
    random_plate,
    render_plate,
)
from testbed.street_clutter import backdrop

Row = tuple[NDArray[np.float32], str]
DEBIAN_FONTS = Path("/usr/share/fonts")
# Faces of Debian's fonts-opendin, fonts-liberation, fonts-roboto-unhinted and fonts-b612:
# the real plates are lettered in a narrow DIN-like sans, which DejaVu's faces are not.
NARROW_SANS = tuple(
    str(DEBIAN_FONTS / face)
    for face in (
        "truetype/liberation/LiberationSansNarrow-Regular.ttf",
        "truetype/liberation/LiberationSansNarrow-Bold.ttf",
        "truetype/liberation/LiberationSans-Regular.ttf",
        "truetype/roboto/unhinted/RobotoCondensed-Regular.ttf",
        "truetype/roboto/unhinted/RobotoCondensed-Medium.ttf",
        "truetype/roboto/unhinted/RobotoCondensed-Bold.ttf",
        "opentype/b612/B612-Regular.otf",
    )
)
OPEN_DIN = str(DEBIAN_FONTS / "truetype/opendin/OSP-DIN.ttf")  # has no Đ
# TRAINING's faces, three more DejaVu ones and the narrow sans faces: none of them letters
# the benchmark's streets.
FONTS = (
    *TRAINING.fonts,
    "DejaVuSans.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSerif-Bold.ttf",
    *NARROW_SANS,
    OPEN_DIN,
)
FONTS_WITH_D_STROKE = tuple(face for face in FONTS if face != OPEN_DIN)
WIDTH_PX = {
    Layout.CAR_ONE_ROW: (100, 340),
    Layout.CAR_TWO_ROWS: (75, 260),
    Layout.MOTORBIKE: (65, 200),
}
# Of the plate's lettering inside the cut: below it the cut lost characters the label has.
MIN_COVERED = 0.95
COLOURS = (Colour.WHITE,) * 4 + (Colour.YELLOW, Colour.YELLOW, Colour.BLUE, Colour.RED)


def _plate(rng: random.Random, layout: Layout) -> Plate:
    """Mostly the generator's plates, with trailers (R) and the special series a tenth of
    the time each on cars."""
    if layout is Layout.MOTORBIKE or rng.random() < 0.8:
        return random_plate(rng, layout)
    province = f"{rng.randint(11, 99)}"
    series = "R" if rng.random() < 0.5 else rng.choice(sorted(SPECIAL_SERIES))
    if rng.random() < 0.1:
        series = rng.choice(sorted(SERIES_LETTERS))
    number = f"{rng.randint(0, 99999):05d}"
    newline = "\n" if layout is Layout.CAR_TWO_ROWS else ""
    return parse_plate(f"{province}{series}{newline}{number}", typed=True)


def _stroke(rng: random.Random, face: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """The lettering made bolder or thinner by a pixel or two: faces differ in weight."""
    choice = rng.random()
    if choice < 0.5:
        return face
    kernel = np.ones((rng.choice((2, 3)),) * 2, np.uint8)
    return cv2.erode(face, kernel) if choice < 0.75 else cv2.dilate(face, kernel)


def _corners(
    rng: random.Random, centre: tuple[float, float], size: tuple[float, float]
) -> NDArray[np.float32]:
    (cx, cy), (pw, ph) = centre, size
    half = np.array([[-pw, -ph], [pw, -ph], [pw, ph], [-pw, ph]], np.float32) / 2
    skew = 0.25 if rng.random() < 0.3 else 0.08
    half += np.array(
        [
            [rng.uniform(-skew, skew) * pw * 0.2, rng.uniform(-skew, skew) * pw * 0.3]
            for _ in "1234"
        ],
        np.float32,
    )
    angle = np.radians(rng.uniform(-MAX_TILT_DEGREES, MAX_TILT_DEGREES))
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return (half @ rotation.T + [cx, cy]).astype(np.float32)


def _loose_box(rng: random.Random, corners: NDArray[np.float32]) -> tuple[int, int, int, int]:
    """The plate's upright box with each side off by up to a tenth of its size."""
    x0, y0 = corners.min(axis=0)
    x1, y1 = corners.max(axis=0)
    w, h = x1 - x0, y1 - y0
    x0, x1 = x0 + rng.uniform(-0.1, 0.1) * w, x1 + rng.uniform(-0.1, 0.1) * w
    y0, y1 = y0 + rng.uniform(-0.1, 0.1) * h, y1 + rng.uniform(-0.1, 0.1) * h
    return int(x0), int(y0), max(1, int(x1 - x0)), max(1, int(y1 - y0))


def _covered(cut: NDArray[np.float32], plate: NDArray[np.float32]) -> float:
    """How much of the plate's lettered inside (the plate shrunk by a fifth towards its
    centre) the cut holds."""
    centre = plate.mean(axis=0)
    inside = (centre + (plate - centre) * 0.8).astype(np.float32)
    held, _ = cv2.intersectConvexConvex(cut.astype(np.float32), inside)
    return float(held / max(cv2.contourArea(inside), 1.0))


def _motion_blur(rng: random.Random, image: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """A camera's motion blur: 3 to 11 px along a line near the horizontal, as a vehicle
    passing a pole's camera leaves it."""
    size = rng.choice((3, 5, 7, 9, 11))
    kernel = np.zeros((size, size), np.float32)
    kernel[size // 2, :] = 1 / size
    turn = cv2.getRotationMatrix2D((size / 2 - 0.5, size / 2 - 0.5), rng.uniform(-20, 20), 1)
    blurred = cv2.filter2D(image, -1, cv2.warpAffine(kernel, turn, (size, size)))
    return np.asarray(blurred, np.uint8)


def generate(seed: int) -> list[Row]:
    """The labelled rows of one plate drawn from `seed` (none when the cut fails)."""
    rng = random.Random(seed)  # noqa: S311 - generated plates, the same for a seed
    layout = rng.choice(tuple(Layout))
    plate = _plate(rng, layout)
    labels = _rows(plate, layout)
    fonts = FONTS_WITH_D_STROKE if "Đ" in "".join(labels) else FONTS
    face = render_plate(plate, layout, rng.choice(COLOURS), rng, fonts, rng.uniform(0.7, 1.15))
    face = _stroke(rng, face)
    fh, fw = face.shape[:2]
    pw = rng.uniform(*WIDTH_PX[layout])
    ph = pw * fh / fw
    width, height = int(pw * 2.2), int(ph * 3 + pw * 0.4)
    patch = backdrop(rng, rng.choice(TRAINING.backdrops), width, height)
    corners = _corners(rng, (width / 2, height / 2), (pw, ph))
    _paste(patch, face, corners)
    if rng.random() < 0.3:
        patch = _motion_blur(rng, patch)
    patch = _degrade(rng, patch)
    cut = rectify(patch, _loose_box(rng, corners))
    if len(cut.rows) != len(labels) or _covered(cut.quad, corners) < MIN_COVERED:
        return []
    plate_rows = cut.rows if rng.random() < 0.5 else cut.whole_rows
    return [
        (prepare(row), label.replace("Đ", "D"))
        for row, label in zip(plate_rows, labels, strict=True)
    ]


def generate_all(seed: int, count: int, processes: int = 2) -> list[Row]:
    """The rows of `count` plates, seeds `seed` onwards."""
    with Pool(processes) as pool:
        return [
            row
            for rows in pool.imap(generate, range(seed, seed + count), chunksize=64)
            for row in rows
        ]
