"""A detected plate straightened to an upright rectangle and cut into its rows.

The recogniser reads one horizontal line of text. A plate rolled by 10 degrees or seen at
an angle gives it a slanted line with the next row's tops and bottoms cut in, and a
two-row plate's upright box holds both rows at once, so the read loses characters or
fails. The plate's own border is the best measure of how it lies: a light plate with a
dark border (or the reverse) is a closed four-sided contour in one of the two
binarisations of the crop, or in its edges, whatever the lettering. Its corners give the
perspective transform to a rectangle of the plate's real shape (Vietnamese plates are
520x110 mm, one row; 330x165 mm, a car's two rows; 190x140 mm, a motorbike's two rows),
so the aspect decides one row or two and a valley of the ink's row profile is where the
two rows part. Without a border (worn, cropped, a detector box that cut it off) the
characters' own rotated bounding rectangle gives the tilt, and failing that the crop is
read as it is.

Needs numpy and OpenCV only: about 5 ms per plate on this project's x86 test machine
(bench/bench_plate_rectify.py), against some 50 ms for the recognition it saves.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import cast

import cv2
import numpy as np
from numpy.typing import NDArray

Image = NDArray[np.uint8]
Box = tuple[int, int, int, int]
Quad = NDArray[np.float32]  # 4x2: top-left, top-right, bottom-right, bottom-left

# Width over height of the plates on the road (mm): one row, a car's two rows, a motorbike's.
ONE_ROW_ASPECT = 520 / 110
TWO_ROW_ASPECTS = (330 / 165, 190 / 140)
# Below this a plate has two rows: between a one-row plate seen at a steep angle (its
# width shortened by a third) and a two-row car plate.
TWO_ROWS_BELOW = 3.0
# Of the box's larger side, around the box: a detector's box can be half the plate
# off on a side, and a plate cut by the crop has no whole border to find.
PAD = 0.5
MIN_OVERLAP = 0.3  # of a quadrilateral's upright box with the detector's box (IoU)
MAX_ASPECT = 7.0
MIN_FILL = 0.85  # of a candidate's quadrilateral that its contour covers
HEIGHT_PX = 64  # a rectified row's height: above the recogniser's 48, below a near plate's
BORDER = 0.06  # of the rectified plate's height: its border line, left out of the rows
SPLIT_BAND = (0.3, 0.7)  # where two rows can part, as shares of the plate's height
MAX_GAP_INK = 0.25  # of a row's ink, in the gap between two rows
MAX_TILT = 45.0


class Method(StrEnum):
    """How the plate was straightened: by its border, by its lettering's tilt, or not."""

    BORDER = "border"
    TEXT = "text"
    CROP = "crop"


@dataclass(frozen=True)
class RectifiedPlate:
    """A plate face made upright, its rows (one or two images, top first, for the
    recogniser) and where it lies in the frame."""

    image: Image
    rows: tuple[Image, ...]
    quad: Quad
    method: Method
    whole_rows: tuple[Image, ...] = ()

    @property
    def box(self) -> Box:
        """The upright box around the plate, in frame pixels."""
        x, y, w, h = cv2.boundingRect(self.quad.astype(np.float32))
        return x, y, w, h


def rectify(frame: Image, box: Box) -> RectifiedPlate:
    """The plate in `box` (x, y, width, height in `frame`) made upright and cut into
    rows: by its border when one is found, else by its lettering's tilt, else the box as
    it is."""
    return next(cuts(frame, box))


def cuts(frame: Image, box: Box) -> Iterator[RectifiedPlate]:
    """The plate in `box` cut every way there is, the likeliest first: by its border,
    by its lettering's tilt, as the box is. A border found can be a frame inside the
    plate or around the vehicle's recess, and a blurred plate's lettering can run
    together: a reader that can afford a second look tries the next cut when a cut does
    not read. Each is made only when asked for."""
    crop, origin = _padded(frame, box)
    inner = (box[0] - origin[0], box[1] - origin[1], box[2], box[3])
    shift = np.array(origin, np.float32)
    quad = find_border(crop, inner)
    if quad is not None:
        yield _cut(frame, quad + shift, Method.BORDER)
    quad = text_quad(crop, inner)
    if quad is not None:
        yield _cut(frame, quad + shift, Method.TEXT)
    x, y, w, h = box
    corners = [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]
    yield _cut(frame, np.array(corners, np.float32), Method.CROP)


