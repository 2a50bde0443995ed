"""Synthetic Vietnamese plates in street-like scenes, with ground truth, from a seed.

Tests and benchmarks regenerate their scenes from a seed instead of committing images: the
same seed gives the same pixels. Plates follow the formats of `iotwire/plate_formats.py` and
the sizes of the real ones (one-row car 520x110 mm, two-row car 330x165 mm, motorbike
190x140 mm), in the four colours, with border, screws and dirt, lettered in OpenCV's Hershey
font or in DejaVu Sans Bold, condensed or not (Debian's fonts-dejavu packages; Pillow draws
them), stretched to the plate as its own condensed lettering is; scenes add perspective,
blur, noise, glare and night lighting.

`make_scene` without a style draws the plain scenes the reader's tests were written
against. A named `Style` (see `STYLES`) draws varied streets instead: more letterings,
backdrops from `street_clutter`, shop signs full of numbers, tilted plates, several
vehicles or none. `HELD_OUT` uses letterings, backdrops and sign kinds that `TRAINING`
never does, so figures measured on it are not figures on what a model was trained on.
"""

import random
from dataclasses import dataclass
from enum import StrEnum
from typing import cast

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image as PilImage
from PIL import ImageDraw, ImageFont

from iotwire.plate_formats import SERIES_LETTERS, Colour, Plate, Vehicle, parse_plate
from testbed.street_clutter import FONT_DIR, HERSHEY_FACES, add_sign, backdrop, vehicle_body

Image = NDArray[np.uint8]
PX_PER_MM = 0.8
HERSHEY = cv2.FONT_HERSHEY_SIMPLEX
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
    return parse_plate(text, typed=True)  # the plate as issued, not as a camera read it


def _rows(plate: Plate, layout: Layout) -> list[str]:
    display = plate.display
    if layout is Layout.CAR_ONE_ROW:
        return [display]
    if plate.vehicle is Vehicle.MOTORBIKE:
        top, bottom = display.split(" ")
        return [top, bottom]
    top, bottom = display.split("-")
    return [top, bottom]


def _hershey_rows(
    face: Image, rows: list[str], ink: tuple[int, int, int], margin: int, typeface: int = HERSHEY
) -> None:
    h, w = face.shape[:2]
    row_h = (h - 4 * margin) / len(rows)
    for i, text in enumerate(rows):
        thickness = max(2, int(row_h / 11))
        (tw, th), _ = cv2.getTextSize(text, typeface, 1.0, thickness)
        scale = min((w - 6 * margin) / tw, row_h * 0.78 / th)
        (tw, th), _ = cv2.getTextSize(text, typeface, scale, thickness)
        x = (w - tw) // 2
        y = int(2 * margin + row_h * i + (row_h + th) / 2)
        cv2.putText(face, text, (x, y), typeface, scale, ink, thickness, cv2.LINE_AA)


def _truetype_rows(
    face: Image,
    rows: list[str],
    ink: tuple[int, int, int],
    margin: int,
    font_file: str,
    spread: float = 1.1,
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
        target = (min(w - 6 * margin, int(glyphs.width * spread)), int(row_h * 0.8))
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
    spread: float = 1.1,
) -> Image:
    """The plate face, frontal, at PX_PER_MM, lettered in one of `fonts`: None or a key of
    HERSHEY_FACES for OpenCV's faces, else a DejaVu file stretched by `spread`."""
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
    elif font in HERSHEY_FACES:
        _hershey_rows(face, rows, ink, margin, HERSHEY_FACES[font])
    else:
        face = _truetype_rows(face, rows, ink, margin, font, spread)
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
    style: "Style | None" = None,
    tilt: float | None = None,
) -> Scene:
    """One frame with one vehicle and its plate, and where the plate's corners lie: a
    plain street without `style`, else a street of that style with its clutter, its plate
    rolled by `tilt` degrees when given (a plain street's plate is never rolled)."""
    if style is not None:
        street = make_street(rng, style, condition, ((layout, colour),), width, height, tilt)
        [placed] = street.plates
        return Scene(street.image, placed.plate, layout, colour, condition, placed.corners)
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
    _paste(image, face, corners)
    return corners


def _paste(image: Image, face: Image, corners: NDArray[np.float32]) -> None:
    """`face` warped in place onto `image` so that its corners land on `corners`."""
    height, width = image.shape[:2]
    fh, fw = face.shape[:2]
    source = np.array([[0, 0], [fw, 0], [fw, fh], [0, fh]], np.float32)
    warp = cv2.getPerspectiveTransform(source, corners)
    warped = cv2.warpPerspective(face, warp, (width, height))
    mask = cv2.warpPerspective(np.full((fh, fw), 255, np.uint8), warp, (width, height))
    image[mask > 0] = warped[mask > 0]


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


@dataclass(frozen=True)
class Style:
    """A named generator configuration: what a styled street may draw from. `fonts` as in
    `render_plate`, `backdrops` keys of `street_clutter.BACKDROPS`, `signs` keys of
    `street_clutter.SIGNS` lettered in `sign_fonts`, `spread` the range of stretch
    applied to TrueType plate lettering (below 1.0 is the narrow lettering of real
    plates), `sign_count` how many signs a street carries."""

    name: str
    fonts: tuple[str | None, ...]
    backdrops: tuple[str, ...]
    signs: tuple[str, ...]
    sign_fonts: tuple[str, ...]
    spread: tuple[float, float] = (0.85, 1.15)
    sign_count: tuple[int, int] = (2, 7)


