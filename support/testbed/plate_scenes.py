"""Synthetic Vietnamese plates in street-like scenes, with ground truth, from a seed.

Tests and benchmarks regenerate their scenes from a seed instead of committing images: the
same seed gives the same pixels. Plates follow the formats of `iotwire/plate_formats.py` and
the sizes of the real ones (one-row car 520x110 mm, two-row car 330x165 mm, motorbike
190x140 mm), in the four colours, with border, screws and dirt, lettered in OpenCV's Hershey
font or in DejaVu Sans Bold, condensed or not (Debian's fonts-dejavu packages; Pillow draws
them), stretched to the plate as its own condensed lettering is; scenes add perspective,
blur, noise, glare and night lighting.
"""

import random
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import cast

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image as PilImage
from PIL import ImageDraw, ImageFont

from iotwire.plate_formats import SERIES_LETTERS, Colour, Plate, Vehicle, parse_plate

Image = NDArray[np.uint8]
PX_PER_MM = 0.8
HERSHEY = cv2.FONT_HERSHEY_SIMPLEX
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
# None is OpenCV's Hershey lettering; the others are TrueType faces close to the plates'.
FONTS = (None, "DejaVuSansCondensed-Bold.ttf", "DejaVuSans-Bold.ttf")
INK = {
    Colour.WHITE: (20, 20, 20),
    Colour.YELLOW: (20, 20, 20),
    Colour.BLUE: (245, 245, 245),
    Colour.RED: (245, 245, 245),
}
PAPER = {
    Colour.WHITE: (235, 235, 235),
    Colour.YELLOW: (40, 200, 235),
    Colour.BLUE: (160, 70, 20),
    Colour.RED: (40, 30, 200),
}


class Layout(StrEnum):
    CAR_ONE_ROW = "car_one_row"
    CAR_TWO_ROWS = "car_two_rows"
    MOTORBIKE = "motorbike"


class Condition(StrEnum):
    DAY = "day"
    NIGHT = "night"
    BLUR = "blur"
    ANGLE = "angle"


# How wide a plate appears in a 1280x720 frame from a pole: far to near.
WIDTH_PX = {
    Layout.CAR_ONE_ROW: (200, 320),
    Layout.CAR_TWO_ROWS: (150, 230),
    Layout.MOTORBIKE: (110, 170),
}
SIZE_MM = {
    Layout.CAR_ONE_ROW: (520, 110),
    Layout.CAR_TWO_ROWS: (330, 165),
    Layout.MOTORBIKE: (190, 140),
}


@dataclass(frozen=True)
class Scene:
    image: Image
    plate: Plate
    layout: Layout
    colour: Colour
    condition: Condition
    corners: NDArray[np.float32]

    @property
    def box(self) -> tuple[int, int, int, int]:
        """x, y, width, height around the plate's corners."""
        x, y, w, h = cv2.boundingRect(self.corners.astype(np.int32))
        return x, y, w, h


def random_plate(rng: random.Random, layout: Layout) -> Plate:
    province = f"{rng.randint(11, 99)}"
    letters = sorted(SERIES_LETTERS)
    number = (
        f"{rng.randint(0, 99999):05d}" if rng.random() < 0.85 else f"{rng.randint(0, 9999):04d}"
    )
    if layout is Layout.MOTORBIKE:
        series = rng.choice(letters) + (
            str(rng.randint(1, 9)) if rng.random() < 0.7 else rng.choice(letters)
        )
        number = f"{rng.randint(0, 99999):05d}"
        return parse_plate(f"{province}{series}\n{number}")
    series = rng.choice(letters)
    text = f"{province}{series}" + ("\n" if layout is Layout.CAR_TWO_ROWS else "") + number
    return parse_plate(text)


def _rows(plate: Plate, layout: Layout) -> list[str]:
    display = plate.display
    if layout is Layout.CAR_ONE_ROW:
        return [display]
    if plate.vehicle is Vehicle.MOTORBIKE:
        top, bottom = display.split(" ")
        return [top, bottom]
    top, bottom = display.split("-")
    return [top, bottom]


def _hershey_rows(face: Image, rows: list[str], ink: tuple[int, int, int], margin: int) -> None:
    h, w = face.shape[:2]
    row_h = (h - 4 * margin) / len(rows)
    for i, text in enumerate(rows):
        thickness = max(2, int(row_h / 11))
        (tw, th), _ = cv2.getTextSize(text, HERSHEY, 1.0, thickness)
        scale = min((w - 6 * margin) / tw, row_h * 0.78 / th)
        (tw, th), _ = cv2.getTextSize(text, HERSHEY, scale, thickness)
        x = (w - tw) // 2
        y = int(2 * margin + row_h * i + (row_h + th) / 2)
        cv2.putText(face, text, (x, y), HERSHEY, scale, ink, thickness, cv2.LINE_AA)