def _padded(frame: Image, box: Box) -> tuple[Image, tuple[int, int]]:
    """The box grown by PAD on every side, clipped to the frame, and its top-left."""
    x, y, w, h = box
    pad = round(PAD * max(w, h))
    height, width = frame.shape[:2]
    x0, y0 = max(0, x - pad), max(0, y - pad)
    x1, y1 = min(width, x + w + pad), min(height, y + h + pad)
    return frame[y0:y1, x0:x1], (x0, y0)


def order_corners(points: cv2.typing.MatLike) -> Quad:
    """Four points as top-left, top-right, bottom-right, bottom-left, for a plate rolled
    by less than 45 degrees."""
    points = np.asarray(points, np.float32)
    centre = points.mean(axis=0)
    angles = np.arctan2(points[:, 1] - centre[1], points[:, 0] - centre[0])
    clockwise = points[np.argsort(angles)]  # image y points down: increasing angle
    first = int(np.argmin(clockwise.sum(axis=1)))
    return cast(Quad, np.roll(clockwise, -first, axis=0))


def quad_size(quad: Quad) -> tuple[float, float]:
    """The mean width and height of a quadrilateral's opposite sides."""
    top, bottom = np.linalg.norm(quad[1] - quad[0]), np.linalg.norm(quad[2] - quad[3])
    left, right = np.linalg.norm(quad[3] - quad[0]), np.linalg.norm(quad[2] - quad[1])
    return float(top + bottom) / 2, float(left + right) / 2


def find_border(crop: Image, box: Box) -> Quad | None:
    """The plate's outline in `crop` around `box` (in the crop's pixels), as ordered
    corners, or None. Candidates are the contours of the light and of the dark pixels and
    of the edges that are nearly convex quadrilaterals of a plate's shape, not cut by the
    crop's edge; the one whose upright box overlaps `box` most wins, which sets aside the
    vehicle around the plate and the characters inside it."""
    gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    gray = cv2.GaussianBlur(gray, (3, 3), 0)
    _, light = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    edges = cv2.dilate(cv2.Canny(gray, 40, 120), np.ones((3, 3), np.uint8))
    best: tuple[float, Quad] | None = None
    for mask in (light, cv2.bitwise_not(light), edges):
        contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        for contour in contours:
            quad = _plate_quad(contour, crop.shape[:2], box[2] * box[3] * MIN_OVERLAP)
            if quad is None:
                continue
            x, y, w, h = cv2.boundingRect(quad)
            overlap = _iou((x, y, w, h), box)
            if overlap >= MIN_OVERLAP and (best is None or overlap > best[0]):
                best = (overlap, quad)
    return None if best is None else best[1]


def _iou(a: Box, b: Box) -> float:
    w = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    h = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return w * h / max(1, a[2] * a[3] + b[2] * b[3] - w * h)


def _plate_quad(
    contour: cv2.typing.MatLike, shape: tuple[int, int], min_area: float
) -> Quad | None:
    height, width = shape
    area = cv2.contourArea(contour)
    if area < min_area:
        return None
    x, y, w, h = cv2.boundingRect(contour)
    if x <= 0 or y <= 0 or x + w >= width or y + h >= height:
        return None  # cut by the crop: the vehicle or the backdrop, not a whole plate
    hull = cv2.convexHull(contour)
    perimeter = cv2.arcLength(hull, True)
    points = cv2.approxPolyDP(hull, 0.04 * perimeter, True).reshape(-1, 2)
    if len(points) != 4:
        points = cv2.boxPoints(cv2.minAreaRect(hull))
    quad = order_corners(points.astype(np.float32))
    quad_area = cv2.contourArea(quad)
    plate_w, plate_h = quad_size(quad)
    if (
        quad_area <= 0
        or area < MIN_FILL * quad_area
        or not 1.0 <= plate_w / max(plate_h, 1.0) <= MAX_ASPECT
    ):
        return None
    return quad


