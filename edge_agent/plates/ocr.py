"""PP-OCR text detection and recognition run directly on ONNX Runtime.

The models are PP-OCRv4's detector (DBNet) and recogniser (SVTR with CTC), the ONNX files
shipped inside the `rapidocr-onnxruntime` wheel. Only the files are used: that package's
own pipeline pulls in the GUI build of OpenCV (which needs an X stack a pole box does
not have), hides ONNX Runtime's execution providers behind two booleans, and upscales
every image to 736 px before detecting. Here the caller chooses the scale, the threads and
the providers (CPU here, CUDA or TensorRT on a Jetson), and rows are recognised in
batches of similar width, read only as the characters a plate can hold. A tilted row is
kept by its own outline and comes with its rotated rectangle, so that it can be read
straightened. Install the models with `pip install --no-deps rapidocr-onnxruntime`.
"""

import importlib.util
import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from edge_agent.i18n import _
from edge_agent.plates.rectify import MAX_TILT, Quad, order_corners, wide_rect

Image = NDArray[np.uint8]
Box = tuple[int, int, int, int]
MODEL_PACKAGE = "rapidocr_onnxruntime"
DET_MODEL = "ch_PP-OCRv4_det_infer.onnx"
REC_MODEL = "ch_PP-OCRv4_rec_infer.onnx"
REC_HEIGHT = 48
# What a plate can show: digits, the series letters (with R for trailers, Q for the QT
# special series), separators. The model has no Đ: it reads as D, which is how the
# canonical form writes it anyway.
PLATE_ALPHABET = "0123456789ABCDEFGHKLMNPQRSTUVXYZ-. "
SEPARATORS = frozenset("-. ")
STRETCH = 1.5
BUCKET_SPREAD = 1.3
MAX_BATCH = 16
# DBNet post-processing, as PP-OCR ships it: pixel and box thresholds, box expansion.
PIXEL_THRESHOLD = 0.3
BOX_THRESHOLD = 0.5
UNCLIP_RATIO = 1.6
# A row whose rotated rectangle is rolled by more than this (and at most MAX_TILT: steeper
# is a vertical line, not a plate's) is scored over its own shape and read straightened;
# an upright one keeps PP-OCR's upright-box handling.
TILTED_DEGREES = 3.0


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
        _(
            "OCR model {name} not found: install it with `pip install --no-deps"
            " rapidocr-onnxruntime`, or set its path in the camera's ocr settings"
        ).format(name=name)
    )


@dataclass(frozen=True)
class Runtime:
    """How ONNX Runtime runs the models. One inference at a time, each on `threads`
    threads, fully optimised. Threads do not spin waiting for work between operators
    unless `spin`: on a 2-core box the capture thread, the agent and the other model
    need those cycles, and spinning threads measured twice as slow per row batch there
    while anything else ran."""

    threads: int = 2
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    spin: bool = False

    def session(self, model: Path) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry(
            "session.intra_op.allow_spinning", "1" if self.spin else "0"
        )
        options.log_severity_level = 3
        return ort.InferenceSession(str(model), options, providers=list(self.providers))


