"""A plate detector in the common YOLO ONNX output layout, so a better model than the
default text detector can be dropped in by config.

Both layouts in use are read: YOLOv5's `(1, N, 5 + classes)` (box, objectness, class
scores) and YOLOv8's `(1, 4 + classes, N)` (box and class scores, transposed). Boxes are
centre x, centre y, width, height in the letterboxed input; they come back in frame
pixels after non-maximum suppression.
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from edge_agent.plates.letterbox import letterbox, suppress

Box = tuple[int, int, int, int]


class YoloPlateDetector:
    def __init__(
        self,
        model: Path,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        threads: int = 2,
        min_score: float = 0.4,
        iou: float = 0.5,
    ) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self._session = ort.InferenceSession(str(model), options, providers=list(providers))
        model_input = self._session.get_inputs()[0]
        self._input = model_input.name
        side = model_input.shape[2]
        self._side = side if isinstance(side, int) else 640
        self._min_score = min_score
        self._iou = iou

    def regions(self, frame: NDArray[np.uint8]) -> list[Box]:
        """Where the reader looks for text: the plates' boxes."""
        return self.detect(frame)

    def detect(self, frame: NDArray[np.uint8]) -> list[Box]:
        tensor, scale = letterbox(frame, self._side, self._side)
        [output] = self._session.run(None, {self._input: tensor})
        rows = output[0]
        if rows.shape[0] < rows.shape[1]:  # YOLOv8: (4 + classes, N)
            rows = rows.T
            scores = rows[:, 4:].max(axis=1)
        else:  # YOLOv5: (N, 5 + classes)
            scores = rows[:, 4] * (rows[:, 5:].max(axis=1) if rows.shape[1] > 5 else 1.0)
        keep = scores >= self._min_score
        rows, scores = rows[keep], scores[keep]
        boxes = [
            [
                float(cx - bw / 2) / scale,
                float(cy - bh / 2) / scale,
                float(bw) / scale,
                float(bh) / scale,
            ]
            for cx, cy, bw, bh in rows[:, :4]
        ]
        height, width = frame.shape[:2]
        out = []
        for i in suppress(boxes, scores.tolist(), self._min_score, self._iou):
            x, y, w, h = boxes[i]
            x0, y0 = max(0, int(x)), max(0, int(y))
            out.append((x0, y0, min(width, int(x + w)) - x0, min(height, int(y + h)) - y0))
        return out
