"""Frame-to-model plumbing shared by the plate detectors: letterboxing and suppression.

Both detectors scale the frame into the model's input without distorting it, anchored at
the top left, so a point in the input maps back to the frame by one division, and both
keep the best of overlapping boxes with OpenCV's non-maximum suppression.
"""

from collections.abc import Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

PADDING = 114  # the grey YOLO-family models are trained with


def letterbox(
    frame: NDArray[np.uint8], width: int, height: int
) -> tuple[NDArray[np.float32], float]:
    """`frame` (BGR) scaled to fit `width` x `height`, padded at the right and bottom, as
    an RGB (1, 3, height, width) tensor in [0, 1]; and the scale from frame to input."""
    h, w = frame.shape[:2]
    scale = min(width / w, height / h)
    resized = cv2.resize(frame, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    canvas = np.full((height, width, 3), PADDING, np.uint8)
    canvas[: resized.shape[0], : resized.shape[1]] = resized
    tensor = cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB).transpose(2, 0, 1)[None]
    return tensor.astype(np.float32) / 255.0, scale


def suppress(
    boxes: Sequence[Sequence[float]], scores: Sequence[float], min_score: float, iou: float
) -> list[int]:
    """Indices of the boxes (x, y, w, h) kept by non-maximum suppression, best first."""
    if not boxes:
        return []
    chosen = cv2.dnn.NMSBoxes(list(boxes), list(scores), min_score, iou)
    return [int(i) for i in np.array(chosen).flatten()]