def text_quad(crop: Image, box: Box) -> Quad | None:
    """The rotated rectangle around the lettering found inside `box` (in the crop's
    pixels) and its line's continuation beyond it, or None when too few character-sized
    marks are found: the tilt of a plate whose border is not seen. A detector's box can
    cut a plate's end off, and a plate read without its last characters can be another
    valid plate; so the line is followed out of the box, and the rectangle is grown by
    about a character at each end: a sign's longer line (a phone number) is then read
    whole, not as a plate-long piece of itself."""
    gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    _, light = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    min_height = max(6, round(0.07 * gray.shape[0]))
    # Either class can be the lettering: around a plate, the crop holds the vehicle and
    # the street too, so the smaller class need not be the ink.
    lines = [_line(characters(ink, min_height), box) for ink in (light, cv2.bitwise_not(light))]
    marks = max(lines, key=len)
    if len(marks) < 3:
        return None
    points = [[[x, y], [x + w, y], [x + w, y + h], [x, y + h]] for x, y, w, h in marks]
    (cx, cy), (long, short), angle = wide_rect(np.array(points, np.float32).reshape(-1, 2))
    if abs(angle) > MAX_TILT:
        return None
    grown = ((cx, cy), (long + 1.2 * short, 1.3 * short), angle)
    return order_corners(cv2.boxPoints(grown).astype(np.float32))


def _line(marks: list[Box], box: Box) -> list[Box]:
    """The marks centred inside `box`, and the marks that continue their line (or their
    two rows) on either side, each at most 1.5 character heights from the last."""
    x, y, w, h = box
    centres = np.array([[mx + mw / 2, my + mh / 2] for mx, my, mw, mh in marks], np.float32)
    inside = [i for i, (px, py) in enumerate(centres) if x <= px <= x + w and y <= py <= y + h]
    if len(inside) < 2:
        return [marks[i] for i in inside]
    (cx, cy), (_, short), angle = wide_rect(centres[inside])
    along = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))], np.float32)
    offsets = centres - np.array([cx, cy], np.float32)
    position = offsets @ along
    across = np.abs(offsets @ np.array([-along[1], along[0]], np.float32))
    height = float(np.median([marks[i][3] for i in inside]))
    band = across <= short / 2 + 0.3 * height
    low, high = position[inside].min(), position[inside].max()
    for i in np.argsort(position):  # rightwards, then leftwards
        if band[i] and high < position[i] <= high + 1.5 * height:
            high = position[i]
    for i in np.argsort(-position):
        if band[i] and low - 1.5 * height <= position[i] < low:
            low = position[i]
    return [m for i, m in enumerate(marks) if band[i] and low <= position[i] <= high]


def wide_rect(points: cv2.typing.MatLike) -> cv2.typing.RotatedRect:
    """The rotated rectangle of least area around `points`, with its width along the
    longer side and its angle (degrees, clockwise in the image) between -90 and 90:
    OpenCV names the sides by its own convention, and a line of text runs wider."""
    (cx, cy), (w, h), angle = cv2.minAreaRect(points)
    if w < h:
        w, h, angle = h, w, angle - 90
    return (cx, cy), (w, h), (angle + 90) % 180 - 90


def warp(image: Image, quad: Quad, size: tuple[int, int]) -> Image:
    """The quadrilateral `quad` of `image` made an upright `size` (width, height)."""
    width, height = size
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
    transform = cv2.getPerspectiveTransform(quad.astype(np.float32), target)
    return cast(Image, cv2.warpPerspective(image, transform, size, flags=cv2.INTER_LINEAR))


def characters(ink: cv2.typing.MatLike, min_height: int) -> list[Box]:
    """The boxes of the character-sized marks in a binary `ink` image: at least
    `min_height` px and at most 80 % of the image tall, not much wider than tall, not
    touching the image's edge (the vehicle, a border cut by the crop), and within a factor
    of 1.6 of the marks' median height, which leaves out screws, dirt and separators."""
    count, _, stats, _ = cv2.connectedComponentsWithStats(ink)
    height, width = ink.shape
    marks = [
        (int(x), int(y), int(w), int(h))
        for x, y, w, h, area in stats[1:count]
        if min_height <= h <= 0.8 * height
        and w <= 1.5 * h
        and area >= 12
        and x > 0
        and y > 0
        and x + w < width
        and y + h < height
    ]
    if not marks:
        return []
    median = float(np.median([h for _, _, _, h in marks]))
    return [m for m in marks if median / 1.6 <= m[3] <= 1.6 * median]


def plate_aspect(quad: Quad) -> float:
    """The plate's real width over height: of the plate shapes on the road, the nearest
    (by ratio) to the quadrilateral's own, which perspective shortens."""
    width, height = quad_size(quad)
    seen = width / max(height, 1.0)
    shapes = (ONE_ROW_ASPECT,) if seen >= TWO_ROWS_BELOW else TWO_ROW_ASPECTS
    return min(shapes, key=lambda shape: abs(np.log(seen / shape)))