def _truetype_rows(
    face: Image, rows: list[str], ink: tuple[int, int, int], margin: int, font_file: str
) -> Image:
    """Rows in a TrueType font, each stretched to the plate's width as the plates' own
    condensed lettering fills it."""
    path = FONT_DIR / font_file
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: the synthetic plates need Debian's fonts-dejavu-core and "
            "fonts-dejavu-extra (make test installs them)"
        )
    h, w = face.shape[:2]
    row_h = int((h - 4 * margin) / len(rows))
    canvas = PilImage.fromarray(cv2.cvtColor(face, cv2.COLOR_BGR2RGB))
    for i, text in enumerate(rows):
        font = ImageFont.truetype(str(path), int(row_h * 0.95))
        left, top, right, bottom = font.getbbox(text)
        # Pillow types the box as floats (a stroke may be fractional); without one it is ints.
        glyphs = PilImage.new("L", (int(right - left), int(bottom - top)), 0)
        ImageDraw.Draw(glyphs).text((-left, -top), text, font=font, fill=255)
        target = (min(w - 6 * margin, int(glyphs.width * 1.1)), int(row_h * 0.8))
        glyphs = glyphs.resize(target)
        x = (w - target[0]) // 2
        y = int(2 * margin + row_h * i + (row_h - target[1]) / 2)
        canvas.paste(ink[::-1], (x, y), glyphs)
    return cast(Image, cv2.cvtColor(np.asarray(canvas), cv2.COLOR_RGB2BGR))


