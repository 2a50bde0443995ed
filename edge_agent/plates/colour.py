"""The plate's background colour, which says the vehicle's category (formats.CATEGORY).

A coloured plate (yellow, blue, red) shows a good share of strongly saturated pixels, in
its colour's hue band, whatever its lettering; a white plate shows almost none, since its
ink is dark and dark pixels are set aside. Night lighting shifts hues, so a saturated
plate whose hue fits no band is no answer rather than a guess.
"""

import cv2
import numpy as np
from numpy.typing import NDArray

from iotwire.plate_formats import Colour

# OpenCV hue runs 0-179; red wraps around 0.
HUES = ((Colour.RED, -15, 8), (Colour.YELLOW, 12, 40), (Colour.BLUE, 90, 135))
MIN_VALUE = 40
MIN_SATURATION = 90
COLOURED_SHARE = 0.25


def plate_colour(frame: NDArray[np.uint8], box: tuple[int, int, int, int]) -> Colour | None:
    x, y, w, h = box
    # The inner part: a box drawn around lettering can take in the vehicle beside it.
    x, y, w, h = x + w // 10, y + h // 6, w - w // 5, h - h // 3
    crop = frame[max(0, y) : y + h, max(0, x) : x + w]
    if crop.size == 0:
        return None
    hsv = cv2.cvtColor(crop, cv2.COLOR_BGR2HSV).reshape(-1, 3).astype(np.int32)
    lit = hsv[hsv[:, 2] >= MIN_VALUE]
    if len(lit) == 0:
        return None
    saturated = lit[lit[:, 1] >= MIN_SATURATION]
    if len(saturated) < COLOURED_SHARE * len(lit):
        return Colour.WHITE
    hues = np.where(saturated[:, 0] > 165, saturated[:, 0] - 180, saturated[:, 0])
    hue = float(np.median(hues))
    for colour, start, end in HUES:
        if start <= hue <= end:
            return colour
    return None
