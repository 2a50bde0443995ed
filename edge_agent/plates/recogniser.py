"""The plate recogniser shipped with the agent: a straightened plate row to its characters.

PP-OCR's recogniser (`ocr.py`) reads any printed text and was trained on none of the
plates' narrow lettering: on rows the detector and `rectify.py` cut cleanly it still drops
the series letter next to the dash (`48-78154`), reads `7` as `1` and loses a digit of a
pair. This network knows nothing but plate rows, over the plate alphabet only, so it has
no sign text to fall back on. It is a small CRNN (convolutions, a bidirectional LSTM,
CTC) trained by `scripts/train_plate_recogniser.py` on generated plates cut by
`rectify.py` exactly as the reader cuts them; its input size and alphabet are read from
the ONNX file's `plate_recogniser` metadata.

Rows are scaled to the model's height, stretched so that a pair of equal characters
keeps a blank step between them, and padded to one width: every row of a frame goes to
the model in one batch. Needs numpy, OpenCV and ONNX Runtime only.
"""

import json
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from edge_agent.i18n import _
from edge_agent.plates.ocr import RowRead, Runtime, row_confidence

Image = NDArray[np.uint8]
DEFAULT_MODEL = Path(__file__).resolve().parent / "models" / "plate_recogniser.onnx"
METADATA_KEY = "plate_recogniser"
ROW_HEIGHT = 32
ROW_WIDTH = 192
# A plate row is 2.5 (a motorbike's top row) to 5 (a one-row plate) times as wide as high;
# stretched 1.25 times, the widest fills ROW_WIDTH, a quarter of it per CTC step.
STRETCH = 1.25
ALPHABET = "0123456789ABCDEFGHKLMNPQRSTUVXYZ-."
MAX_BATCH = 32
# Grey levels between a row's 2nd and 98th percentiles below which it holds no lettering:
# the contrast stretch would turn its noise into strokes for the network to read.
MIN_CONTRAST = 8.0


class RecogniserModelError(RuntimeError):
    """The plate recogniser's model is missing or is not a plate recogniser."""


def _prepared(row: Image) -> tuple[NDArray[np.float32], float]:
    """The row as the network takes it, and its contrast: the grey levels between its
    2nd and 98th percentiles."""
    grey = cv2.cvtColor(row, cv2.COLOR_BGR2GRAY) if row.ndim == 3 else row
    height, width = grey.shape[:2]
    scaled = min(ROW_WIDTH, max(8, round(ROW_HEIGHT * STRETCH * width / max(1, height))))
    resized = cv2.resize(grey, (scaled, ROW_HEIGHT), interpolation=cv2.INTER_AREA).astype(
        np.float32
    )
    low, high = np.percentile(resized, (2, 98))
    resized = np.clip((resized - low) / max(high - low, MIN_CONTRAST), 0.0, 1.0)
    out = np.full((1, ROW_HEIGHT, ROW_WIDTH), float(np.median(resized)), np.float32)
    out[0, :, :scaled] = resized
    return out, float(high - low)


def prepare(row: Image) -> NDArray[np.float32]:
    """A row as the network takes it (1, ROW_HEIGHT, ROW_WIDTH): grey, its contrast
    stretched between its 2nd and 98th percentiles (night and glare alike), scaled to
    the height, stretched, padded on the right with the row's median."""
    return _prepared(row)[0]


def decode(probs: NDArray[np.float32], alphabet: str) -> RowRead:
    """Greedy CTC: the best class per step (0 is the blank), repeats collapsed, blanks
    dropped; each character with the probability it was read with."""
    best = probs.argmax(axis=1)
    keep = best != 0
    keep[1:] &= best[1:] != best[:-1]
    text = "".join(alphabet[i - 1] for i in best[keep])
    chosen = tuple(float(p) for p in probs[np.arange(len(best)), best][keep])
    return RowRead(text, row_confidence(text, chosen, 0.0), chosen)


class PlateRecogniser:
    """Reads straightened plate rows; the same `recognise` as PP-OCR's `TextRecogniser`,
    so the reader takes either."""

    def __init__(self, runtime: Runtime | None = None, model: Path = DEFAULT_MODEL) -> None:
        if not model.is_file():
            raise RecogniserModelError(
                _(
                    "plate recogniser model {model} not found: it ships with the edge agent in"
                    " edge_agent/plates/models/, or train it with"
                    " scripts/train_plate_recogniser.py"
                ).format(model=model)
            )
        try:
            self._session = (runtime or Runtime()).session(model)
        except Exception as error:  # ONNX Runtime raises its own untyped errors
            raise RecogniserModelError(
                _("{model}: not a loadable ONNX model ({why})").format(model=model, why=error)
            ) from error
        metadata = self._session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in metadata:
            raise RecogniserModelError(
                _("{model}: no '{key}' metadata, so not a plate recogniser").format(
                    model=model, key=METADATA_KEY
                )
            )
        self._alphabet = str(json.loads(metadata[METADATA_KEY])["alphabet"])
        self._input = self._session.get_inputs()[0].name

    def recognise(self, rows: Sequence[Image]) -> list[RowRead]:
        """A read per row; a row without lettering's contrast reads as nothing."""
        reads = [RowRead("", 0.0, ())] * len(rows)
        prepared = [_prepared(row) for row in rows]
        lettered = [i for i, (_, contrast) in enumerate(prepared) if contrast >= MIN_CONTRAST]
        for start in range(0, len(lettered), MAX_BATCH):
            chunk = lettered[start : start + MAX_BATCH]
            batch = np.stack([prepared[i][0] for i in chunk])
            [probs] = self._session.run(None, {self._input: batch})
            for i, p in zip(chunk, probs, strict=True):
                reads[i] = decode(p, self._alphabet)
        return reads