def _cut(frame: Image, quad: Quad, method: Method) -> RectifiedPlate:
    """The quadrilateral warped upright, and its rows. A plate's border gives its real
    shape, which says one row or two; lettering found without a border, or a plain
    crop, is kept at its own shape and has two rows when its ink parts in the middle."""
    width, height = quad_size(quad)
    seen = width / max(height, 1.0)
    aspect = plate_aspect(quad) if method is Method.BORDER else seen
    out_h = HEIGHT_PX * (2 if aspect < TWO_ROWS_BELOW else 1)
    out_w = max(out_h, round(out_h * aspect))
    plate = warp(frame, quad, (out_w, out_h))
    split, depth = row_gap(plate)
    if method is Method.BORDER:
        two_rows = aspect < TWO_ROWS_BELOW
    else:
        two_rows = aspect < TWO_ROWS_BELOW and depth < MAX_GAP_INK
    rows = (plate[:split], plate[split:]) if two_rows else (plate,)
    trimmed = tuple(trim_row(row) for row in rows)
    return RectifiedPlate(plate, trimmed, quad, method, rows)


def _ink(gray: cv2.typing.MatLike) -> Image:
    """Whichever of Otsu's two classes covers less of `gray`: the lettering."""
    _, light = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    ink = light if np.count_nonzero(light) < light.size / 2 else cv2.bitwise_not(light)
    return cast(Image, ink)


def trim_row(row: Image) -> Image:
    """A row cut to its characters with a margin: the border, the screws and the empty
    plate beside the lettering are read as characters (`|`, `1`, `7`) otherwise. A row
    where no characters are found is given whole."""
    gray = cv2.cvtColor(row, cv2.COLOR_BGR2GRAY)
    height, width = gray.shape
    inset = max(1, round(BORDER * height))
    inside = _ink(gray[inset : height - inset, inset : width - inset])
    inner_h, inner_w = inside.shape
    count, _, stats, _ = cv2.connectedComponentsWithStats(inside)
    # Characters, or characters run together, a good share of the row's height. What is
    # left of the border is a thin line at a side or a long one along the top or bottom
    # (a character touching the border is kept with it: better a border line read than
    # a character lost).
    marks = [
        (x + inset, y + inset, w, h)
        for x, y, w, h, _ in stats[1:count]
        if 0.35 * height <= h <= 0.95 * height
        and (w >= 0.25 * h or (x > 0 and x + w < inner_w))
        and (w < 0.5 * inner_w or (y > 0 and y + h < inner_h))
    ]
    if not marks:
        return row
    x0, y0 = min(m[0] for m in marks), min(m[1] for m in marks)
    x1, y1 = max(m[0] + m[2] for m in marks), max(m[1] + m[3] for m in marks)
    margin = round(0.2 * (y1 - y0))
    return row[max(0, y0 - margin) : y1 + margin, max(0, x0 - margin) : x1 + margin]


def ink_profile(plate: Image) -> NDArray[np.float32]:
    """The share of ink in each pixel row of an upright plate, its border left out: ink
    is whichever of Otsu's two classes covers less of the plate's inside."""
    gray = cv2.cvtColor(plate, cv2.COLOR_BGR2GRAY)
    height, width = gray.shape
    inset = max(1, round(BORDER * height))
    ink = _ink(gray[inset : height - inset, inset : width - inset])
    profile = np.zeros(height, np.float32)
    profile[inset : height - inset] = ink.mean(axis=1) / 255.0
    return profile


def row_gap(plate: Image) -> tuple[int, float]:
    """Where an upright plate's two rows would part, and how much ink lies there as a
    share of the less inked row's: the least inked pixel row in the middle band (the
    middle of the valley when several tie). A two-row plate's gap holds almost none; a
    one-row plate's middle runs through its characters."""
    height = plate.shape[0]
    profile = cv2.GaussianBlur(ink_profile(plate)[:, None], (1, 5), 0).ravel()
    low, high = round(SPLIT_BAND[0] * height), round(SPLIT_BAND[1] * height)
    band = profile[low:high]
    valley = np.flatnonzero(band <= band.min() + 0.02)
    # The widest run of near-minimal rows, then its middle.
    runs = np.split(valley, np.flatnonzero(np.diff(valley) > 1) + 1)
    widest = max(runs, key=len)
    split = low + int(widest[len(widest) // 2])
    edge = round(0.1 * height)  # the border's lines, left out of the rows' ink
    rows = min(
        profile[edge:split].max(initial=0.0), profile[split : height - edge].max(initial=0.0)
    )
    return split, float(profile[split] / rows) if rows > 0 else 1.0