TRAINING = Style(
    name="training",
    fonts=(
        None,
        "hershey-duplex",
        "hershey-complex",
        "DejaVuSansCondensed-Bold.ttf",
        "DejaVuSans-Bold.ttf",
        "DejaVuSansMono-Bold.ttf",
        "DejaVuSerifCondensed-Bold.ttf",
    ),
    backdrops=("road", "wall", "shopfront", "texture"),
    signs=("board", "lightbox", "plate_like", "banner"),
    sign_fonts=(
        "DejaVuSans-Bold.ttf",
        "DejaVuSans.ttf",
        "DejaVuSerif-Bold.ttf",
        "DejaVuSansMono-Bold.ttf",
        "DejaVuSansCondensed-Bold.ttf",
        "hershey-simplex",
        "hershey-duplex",
    ),
)
# Narrow regular sans lettering (the nearest here to the plates' DIN-like face), tiled and
# parking-lot backdrops, stickers and awnings: none of them is in TRAINING.
HELD_OUT = Style(
    name="held_out",
    fonts=("DejaVuSansCondensed.ttf", "hershey-triplex"),
    backdrops=("tiles", "parking"),
    signs=("sticker", "awning"),
    sign_fonts=("DejaVuSansCondensed-Oblique.ttf", "DejaVuSerifCondensed.ttf", "hershey-plain"),
    spread=(0.8, 1.0),
)
STYLES = {style.name: style for style in (TRAINING, HELD_OUT)}
# How wide a plate appears in a styled street: farther and nearer than the plain scenes.
STYLED_WIDTH_PX = {
    Layout.CAR_ONE_ROW: (140, 330),
    Layout.CAR_TWO_ROWS: (100, 250),
    Layout.MOTORBIKE: (85, 190),
}
MAX_TILT_DEGREES = 20.0


@dataclass(frozen=True)
class PlacedPlate:
    plate: Plate
    layout: Layout
    colour: Colour
    corners: NDArray[np.float32]


@dataclass(frozen=True)
class Street:
    """A styled frame and every plate in it (none for a plate-less street)."""

    image: Image
    plates: tuple[PlacedPlate, ...]


def random_plates(rng: random.Random, count: int) -> tuple[tuple[Layout, Colour], ...]:
    """`count` layouts and colours, white most often as on the road."""
    colours = (Colour.WHITE,) * 5 + (Colour.YELLOW, Colour.YELLOW, Colour.BLUE, Colour.RED)
    return tuple((rng.choice(tuple(Layout)), rng.choice(colours)) for _ in range(count))


def _tilted_corners(
    rng: random.Random,
    centre: tuple[float, float],
    size: tuple[float, float],
    skew: float,
    tilt: float | None = None,
) -> NDArray[np.float32]:
    """A plate's corners rolled by up to MAX_TILT_DEGREES (by `tilt` degrees when given)
    and skewed in perspective. The random roll is drawn either way, so that a street drawn
    with a fixed `tilt` is the same street as without it, only its plates rolled."""
    (cx, cy), (pw, ph) = centre, size
    half = np.array([[-pw, -ph], [pw, -ph], [pw, ph], [-pw, ph]], np.float32) / 2
    jitter = [[rng.uniform(-skew, skew) * pw for _ in range(2)] for _ in range(4)]
    half += np.array(jitter, np.float32) * np.array([0.2, 0.3], np.float32)
    drawn = rng.uniform(-MAX_TILT_DEGREES, MAX_TILT_DEGREES)
    angle = np.radians(drawn if tilt is None else tilt)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    corners: NDArray[np.float32] = (half @ rotation.T + [cx, cy]).astype(np.float32)
    return corners


def make_street(
    rng: random.Random,
    style: Style,
    condition: Condition,
    plates: tuple[tuple[Layout, Colour], ...],
    width: int = 1280,
    height: int = 720,
    tilt: float | None = None,
) -> Street:
    """A street of `style` with signs, plate-less vehicles and one vehicle for each of
    `plates` (layout and colour), spread across the frame so that none overlap; every
    plate rolled by `tilt` degrees when given (clockwise in the image when positive)."""
    image = backdrop(rng, rng.choice(style.backdrops), width, height)
    for _ in range(rng.randint(*style.sign_count)):
        add_sign(rng, image, rng.choice(style.signs), rng.choice(style.sign_fonts))
    for _ in range(rng.randint(0, 2)):
        centre = (rng.uniform(0, width), rng.uniform(height * 0.3, height))
        vehicle_body(rng, image, centre, (rng.uniform(80, 250), rng.uniform(30, 90)))
    slot = width / max(1, len(plates))
    faces = []
    for i, (layout, colour) in enumerate(plates):
        plate = random_plate(rng, layout)
        face = render_plate(plate, layout, colour, rng, style.fonts, rng.uniform(*style.spread))
        fh, fw = face.shape[:2]
        pw = min(rng.uniform(*STYLED_WIDTH_PX[layout]), slot * 0.7)
        ph = pw * fh / fw
        cx = rng.uniform(i * slot + pw * 0.7, (i + 1) * slot - pw * 0.7)
        cy = rng.uniform(height * 0.35, height - ph * 1.5)
        vehicle_body(rng, image, (cx, cy), (pw, ph))
        skew = 0.25 if condition is Condition.ANGLE else 0.08
        corners = _tilted_corners(rng, (cx, cy), (pw, ph), skew, tilt)
        faces.append((face, PlacedPlate(plate, layout, colour, corners)))
    for face, placed_plate in faces:  # after every body, so that no body covers a plate
        _paste(image, face, placed_plate.corners)
    placed = [placed_plate for _, placed_plate in faces]
    spot = placed[0].corners.mean(axis=0) if placed else (width / 2, height / 2)
    image = _lighting(image, condition, rng, (int(spot[0]), int(spot[1])))
    return Street(image, tuple(placed))