def _normalise(image: cv2.typing.MatLike) -> NDArray[np.float32]:
    return ((image.astype(np.float32) / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)


@dataclass(frozen=True)
class TextBox:
    """A text row found: its upright box, and for a tilted row its rotated rectangle's
    corners (top-left first, clockwise), by which it is read straightened."""

    box: Box
    quad: Quad | None = None


class TextDetector:
    """Where text rows are, as boxes in the image's pixels."""

    def __init__(self, runtime: Runtime, model: Path | None = None) -> None:
        self._session = runtime.session(model or packaged_model(DET_MODEL))
        self._input = self._session.get_inputs()[0].name

    def detect(self, image: Image, scale: float, straighten: bool = True) -> list[TextBox]:
        """Text rows in `image`, looked for at `scale` (small text needs about 10 px).

        An upright row's score is the mean probability over its upright box, as PP-OCR's
        fast scoring has it. With `straighten`, a tilted row is scored over its own
        outline instead, and comes with its rotated rectangle: a one-row plate rolled by
        10 degrees fills less than half of its upright box and would be dropped however
        sharp it is."""
        h, w = image.shape[:2]
        th, tw = (max(32, round(h * scale / 32) * 32), max(32, round(w * scale / 32) * 32))
        resized = cv2.resize(image, (tw, th))
        [prob] = self._session.run(None, {self._input: _normalise(resized)[None]})
        prob = prob[0, 0]
        mask = cv2.dilate((prob > PIXEL_THRESHOLD).astype(np.uint8), np.ones((2, 2), np.uint8))
        contours, _hierarchy = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        sx, sy = w / tw, h / th
        boxes = []
        for contour in contours:
            x, y, bw, bh = cv2.boundingRect(contour)
            if min(bw, bh) < 3:
                continue
            (cx, cy), (rw, rh), angle = wide_rect(contour)
            if not straighten or not TILTED_DEGREES <= abs(angle) <= MAX_TILT:
                if prob[y : y + bh, x : x + bw].mean() < BOX_THRESHOLD:
                    continue
                # Unclip: DBNet's maps shrink text; grow by area * ratio / perimeter.
                grow = bw * bh * UNCLIP_RATIO / (2 * (bw + bh))
                x0, y0 = max(0.0, (x - grow) * sx), max(0.0, (y - grow) * sy)
                x1, y1 = min(w, (x + bw + grow) * sx), min(h, (y + bh + grow) * sy)
                boxes.append(TextBox((int(x0), int(y0), math.ceil(x1 - x0), math.ceil(y1 - y0))))
                continue
            outline = np.zeros((bh, bw), np.uint8)
            cv2.fillPoly(outline, [contour - (x, y)], 1)
            if cv2.mean(prob[y : y + bh, x : x + bw], outline)[0] < BOX_THRESHOLD:
                continue
            grow = rw * rh * UNCLIP_RATIO / (2 * (rw + rh))
            rect = ((cx, cy), (rw + 2 * grow, rh + 2 * grow), angle)
            quad = order_corners(cv2.boxPoints(rect) * np.array([sx, sy], np.float32))
            x0, y0 = np.maximum(quad.min(axis=0), 0)
            x1, y1 = np.minimum(quad.max(axis=0), (w, h))
            upright = (int(x0), int(y0), math.ceil(x1 - x0), math.ceil(y1 - y0))
            boxes.append(TextBox(upright, quad))
        return boxes


@dataclass(frozen=True)
class RowRead:
    """What one text row says. `probabilities` holds, for each character of `text`, the
    model's probability of that character where it was read: the evidence a later step
    (the plate format, a vote across frames) can weigh character by character."""

    text: str
    confidence: float
    probabilities: tuple[float, ...]


def row_confidence(text: str, probabilities: Sequence[float], foreign: float) -> float:
    """The least sure character's probability: a read is as trustworthy as its weakest
    character, which a mean over eight confident ones hides. Separators are left out:
    they do not change which plate it is. `foreign` is the most probability a step among
    the characters gave to characters outside the alphabet: a character the model saw
    there and masking took away (`HOTLINE` read as `HTLNE`) leaves no weak character
    behind, only this."""
    kept = [p for ch, p in zip(text, probabilities, strict=True) if ch not in SEPARATORS]
    return min(1.0 - foreign, *kept) if kept else 0.0


def _folded(character: str) -> str:
    """The plate character a model class stands for. A full-width form (`０`, `Ａ`) is the
    same glyph as its ASCII one, and a lowercase letter the same letter to a plate (the
    format reads text uppercased): the model splits one character's probability between
    such classes (`v` 0.54, `V` 0.46), and both halves are that character's."""
    if unicodedata.decomposition(character).startswith("<wide>"):
        character = unicodedata.normalize("NFKC", character)
    return character.upper() if character.isascii() and character.isalpha() else character


class TextRecogniser:
    """What text rows say, each with a calibrated confidence.

    With `alphabet` (by default the plate's), every class outside it is masked before the
    best class is chosen at each step, so a shop sign's letters cannot come out as plate
    characters with the model's confidence in something else: the probability reported is
    the chosen character's own, small when the model saw a character the plate alphabet
    lacks. `alphabet=None` reads any text the model knows.

    Rows are resized to the model's height and stretched `stretch` times horizontally:
    greedy CTC keeps a repeated character only with a blank step between the two, and the
    plates' narrow lettering leaves too few steps per character at the natural width
    (`555.55` read as `5555`). Rows go to the model in batches of similar width, so one
    long sign does not make every plate row as expensive as itself.
    """

    def __init__(
        self,
        runtime: Runtime,
        model: Path | None = None,
        alphabet: str | None = PLATE_ALPHABET,
        stretch: float = STRETCH,
    ) -> None:
        self._session = runtime.session(model or packaged_model(REC_MODEL))
        self._input = self._session.get_inputs()[0].name
        characters = self._session.get_modelmeta().custom_metadata_map["character"].splitlines()
        classes = ["", *characters, " "]  # CTC blank first, then a space at the end
        self._stretch = stretch
        if alphabet is None:
            self._characters = classes
            self._columns: list[list[int]] | None = None
        else:
            wanted = dict.fromkeys(alphabet)
            columns: dict[str, list[int]] = {ch: [] for ch in wanted}
            for index, ch in enumerate(classes):
                if index and _folded(ch) in columns:
                    columns[_folded(ch)].append(index)
            known = [ch for ch in wanted if columns[ch]]
            self._characters = ["", *known]
            self._columns = [[0], *(columns[ch] for ch in known)]

    def read(self, rows: Sequence[Image]) -> list[tuple[str, float]]:
        """Each row's text and confidence."""
        return [(r.text, r.confidence) for r in self.recognise(rows)]

    def recognise(self, rows: Sequence[Image]) -> list[RowRead]:
        """Each row's read, with its characters' probabilities, in the order given."""
        widths = [self._width(row) for row in rows]
        reads: list[RowRead | None] = [None] * len(rows)
        for batch in _width_buckets(widths):
            width = max(widths[i] for i in batch)
            tensor = np.zeros((len(batch), 3, REC_HEIGHT, width), np.float32)
            for slot, i in enumerate(batch):
                resized = cv2.resize(rows[i], (widths[i], REC_HEIGHT))
                tensor[slot, :, :, : widths[i]] = _normalise(resized)
            [probs] = self._session.run(None, {self._input: tensor})
            for slot, i in enumerate(batch):
                # Only the steps over the row itself: the padding is not part of it.
                steps = math.ceil(probs.shape[1] * widths[i] / width)
                reads[i] = self._decode(probs[slot, :steps])
        return [r for r in reads if r is not None]

    def _width(self, row: Image) -> int:
        ratio = int(row.shape[1]) / max(1, int(row.shape[0]))
        return max(REC_HEIGHT, math.ceil(REC_HEIGHT * self._stretch * ratio))

    def _decode(self, probs: NDArray[np.float32]) -> RowRead:
        """Greedy CTC over the allowed characters: the best class per step, repeats
        collapsed, blanks dropped."""
        allowed = probs
        if self._columns is not None:
            allowed = np.stack([probs[:, c].sum(axis=1) for c in self._columns], axis=1)
        best = allowed.argmax(axis=1)
        keep = best != 0
        keep[1:] &= best[1:] != best[:-1]
        text = "".join(self._characters[i] for i in best[keep])
        chosen = tuple(float(p) for p in allowed[np.arange(len(best)), best][keep])
        # Only between the first character and the last: a screw or the border beside
        # the text (read as `'` or `|`) takes nothing away from it.
        steps = np.flatnonzero(keep)
        inside = allowed[steps[0] : steps[-1] + 1] if len(steps) else allowed[:0]
        foreign = float(np.clip(1.0 - inside.sum(axis=1), 0.0, 1.0).max(initial=0.0))
        return RowRead(text, row_confidence(text, chosen, foreign), chosen)


def _width_buckets(widths: Sequence[int]) -> list[list[int]]:
    """Row indices grouped by width, narrowest first: a batch is padded to its widest
    row, so rows are batched only with rows at most BUCKET_SPREAD times as wide, and at
    most MAX_BATCH at a time."""
    batches: list[list[int]] = []
    for i in sorted(range(len(widths)), key=lambda i: widths[i]):
        if (
            batches
            and len(batches[-1]) < MAX_BATCH
            and widths[i] <= BUCKET_SPREAD * widths[batches[-1][0]]
        ):
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches
