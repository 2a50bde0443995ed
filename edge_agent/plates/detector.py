"""Where the licence plates are in a frame, from the plate detector shipped with the agent.

PP-OCR's text detector finds any text: shop signs with hotline numbers become plate
candidates, and a tilted one-row plate fills too little of its upright box to be kept.
This model is trained on plates only (one-row and two-row, car and motorbike, the four
colours) among sign clutter, and gives each plate's four corners, so the reader can
straighten a tilted plate by perspective before reading it and never looks at a sign.

The model is a heatmap detector (`scripts/train_plate_detector.py` trains and exports it):
one output scores each cell of a grid over the input, another gives, at each cell, the
plate's corners relative to the cell. Its input size, stride and corner scale are read
from the ONNX file's `plate_detector` metadata. Needs numpy, OpenCV and ONNX Runtime only.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from edge_agent.i18n import _
from edge_agent.plates.letterbox import letterbox, suppress
from edge_agent.plates.ocr import Runtime
from edge_agent.plates.reader import PlateFinder
from edge_agent.plates.yolo import YoloPlateDetector

Box = tuple[int, int, int, int]
DEFAULT_MODEL = Path(__file__).resolve().parent / "models" / "plate_detector.onnx"
METADATA_KEY = "plate_detector"
BUILTIN = "builtin"  # a camera's `detector: builtin`: the model shipped here


class PlateModelError(RuntimeError):
    """The plate detector's model is missing or is not a plate detector."""


@dataclass(frozen=True)
class DetectedPlate:
    """A plate in frame pixels: its upright box (x, y, width, height), the model's score,
    and its corners (top-left, top-right, bottom-right, bottom-left of the plate face,
    4x2) for perspective rectification."""

    box: Box
    score: float
    corners: NDArray[np.float32]


@dataclass(frozen=True)
class ModelLayout:
    """What the model's metadata says about its input and outputs."""

    input_width: int
    input_height: int
    stride: int
    corner_scale: float

    @classmethod
    def parse(cls, metadata: dict[str, str], model: Path) -> "ModelLayout":
        if METADATA_KEY not in metadata:
            raise PlateModelError(
                _(
                    "{model}: no '{key}' metadata, so not a model exported by"
                    " scripts/train_plate_detector.py (a YOLO-layout model goes in the camera's"
                    " detector setting instead)"
                ).format(model=model, key=METADATA_KEY)
            )
        fields = json.loads(metadata[METADATA_KEY])
        return cls(
            int(fields["input_width"]),
            int(fields["input_height"]),
            int(fields["stride"]),
            float(fields["corner_scale"]),
        )


class PlateDetector:
    """Plates in BGR frames of any size, best first; `min_score` trades recall for false
    plates, `iou` is the overlap above which the weaker of two boxes is dropped."""

    def __init__(
        self,
        runtime: Runtime | None = None,
        model: Path = DEFAULT_MODEL,
        min_score: float = 0.4,
        iou: float = 0.3,
    ) -> None:
        if not model.is_file():
            raise PlateModelError(
                _(
                    "plate detector model {model} not found: it ships with the edge agent in"
                    " edge_agent/plates/models/, or train it with scripts/train_plate_detector.py"
                ).format(model=model)
            )
        try:
            self._session = (runtime or Runtime()).session(model)
        except Exception as error:  # ONNX Runtime raises its own untyped errors
            raise PlateModelError(
                _("{model}: not a loadable ONNX model ({why})").format(model=model, why=error)
            ) from error
        self.layout = ModelLayout.parse(self._session.get_modelmeta().custom_metadata_map, model)
        self._input = self._session.get_inputs()[0].name
        self._min_score = min_score
        self._iou = iou

    def detect(self, frame: NDArray[np.uint8]) -> list[DetectedPlate]:
        layout = self.layout
        tensor, scale = letterbox(frame, layout.input_width, layout.input_height)
        heatmap, offsets = self._session.run(None, {self._input: tensor})
        scores = heatmap[0, 0]
        peaks = (scores >= self._min_score) & (scores >= cv2.dilate(scores, np.ones((3, 3))))
        ys, xs = np.nonzero(peaks)
        corners = _pooled_corners(scores, offsets[0], ys, xs, layout) / scale
        height, width = frame.shape[:2]
        boxes = [_upright_box(c, width, height) for c in corners]
        plate_scores = scores[ys, xs].astype(float).tolist()
        kept = suppress(boxes, plate_scores, self._min_score, self._iou)
        return [DetectedPlate(boxes[i], plate_scores[i], corners[i]) for i in kept]

    def regions(self, frame: NDArray[np.uint8]) -> list[Box]:
        """Where the reader looks for text: each plate's upright box."""
        return [plate.box for plate in self.detect(frame)]


