"""Backdrops, shop signs and plate-less vehicles for synthetic street scenes.

A plate detector trained on plates over plain grey learns "dark text on a light box" and
then fires on every hotline sign in a market street. These are the things a street puts
around a plate: asphalt, walls, shop fronts, tiles, and signs full of phone numbers,
prices, addresses and short letter-digit codes, some in boxes the size and colour of a
plate. Every family has a name so that a generator configuration can hold some out of
training. Text is drawn with Pillow in Debian's DejaVu faces (they carry Vietnamese) or in
OpenCV's Hershey faces (ASCII only; Vietnamese text loses its marks there).
"""

import random
from collections.abc import Callable
from pathlib import Path
from typing import cast

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image as PilImage
from PIL import ImageDraw, ImageFont

Image = NDArray[np.uint8]
Colour3 = tuple[int, int, int]
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
HERSHEY_FACES = {
    "hershey-simplex": cv2.FONT_HERSHEY_SIMPLEX,
    "hershey-duplex": cv2.FONT_HERSHEY_DUPLEX,
    "hershey-complex": cv2.FONT_HERSHEY_COMPLEX,
    "hershey-triplex": cv2.FONT_HERSHEY_TRIPLEX,
    "hershey-plain": cv2.FONT_HERSHEY_PLAIN,
}
SHOP_WORDS = (
    "PHỞ BÒ",
    "CƠM TẤM",
    "KARAOKE",
    "CAFÉ",
    "BÁNH MÌ",
    "SỬA XE",
    "NHÀ THUỐC",
    "TẠP HOÁ",
    "HẢI SẢN",
    "MINI MART",
    "GIẶT ỦI",
    "ĐIỆN THOẠI",
    "RỬA XE",
    "HOMESTAY",
)
STREETS = ("Trần Hưng Đạo", "Nguyễn Trung Trực", "30 Tháng 4", "Hùng Vương", "Cách Mạng Tháng 8")


def phone(rng: random.Random) -> str:
    """A Vietnamese mobile, landline or hotline number as shops print them."""
    kind = rng.random()
    if kind < 0.4:
        prefix = f"0{rng.choice('39785')}{rng.randint(0, 99):02d}"
        return f"{prefix} {rng.randint(0, 999):03d} {rng.randint(0, 999):03d}"
    if kind < 0.6:
        return f"0{rng.randint(200, 299)}.{rng.randint(0, 999):03d}.{rng.randint(0, 9999):04d}"
    if kind < 0.8:
        return f"1900 {rng.randint(0, 9999):04d}"
    return f"0{rng.randint(900, 999)}.{rng.randint(0, 999):03d}.{rng.randint(0, 999):03d}"


def sign_line(rng: random.Random) -> str:
    """One line of shop-sign text: a name, a number, a price, an address or a code."""
    kind = rng.randrange(8)
    if kind == 0:
        return rng.choice(SHOP_WORDS)
    if kind == 1:
        return phone(rng)
    if kind == 2:
        return f"{rng.choice(('Hotline', 'ĐT', 'Tel', 'LH', 'Zalo'))}: {phone(rng)}"
    if kind == 3:
        return f"{rng.randint(5, 250)}.000đ"
    if kind == 4:
        return f"{rng.randint(1, 350)}{rng.choice(('', 'A', 'B', '/2'))} {rng.choice(STREETS)}"
    if kind == 5:  # codes shaped like a plate's rows
        letters = "ABCDEFGHKLMNPSTUVXYZ"
        return f"{rng.choice(letters)}{rng.randint(1, 99)}-{rng.randint(100, 9999)}"
    if kind == 6:
        label = rng.choice(("KM", "P.", "No.", "Số", "Lô"))
        return f"{label} {rng.randint(1, 999)}{rng.choice(('', 'B', 'C'))}"
    code = f"{rng.randint(10, 99)}{rng.choice('ABCDEFGH')}"
    return f"{code} {rng.randint(100, 999)}.{rng.randint(10, 99)}"


