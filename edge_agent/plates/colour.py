"""The plate's background colour, which says the vehicle's category (formats.CATEGORY).

The background is the plate's most common hue once the darkest and brightest pixels
(lettering, glare) are set aside; white has little saturation, the others sit in their
hue bands. Night lighting shifts hues, so a colour that fits no band is no answer
rather than a guess.
"""

import cv2
import numpy as np
from numpy.typing import NDArray

from edge_agent.plates.formats import Colour

# OpenCV hue runs 0-179.
HUES = ((Colour.YELLOW, 12, 40), (Colour.BLUE, 90, 135))
MIN_SATURATION = 70
MAX_WHITE_SATURATION = 60


def plate_colour(frame: NDArray[np.uint8], box: tuple[int, int, int, int]) -> Colour | None:
    x, y, w, h = box
    crop = frame[max(0, y) : y + h, max(0, x) : x + w]
    if crop.size == 0:
        return None
    hsv = cv2.cvtColor(crop, cv2.COLOR_BGR2HSV).reshape(-1, 3).astype(np.int32)
    value = hsv[:, 2]
    low, high = np.percentile(value, (35, 95))
    background = hsv[(value >= low) & (value <= high)]
    if len(background) == 0:
        return None
    hue, saturation = np.median(background[:, 0]), np.median(background[:, 1])
    if saturation <= MAX_WHITE_SATURATION:
        return Colour.WHITE
    if saturation < MIN_SATURATION:
        return None
    if hue < 8 or hue > 165:
        return Colour.RED
    for colour, start, end in HUES:
        if start <= hue <= end:
            return colour
    return None