def _pooled_corners(
    scores: NDArray[np.float32],
    offsets: NDArray[np.float32],
    ys: NDArray[np.intp],
    xs: NDArray[np.intp],
    layout: ModelLayout,
) -> NDArray[np.float32]:
    """Each peak's corners (N, 4, 2, input pixels) as the score-weighted mean of what
    the cells of its plate say: those inside the middle half of the box the peak's own
    cell gives, scoring at least half the peak. The network is trained to give the
    corners at the cells around a plate's centre, and one cell's guess is noisy: a few pixels
    off on a one-row plate only 10-20 px high is the difference between a box that
    overlaps the plate by IoU 0.5 and one that does not."""
    stride, scale = layout.stride, layout.corner_scale
    grid_y, grid_x = np.mgrid[0 : scores.shape[0], 0 : scores.shape[1]]
    guesses = offsets.reshape(4, 2, *scores.shape) * scale
    guesses[:, 0] += (grid_x + 0.5) * stride
    guesses[:, 1] += (grid_y + 0.5) * stride
    pooled = np.zeros((len(ys), 4, 2), np.float32)
    for i, (y, x) in enumerate(zip(ys, xs, strict=True)):
        own = guesses[:, :, y, x]
        low, high = own.min(axis=0), own.max(axis=0)
        middle, reach = (low + high) / 2, np.maximum((high - low) / 4, stride / 2)
        x0, y0 = np.floor((middle - reach) / stride).astype(int)
        x1, y1 = np.ceil((middle + reach) / stride).astype(int)
        y0, x0 = max(0, min(y0, y)), max(0, min(x0, x))
        y1, x1 = max(y1, y + 1), max(x1, x + 1)
        window = scores[y0:y1, x0:x1]
        weight = np.where(window >= scores[y, x] / 2, window, 0.0)
        pooled[i] = (guesses[:, :, y0:y1, x0:x1] * weight).sum(axis=(2, 3)) / weight.sum()
    return pooled


def _upright_box(corners: NDArray[np.float32], width: int, height: int) -> Box:
    """The upright rectangle around `corners`, clipped to the frame."""
    x0, y0 = np.maximum(corners.min(axis=0), 0)
    x1, y1 = np.minimum(corners.max(axis=0), (width, height))
    return int(x0), int(y0), max(1, int(np.ceil(x1 - x0))), max(1, int(np.ceil(y1 - y0)))


def load_detector(model: Path, runtime: Runtime) -> PlateFinder:
    """The detector a camera's `detector` setting names: `builtin` for the model shipped
    here, or a file, read as this project's model when its metadata says so and as a
    YOLO-layout model otherwise."""
    if model.name == BUILTIN:
        return PlateDetector(runtime)
    if not model.is_file():
        raise PlateModelError(_("plate detector model {model} not found").format(model=model))
    try:
        metadata = onnx_metadata(model)
    except Exception as error:  # ONNX Runtime raises its own untyped errors
        raise PlateModelError(
            _("{model}: not a loadable ONNX model ({why})").format(model=model, why=error)
        ) from error
    if METADATA_KEY in metadata:
        return PlateDetector(runtime, model)
    return YoloPlateDetector(model, runtime.providers, runtime.threads)


def onnx_metadata(model: Path) -> dict[str, str]:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    return dict(session.get_modelmeta().custom_metadata_map)
