"""The recogniser on rows drawn here in a condensed face, as narrow as plate lettering."""

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from edge_agent.plates.ocr import (
    MAX_BATCH,
    PLATE_ALPHABET,
    SEPARATORS,
    Runtime,
    TextRecogniser,
    _width_buckets,
)

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Bold.ttf"


def row(text: str, squeeze: float = 1.0, height: int = 40) -> np.ndarray:
    """Dark text on a light plate, squeezed horizontally by `squeeze`."""
    font = ImageFont.truetype(FONT, height)
    left, top, right, bottom = font.getbbox(text)
    image = Image.new("RGB", (int(right - left) + 16, int(bottom - top) + 12), (235, 235, 235))
    ImageDraw.Draw(image).text((8 - left, 6 - top), text, font=font, fill=(20, 20, 20))
    pixels = np.asarray(image)[:, :, ::-1]
    width = int(pixels.shape[1] * squeeze)
    return cv2.resize(pixels, (width, pixels.shape[0]), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def plates():
    return TextRecogniser(Runtime())


@pytest.fixture(scope="module")
def text():
    return TextRecogniser(Runtime(), alphabet=None)


@pytest.mark.parametrize("number", ["333.89", "555.55", "111.11", "200.08", "29-HA 002.33"])
@pytest.mark.parametrize("squeeze", [1.0, 0.5, 0.4])
def test_repeated_characters_survive_narrow_lettering(plates, number, squeeze):
    [read] = plates.recognise([row(number, squeeze)])
    assert read.text == number
    assert read.confidence > 0.5


def test_without_the_stretch_narrow_repeats_collapse():
    """Why rows are read wider than they are: at their own width, greedy decoding merges
    a pair of equal digits in narrow lettering."""
    natural = TextRecogniser(Runtime(), stretch=1.0)
    reads = natural.read([row(n, 0.4) for n in ("333.89", "555.55", "111.11")])
    assert {text for text, _ in reads} != {"333.89", "555.55", "111.11"}


def test_only_plate_characters_come_out_and_foreign_ones_cost_confidence(plates, text):
    sign = row("HOTLINE 0905")
    [generic] = text.recognise([sign])
    assert generic.text == "HOTLINE 0905"
    [constrained] = plates.recognise([sign])
    assert set(constrained.text) <= set(PLATE_ALPHABET)
    # O and I were seen and masked: whatever came out in their place is no read.
    assert constrained.confidence < 0.1


def test_a_plate_row_reads_with_its_characters_probabilities(plates):
    [read] = plates.recognise([row("51R-123.45")])
    assert read.text == "51R-123.45"
    assert len(read.probabilities) == len(read.text)
    letters = [
        p for ch, p in zip(read.text, read.probabilities, strict=True) if ch not in SEPARATORS
    ]
    # The weakest character, not the mean: one doubtful character makes a doubtful read.
    assert read.confidence == pytest.approx(min(letters))
    assert all(0 < p <= 1 for p in read.probabilities)


def test_lowercase_and_full_width_classes_count_for_their_letter(plates):
    """The model splits a letter between `v` and `V`; a plate has only the capital."""
    [read] = plates.recognise([row("90V")])
    assert read.text == "90V"
    assert read.confidence > 0.9


def test_rows_of_very_different_widths_read_as_they_do_alone(plates):
    rows = [
        row("68A-123.45"),
        row("SHOP 1900 1234 GIAO HANG TAN NOI 24/7"),
        row("90V"),
        row("123.45"),
    ]
    alone = [plates.read([r])[0][0] for r in rows]
    together = [text for text, _ in plates.read(rows)]
    assert together == alone
    assert together[0] == "68A-123.45"
    assert together[3] == "123.45"
    assert plates.read([]) == []


def test_rows_are_batched_with_rows_of_similar_width_only():
    widths = [100, 1000, 110, 129, 900, 131]
    assert _width_buckets(widths) == [[0, 2, 3], [5], [4, 1]]
    many = _width_buckets([200] * (MAX_BATCH + 3))
    assert [len(b) for b in many] == [MAX_BATCH, 3]
