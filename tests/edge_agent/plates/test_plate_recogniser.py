"""The shipped plate recogniser on rows cut from plates lettered in faces it never saw."""

import random
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edge_agent.plates.ocr import Runtime
from edge_agent.plates.reader import OcrOptions, PlateReader
from edge_agent.plates.recogniser import (
    ALPHABET,
    ROW_HEIGHT,
    ROW_WIDTH,
    PlateRecogniser,
    RecogniserModelError,
    decode,
    prepare,
)
from edge_agent.plates.rectify import rectify
from iotwire.plate_formats import Colour, parse_plate
from testbed.plate_scenes import HELD_OUT, Condition, Layout, _rows, make_scene, render_plate


@pytest.fixture(scope="module")
def recogniser() -> PlateRecogniser:
    return PlateRecogniser(Runtime())


def plate_box(corners: np.ndarray) -> tuple[int, int, int, int]:
    x0, y0 = corners.min(axis=0)
    x1, y1 = corners.max(axis=0)
    return int(x0), int(y0), int(x1 - x0), int(y1 - y0)


def test_reads_most_rows_of_held_out_plates(recogniser):
    # Lettered in HELD_OUT's faces, which the training never draws.
    right, total = 0, 0
    for seed in range(12):
        layout = list(Layout)[seed % 3]
        scene = make_scene(random.Random(seed), layout, Condition.DAY, style=HELD_OUT)
        cut = rectify(scene.image, plate_box(scene.corners))
        labels = _rows(scene.plate, layout)
        if len(cut.rows) != len(labels):
            continue
        reads = recogniser.recognise(cut.rows)
        right += sum(r.text == label for r, label in zip(reads, labels, strict=True))
        total += len(labels)
    assert total >= 15
    assert right >= 0.8 * total


def test_a_pair_of_equal_digits_is_read_as_two(recogniser):
    plate = parse_plate("51F\n33389", typed=True)
    face = render_plate(plate, Layout.CAR_TWO_ROWS, Colour.WHITE, random.Random(3))
    height, width = face.shape[:2]
    cut = rectify(face, (0, 0, width, height))
    texts = [r.text for r in recogniser.recognise(cut.rows)]
    assert texts == ["51F", "333.89"]


def test_nothing_is_read_from_a_blank_row(recogniser):
    [read] = recogniser.recognise([np.full((40, 180, 3), 200, np.uint8)])
    assert read.text == ""
    assert read.confidence == 0.0


def test_decoding_keeps_a_repeat_split_by_a_blank_and_collapses_one_that_is_not():
    classes = len(ALPHABET) + 1
    three = ALPHABET.index("3") + 1
    steps = [three, three, 0, three, 0]
    probs = np.zeros((len(steps), classes), np.float32)
    probs[np.arange(len(steps)), steps] = 0.9
    read = decode(probs, ALPHABET)
    assert read.text == "33"
    assert read.probabilities == pytest.approx((0.9, 0.9))


def test_rows_of_any_shape_are_made_the_model_s_input():
    for shape in ((64, 300, 3), (20, 900, 3), (90, 10, 3), (30, 60)):
        tensor = prepare(np.random.default_rng(1).integers(0, 255, shape, np.uint8))
        assert tensor.shape == (1, ROW_HEIGHT, ROW_WIDTH)
        assert tensor.min() >= 0.0
        assert tensor.max() <= 1.0


def test_a_missing_or_foreign_model_is_refused_with_why(tmp_path: Path):
    with pytest.raises(RecogniserModelError, match="not found"):
        PlateRecogniser(model=tmp_path / "missing.onnx")
    (tmp_path / "garbage.onnx").write_bytes(b"not onnx")
    with pytest.raises(RecogniserModelError, match="not a loadable ONNX model"):
        PlateRecogniser(model=tmp_path / "garbage.onnx")
    rows = helper.make_tensor_value_info("rows", TensorProto.FLOAT, [1, 1, 32, 192])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 1, 32, 192])
    graph = helper.make_graph([helper.make_node("Identity", ["rows"], ["out"])], "g", [rows], [out])
    other = tmp_path / "other.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(other))
    with pytest.raises(RecogniserModelError, match="not a plate recogniser"):
        PlateRecogniser(model=other)


def test_the_reader_reads_a_detected_plate_with_it(recogniser):
    scene = make_scene(random.Random(7), Layout.CAR_ONE_ROW, Condition.NIGHT, style=HELD_OUT)
    read = PlateReader(OcrOptions(), plate_rows=recogniser).read_plate(
        scene.image, plate_box(scene.corners)
    )
    assert read is not None
    assert read.plate.canonical == scene.plate.canonical
