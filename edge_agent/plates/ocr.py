"""PP-OCR text detection and recognition run directly on ONNX Runtime.

The models are PP-OCRv4's detector (DBNet) and recogniser (SVTR with CTC), the ONNX files
shipped inside the `rapidocr-onnxruntime` wheel. Only the files are used: that package's
own pipeline pulls in the GUI build of OpenCV (which needs an X stack a pole box does
not have), hides ONNX Runtime's execution providers behind two booleans, and upscales
every image to 736 px before detecting. Here the caller chooses the scale, the threads and
the providers (CPU here, CUDA or TensorRT on a Jetson), and rows are recognised in one
batch. Install the models with `pip install --no-deps rapidocr-onnxruntime`.
"""

import importlib.util
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

Image = NDArray[np.uint8]
Box = tuple[int, int, int, int]
MODEL_PACKAGE = "rapidocr_onnxruntime"
DET_MODEL = "ch_PP-OCRv4_det_infer.onnx"
REC_MODEL = "ch_PP-OCRv4_rec_infer.onnx"
REC_HEIGHT = 48
# DBNet post-processing, as PP-OCR ships it: pixel and box thresholds, box expansion.
PIXEL_THRESHOLD = 0.3
BOX_THRESHOLD = 0.5
UNCLIP_RATIO = 1.6


class ModelMissingError(RuntimeError):
    """The OCR models are not installed; the message says how to install them."""


def packaged_model(name: str) -> Path:
    """A model file from the installed package, found without importing the package."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    locations = spec.submodule_search_locations if spec else None
    if locations:
        path = Path(next(iter(locations))) / "models" / name
        if path.is_file():
            return path
    raise ModelMissingError(
        f"OCR model {name} not found: install it with `pip install --no-deps "
        "rapidocr-onnxruntime`, or set its path in the camera's ocr settings"
    )


@dataclass(frozen=True)
class Runtime:
    threads: int = 2
    providers: tuple[str, ...] = ("CPUExecutionProvider",)

    def session(self, model: Path) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        return ort.InferenceSession(str(model), options, providers=list(self.providers))


def _normalise(image: cv2.typing.MatLike) -> NDArray[np.float32]:
    return ((image.astype(np.float32) / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)


class TextDetector:
    """Where text rows are, as boxes in the image's pixels."""

    def __init__(self, runtime: Runtime, model: Path | None = None) -> None:
        self._session = runtime.session(model or packaged_model(DET_MODEL))
        self._input = self._session.get_inputs()[0].name

    def detect(self, image: Image, scale: float) -> list[Box]:
        """Text boxes in `image`, looked for at `scale` (small text needs about 10 px)."""
        h, w = image.shape[:2]
        th, tw = (max(32, round(h * scale / 32) * 32), max(32, round(w * scale / 32) * 32))
        resized = cv2.resize(image, (tw, th))
        [prob] = self._session.run(None, {self._input: _normalise(resized)[None]})
        prob = prob[0, 0]
        mask = cv2.dilate((prob > PIXEL_THRESHOLD).astype(np.uint8), np.ones((2, 2), np.uint8))
        contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        sx, sy = w / tw, h / th
        boxes = []
        for contour in contours:
            x, y, bw, bh = cv2.boundingRect(contour)
            if min(bw, bh) < 3 or prob[y : y + bh, x : x + bw].mean() < BOX_THRESHOLD:
                continue
            # Unclip: DBNet's maps shrink text; grow the box back by area * ratio / perimeter.
            grow = bw * bh * UNCLIP_RATIO / (2 * (bw + bh))
            x0, y0 = max(0.0, (x - grow) * sx), max(0.0, (y - grow) * sy)
            x1, y1 = min(w, (x + bw + grow) * sx), min(h, (y + bh + grow) * sy)
            boxes.append((int(x0), int(y0), math.ceil(x1 - x0), math.ceil(y1 - y0)))
        return boxes


class TextRecogniser:
    """What a text row says, with the model's mean confidence over its characters."""

    def __init__(self, runtime: Runtime, model: Path | None = None) -> None:
        self._session = runtime.session(model or packaged_model(REC_MODEL))
        self._input = self._session.get_inputs()[0].name
        characters = self._session.get_modelmeta().custom_metadata_map["character"].splitlines()
        self._alphabet = ["", *characters, " "]  # CTC blank first, then a space at the end

    def read(self, rows: Sequence[Image]) -> list[tuple[str, float]]:
        if not rows:
            return []
        ratio = max(r.shape[1] / max(1, r.shape[0]) for r in rows)
        width = max(REC_HEIGHT, math.ceil(REC_HEIGHT * ratio))
        batch = np.zeros((len(rows), 3, REC_HEIGHT, width), np.float32)
        for i, row in enumerate(rows):
            w = min(width, math.ceil(REC_HEIGHT * row.shape[1] / max(1, row.shape[0])))
            batch[i, :, :, :w] = _normalise(cv2.resize(row, (max(1, w), REC_HEIGHT)))
        [probs] = self._session.run(None, {self._input: batch})
        return [self._decode(p) for p in probs]

    def _decode(self, probs: NDArray[np.float32]) -> tuple[str, float]:
        """Greedy CTC: the best class per step, repeats collapsed, blanks dropped."""
        best, confidence = probs.argmax(axis=1), probs.max(axis=1)
        keep = best != 0
        keep[1:] &= best[1:] != best[:-1]
        text = "".join(self._alphabet[i] for i in best[keep])
        return text, float(confidence[keep].mean()) if keep.any() else 0.0