def draw_text(
    image: Image, box: tuple[int, int, int, int], text: str, ink: Colour3, font: str
) -> None:
    """`text` fitted into `box` (x, y, w, h) of `image`, in place, in a DejaVu file or a
    Hershey face."""
    x, y, w, h = box
    if w < 4 or h < 4:
        return
    if font in HERSHEY_FACES:
        face = HERSHEY_FACES[font]
        ascii_text = text.encode("ascii", "replace").decode().replace("?", "")
        thickness = max(1, h // 10)
        (tw, th), _ = cv2.getTextSize(ascii_text, face, 1.0, thickness)
        scale = min(w / max(1, tw), h * 0.8 / max(1, th))
        (tw, th), _ = cv2.getTextSize(ascii_text, face, scale, thickness)
        origin = (x + (w - tw) // 2, y + (h + th) // 2)
        cv2.putText(image, ascii_text, origin, face, scale, ink, thickness, cv2.LINE_AA)
        return
    truetype = ImageFont.truetype(str(FONT_DIR / font), max(8, int(h * 0.8)))
    left, top, right, bottom = truetype.getbbox(text)
    glyphs = PilImage.new("L", (max(1, int(right - left)), max(1, int(bottom - top))), 0)
    ImageDraw.Draw(glyphs).text((-left, -top), text, font=truetype, fill=255)
    ratio = min(w / glyphs.width, h / glyphs.height)
    size = (max(1, int(glyphs.width * ratio)), max(1, int(glyphs.height * ratio)))
    alpha = np.asarray(glyphs.resize(size), np.float32)[..., None] / 255.0
    ox, oy = x + (w - size[0]) // 2, y + (h - size[1]) // 2
    region = image[oy : oy + size[1], ox : ox + size[0]]
    alpha = alpha[: region.shape[0], : region.shape[1]]
    blended = region * (1 - alpha) + np.array(ink, np.float32) * alpha
    region[...] = blended.astype(np.uint8)


def _colour(rng: random.Random, low: int = 0, high: int = 255) -> Colour3:
    return (rng.randint(low, high), rng.randint(low, high), rng.randint(low, high))


def _noise(rng: random.Random, height: int, width: int, blur: float) -> NDArray[np.float32]:
    """Smooth noise of unit spread with grain about `blur` px, made at a coarser grid and
    scaled up: a full-frame blur with a wide kernel is what made scenes slow."""
    np_rng = np.random.default_rng(rng.randint(0, 2**31))
    step = max(1.0, blur / 2)
    small = (max(2, int(height / step)), max(2, int(width / step)))
    field = np_rng.normal(0, 1, small).astype(np.float32)
    smooth = cv2.resize(cv2.GaussianBlur(field, (0, 0), blur / step), (width, height))
    return cast(NDArray[np.float32], smooth / (smooth.std() + 1e-6))


def _road(rng: random.Random, width: int, height: int) -> Image:
    horizon = rng.randint(height // 5, height // 2)
    sky = np.linspace(rng.randint(150, 230), rng.randint(100, 170), horizon)
    asphalt = np.linspace(rng.randint(70, 120), rng.randint(40, 80), height - horizon)
    grey = np.concatenate([sky, asphalt]).astype(np.float32)[:, None].repeat(width, axis=1)
    grey += 8 * _noise(rng, height, width, 1.5)
    image = np.clip(np.dstack([grey] * 3), 0, 255).astype(np.uint8)
    for _ in range(rng.randint(0, 3)):  # lane markings
        x = rng.randint(0, width)
        colour = (230, 230, 230) if rng.random() < 0.6 else (40, 200, 230)
        cv2.line(
            image, (x, height), (x + rng.randint(-300, 300), horizon), colour, rng.randint(3, 10)
        )
    return image


def _wall(rng: random.Random, width: int, height: int) -> Image:
    base = np.array(_colour(rng, 90, 230), np.float32)
    image = np.ones((height, width, 3), np.float32) * base
    image += 12 * _noise(rng, height, width, 3.0)[..., None]
    if rng.random() < 0.6:  # bricks
        bh, bw = rng.randint(12, 30), rng.randint(30, 80)
        mortar = tuple(float(c) * 0.7 for c in base)
        for row, y in enumerate(range(0, height, bh)):
            cv2.line(image, (0, y), (width, y), mortar, 2)
            for x in range((row % 2) * bw // 2, width, bw):
                cv2.line(image, (x, y), (x, y + bh), mortar, 2)
    return cast(Image, np.clip(image, 0, 255).astype(np.uint8))


def _shopfront(rng: random.Random, width: int, height: int) -> Image:
    image = _wall(rng, width, height)
    x = 0
    while x < width:  # shutters, doors, windows
        w = rng.randint(80, 300)
        top = rng.randint(0, height // 2)
        colour = _colour(rng, 30, 220)
        cv2.rectangle(image, (x, top), (x + w, height), colour, -1)
        for y in range(top, height, rng.randint(6, 14)):
            shade = tuple(max(0, c - 30) for c in colour)
            cv2.line(image, (x, y), (x + w, y), shade, 1)
        x += w + rng.randint(5, 60)
    return image


def _texture(rng: random.Random, width: int, height: int) -> Image:
    channels = [
        rng.randint(60, 200) + rng.randint(15, 50) * _noise(rng, height, width, rng.uniform(2, 12))
        for _ in range(3)
    ]
    return np.clip(np.dstack(channels), 0, 255).astype(np.uint8)


def _tiles(rng: random.Random, width: int, height: int) -> Image:
    image = np.full((height, width, 3), _colour(rng, 120, 240), np.uint8)
    side = rng.randint(25, 70)
    alt = _colour(rng, 60, 220)
    for y in range(0, height, side):
        for x in range(0, width, side):
            if (x // side + y // side) % 2:
                cv2.rectangle(image, (x, y), (x + side - 2, y + side - 2), alt, -1)
    noisy = image.astype(np.float32) + 6 * _noise(rng, height, width, 1.0)[..., None]
    return cast(Image, np.clip(noisy, 0, 255).astype(np.uint8))


def _parking(rng: random.Random, width: int, height: int) -> Image:
    grey = rng.randint(60, 110) + 10 * _noise(rng, height, width, 4.0)
    image = np.clip(np.dstack([grey] * 3), 0, 255).astype(np.uint8)
    step = rng.randint(120, 260)
    for x in range(rng.randint(0, step), width, step):
        cv2.line(image, (x, height // 3), (x + rng.randint(-80, 80), height), (220, 220, 220), 6)
    cv2.line(image, (0, height // 3), (width, height // 3), (220, 220, 220), 6)
    return image


BACKDROPS: dict[str, Callable[[random.Random, int, int], Image]] = {
    "road": _road,
    "wall": _wall,
    "shopfront": _shopfront,
    "texture": _texture,
    "tiles": _tiles,
    "parking": _parking,
}


def backdrop(rng: random.Random, kind: str, width: int, height: int) -> Image:
    """A street-like background of family `kind` (a key of BACKDROPS)."""
    return BACKDROPS[kind](rng, width, height)


def _lines_in(
    image: Image, box: tuple[int, int, int, int], lines: list[str], ink: Colour3, font: str
) -> None:
    x, y, w, h = box
    row = h // len(lines)
    for i, text in enumerate(lines):
        draw_text(image, (x, y + i * row, w, row), text, ink, font)


def _board(rng: random.Random, image: Image, box: tuple[int, int, int, int], font: str) -> None:
    x, y, w, h = box
    paper, ink = _colour(rng, 120, 255), _colour(rng, 0, 110)
    if rng.random() < 0.5:
        paper, ink = ink, paper
    cv2.rectangle(image, (x, y), (x + w, y + h), paper, -1)
    cv2.rectangle(image, (x, y), (x + w, y + h), ink, max(1, h // 30))
    lines = [sign_line(rng) for _ in range(rng.randint(1, 3))]
    pad = max(2, h // 12)
    _lines_in(image, (x + pad, y + pad, w - 2 * pad, h - 2 * pad), lines, ink, font)


def _lightbox(rng: random.Random, image: Image, box: tuple[int, int, int, int], font: str) -> None:
    x, y, w, h = box
    cv2.rectangle(image, (x, y), (x + w, y + h), _colour(rng, 0, 60), -1)
    ink = _colour(rng, 150, 255)
    lines = [sign_line(rng) for _ in range(rng.randint(1, 2))]
    _lines_in(image, (x + 4, y + 4, w - 8, h - 8), lines, ink, font)


def _plate_like(
    rng: random.Random, image: Image, box: tuple[int, int, int, int], font: str
) -> None:
    """A small bordered box in a plate's colours holding a number or code: the sign a
    detector most easily mistakes for a plate."""
    x, y, w, h = box
    w = min(w, rng.randint(90, 320))
    h = min(h, int(w * rng.uniform(0.2, 0.8)))
    paper, ink = rng.choice(
        (
            ((235, 235, 235), (20, 20, 20)),
            ((40, 200, 235), (20, 20, 20)),
            ((160, 70, 20), (245, 245, 245)),
        )
    )
    cv2.rectangle(image, (x, y), (x + w, y + h), paper, -1)
    cv2.rectangle(image, (x + 2, y + 2), (x + w - 2, y + h - 2), ink, max(1, h // 25))
    lines = [sign_line(rng) if rng.random() < 0.5 else phone(rng) for _ in range(rng.randint(1, 2))]
    _lines_in(image, (x + 5, y + 4, w - 10, h - 8), lines, ink, font)


def _banner(rng: random.Random, image: Image, box: tuple[int, int, int, int], font: str) -> None:
    x, y, w, h = box
    h = max(20, h // 2)
    paper = _colour(rng, 0, 255)
    ink = (255, 255, 255) if sum(paper) < 380 else (10, 10, 10)
    cv2.rectangle(image, (x, y), (x + w, y + h), paper, -1)
    text = " ".join(sign_line(rng) for _ in range(rng.randint(1, 2)))
    draw_text(image, (x + 4, y + 2, w - 8, h - 4), text, ink, font)


def _sticker(rng: random.Random, image: Image, box: tuple[int, int, int, int], font: str) -> None:
    """Small paper stickers pasted in a column, each with a phone number: the
    "khoan cắt bê tông" ads on Vietnamese walls and poles."""
    x, y, w, h = box
    w = min(w, rng.randint(100, 260))
    count = rng.randint(1, 3)
    row = max(16, min(h // count, int(w * rng.uniform(0.25, 0.5))))
    for i in range(count):
        top = y + i * (row + 4)
        paper = rng.choice(((250, 250, 250), (60, 220, 250), (200, 230, 250)))
        ink = rng.choice(((20, 20, 200), (20, 20, 20), (150, 40, 20)))
        cv2.rectangle(image, (x, top), (x + w, top + row), paper, -1)
        draw_text(image, (x + 3, top + 2, w - 6, row - 4), phone(rng), ink, font)


def _awning(rng: random.Random, image: Image, box: tuple[int, int, int, int], font: str) -> None:
    x, y, w, h = box
    stripe = rng.randint(15, 40)
    a, b = _colour(rng, 100, 255), _colour(rng, 0, 150)
    for i, sx in enumerate(range(x, x + w, stripe)):
        cv2.rectangle(image, (sx, y), (min(x + w, sx + stripe), y + h), a if i % 2 else b, -1)
    band = (x + w // 10, y + h // 4, w * 8 // 10, h // 2)
    cv2.rectangle(image, band[:2], (band[0] + band[2], band[1] + band[3]), (250, 250, 250), -1)
    draw_text(image, band, f"{rng.choice(SHOP_WORDS)} {phone(rng)}", (20, 20, 160), font)


SIGNS: dict[str, Callable[[random.Random, Image, tuple[int, int, int, int], str], None]] = {
    "board": _board,
    "lightbox": _lightbox,
    "plate_like": _plate_like,
    "banner": _banner,
    "sticker": _sticker,
    "awning": _awning,
}


def add_sign(rng: random.Random, image: Image, kind: str, font: str) -> None:
    """One sign of family `kind` (a key of SIGNS) somewhere in `image`, in place."""
    height, width = image.shape[:2]
    w = rng.randint(100, min(600, width // 2))
    h = max(24, int(w * rng.uniform(0.15, 0.6)))
    x, y = rng.randint(0, width - w), rng.randint(0, max(0, height - h))
    SIGNS[kind](rng, image, (x, y, w, h), font)


def vehicle_body(
    rng: random.Random, image: Image, centre: tuple[float, float], plate: tuple[float, float]
) -> None:
    """A car's or motorbike's rear around where a plate of size `plate` sits at
    `centre`: body, window or seat, lights and wheels, in place."""
    (cx, cy), (pw, ph) = centre, plate
    body = _colour(rng, 15, 235)
    wide = pw / max(ph, 1.0) > 2.5 or rng.random() < 0.4
    half = pw * (rng.uniform(1.4, 2.2) if wide else rng.uniform(0.9, 1.4))
    top, bottom = cy - ph * rng.uniform(1.5, 3.5), cy + ph * rng.uniform(0.8, 1.6)
    cv2.rectangle(image, (int(cx - half), int(top)), (int(cx + half), int(bottom)), body, -1)
    if wide:
        glass = (int(cx - half * 0.8), int(top - ph * 1.5))
        cv2.rectangle(image, glass, (int(cx + half * 0.8), int(top)), _colour(rng, 20, 90), -1)
    light = (30, 30, 200) if rng.random() < 0.7 else (30, 140, 230)
    for side in (-1, 1):
        lx = int(cx + side * half * 0.8)
        cv2.rectangle(image, (lx - 12, int(top + ph)), (lx + 12, int(top + ph * 1.6)), light, -1)
        wheel = (int(cx + side * half * (0.75 if wide else 0.2)), int(bottom))
        cv2.circle(image, wheel, max(6, int(ph * 0.6)), (25, 25, 25), -1)