def render_plate(
    plate: Plate,
    layout: Layout,
    colour: Colour,
    rng: random.Random,
    fonts: tuple[str | None, ...] = FONTS,
) -> Image:
    """The plate face, frontal, at PX_PER_MM, lettered in one of `fonts`."""
    w_mm, h_mm = SIZE_MM[layout]
    w, h = int(w_mm * PX_PER_MM * 2), int(h_mm * PX_PER_MM * 2)
    face = np.full((h, w, 3), PAPER[colour], np.uint8)
    ink = INK[colour]
    margin = max(3, h // 20)
    cv2.rectangle(face, (margin, margin), (w - margin, h - margin), ink, max(2, h // 40))
    rows = _rows(plate, layout)
    font = rng.choice(fonts)
    if font is None:
        _hershey_rows(face, rows, ink, margin)
    else:
        face = _truetype_rows(face, rows, ink, margin, font)
    for sx in (0.12, 0.88):  # screws
        centre = (int(w * sx), int(h * (0.5 if layout is Layout.CAR_ONE_ROW else 0.12)))
        cv2.circle(face, centre, max(2, h // 30), (140, 140, 140), -1)
    for _ in range(rng.randint(0, 4)):  # dirt
        centre = (rng.randint(0, w - 1), rng.randint(0, h - 1))
        overlay = face.copy()
        cv2.circle(overlay, centre, rng.randint(2, max(3, h // 8)), (60, 70, 80), -1)
        face = cast(Image, cv2.addWeighted(overlay, 0.25, face, 0.75, 0))
    return face


def _background(rng: random.Random, width: int, height: int) -> Image:
    np_rng = np.random.default_rng(rng.randint(0, 2**31))
    sky = np.linspace(190, 120, height // 3, dtype=np.float32)[:, None]
    road = np.linspace(90, 60, height - height // 3, dtype=np.float32)[:, None]
    grey = np.vstack([sky, road]).repeat(width, axis=1)
    noisy = np.dstack([grey, grey, grey]) + np_rng.normal(0, 6, (height, width, 3))
    image = np.clip(noisy, 0, 255).astype(np.uint8)
    for _ in range(rng.randint(3, 8)):  # buildings, poles, signs
        x, y = rng.randint(0, width - 1), rng.randint(0, height // 2)
        colour = tuple(rng.randint(30, 220) for _ in range(3))
        cv2.rectangle(
            image, (x, y), (x + rng.randint(20, 200), y + rng.randint(20, 200)), colour, -1
        )
    return image


def make_scene(
    rng: random.Random,
    layout: Layout,
    condition: Condition,
    colour: Colour = Colour.WHITE,
    width: int = 1280,
    height: int = 720,
) -> Scene:
    """One frame with one vehicle and its plate, and where the plate's corners lie."""
    plate = random_plate(rng, layout)
    face = render_plate(plate, layout, colour, rng)
    image = _background(rng, width, height)
    fh, fw = face.shape[:2]
    scale = rng.uniform(*WIDTH_PX[layout]) / fw
    pw, ph = fw * scale, fh * scale
    cx, cy = rng.uniform(pw, width - pw), rng.uniform(height * 0.45, height - ph)
    body = tuple(rng.randint(20, 230) for _ in range(3))
    skew = 0.25 if condition is Condition.ANGLE else 0.06
    jitter = [rng.uniform(-skew, skew) * pw for _ in range(4)]
    corners = _vehicle(image, face, (cx, cy), (pw, ph), jitter, body)
    image = _lighting(image, condition, rng, (int(cx), int(cy)))
    return Scene(image, plate, layout, colour, condition, corners)


def _vehicle(
    image: Image,
    face: Image,
    centre: tuple[float, float],
    size: tuple[float, float],
    jitter: list[float],
    body: tuple[int, ...],
) -> NDArray[np.float32]:
    """A vehicle's body with its plate pasted on in perspective (corners moved by
    `jitter`); returns where the plate's corners landed."""
    (cx, cy), (pw, ph) = centre, size
    height, width = image.shape[:2]
    top_left = (int(cx - pw * 1.6), int(cy - ph * 2.5))
    cv2.rectangle(image, top_left, (int(cx + pw * 1.6), int(cy + ph * 1.2)), body, -1)
    corners = np.array(
        [
            [cx - pw / 2, cy - ph / 2 + jitter[0] * 0.3],
            [cx + pw / 2, cy - ph / 2 + jitter[1] * 0.3],
            [cx + pw / 2 + jitter[2] * 0.2, cy + ph / 2],
            [cx - pw / 2 + jitter[3] * 0.2, cy + ph / 2],
        ],
        np.float32,
    )
    fh, fw = face.shape[:2]
    source = np.array([[0, 0], [fw, 0], [fw, fh], [0, fh]], np.float32)
    warp = cv2.getPerspectiveTransform(source, corners)
    warped = cv2.warpPerspective(face, warp, (width, height))
    mask = cv2.warpPerspective(np.full((fh, fw), 255, np.uint8), warp, (width, height))
    image[mask > 0] = warped[mask > 0]
    return corners


def _lighting(
    image: Image, condition: Condition, rng: random.Random, plate: tuple[int, int]
) -> Image:
    np_rng = np.random.default_rng(rng.randint(0, 2**31))
    out = image.astype(np.float32)
    if condition is Condition.NIGHT:
        out = out * rng.uniform(0.3, 0.45) + np.array([12, 4, 0], np.float32)
        glow = np.zeros(image.shape[:2], np.float32)
        cv2.circle(glow, plate, rng.randint(120, 220), 1.0, -1)
        glow = cast(NDArray[np.float32], cv2.GaussianBlur(glow, (0, 0), 60))
        out = out * (1 + 1.2 * glow[..., None])
        out += np_rng.normal(0, 7, out.shape)
    elif condition is Condition.BLUR:
        size = rng.choice((5, 7, 9))
        kernel = np.zeros((size, size), np.float32)
        kernel[size // 2, :] = 1 / size
        out = cast(NDArray[np.float32], cv2.filter2D(out, -1, kernel))
        out += np_rng.normal(0, 3, out.shape)
    else:
        out += np_rng.normal(0, 3, out.shape)
    if rng.random() < 0.2:  # glare
        glare = np.zeros(image.shape[:2], np.float32)
        centre = (plate[0] + rng.randint(-60, 60), plate[1] + rng.randint(-20, 20))
        cv2.ellipse(glare, centre, (rng.randint(20, 50), rng.randint(8, 20)), 0, 0, 360, 1.0, -1)
        out += 90 * cv2.GaussianBlur(glare, (0, 0), 8)[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def passing_vehicle(
    rng: random.Random,
    layout: Layout,
    frames: int = 30,
    width: int = 1280,
    height: int = 720,
    fonts: tuple[str | None, ...] = FONTS,
) -> tuple[list[Image], Plate]:
    """A vehicle crossing the frame left to right over `frames` frames, plate in view in
    most of them, then an empty street: the shape of one pass under a pole camera."""
    plate = random_plate(rng, layout)
    face = render_plate(plate, layout, Colour.WHITE, rng, fonts)
    street = _background(rng, width, height)
    fh, fw = face.shape[:2]
    pw = rng.uniform(*WIDTH_PX[layout])
    ph = pw * fh / fw
    cy = height * 0.7
    images = []
    for i in range(frames):
        image = street.copy()
        cx = -pw + (width + 2 * pw) * (i + 1) / (frames + 1)
        _vehicle(image, face, (cx, cy), (pw, ph), [0.0] * 4, (90, 60, 40))
        images.append(image)
    images += [street.copy() for _ in range(frames // 3)]
    return images, plate


def write_video(path: str, images: list[Image], fps: float = 10.0) -> None:
    """Motion-JPEG in AVI: a codec every OpenCV build writes and reads."""
    height, width = images[0].shape[:2]
    writer = cv2.VideoWriter(path, cv2.VideoWriter.fourcc(*"MJPG"), fps, (width, height))
    for image in images:
        writer.write(image)
    writer.release()
