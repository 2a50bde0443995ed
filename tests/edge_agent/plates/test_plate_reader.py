"""Reading generated scenes with the real ONNX models, and the YOLO-layout detector path."""

import random

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge_agent.plates.reader import OcrOptions, PlateReader
from edge_agent.plates.yolo import YoloPlateDetector
from iotwire.plate_formats import Colour
from testbed.plate_scenes import Condition, Layout, make_scene


@pytest.fixture(scope="module")
def reader():
    return PlateReader(OcrOptions())


CASES = [
    (layout, condition, colour)
    for layout in Layout
    for condition, colour in zip(Condition, Colour, strict=True)
]


@pytest.mark.parametrize(("layout", "condition", "colour"), CASES)
def test_generated_scenes_are_read(reader, layout, condition, colour):
    scene = make_scene(random.Random(f"{layout}{condition}"), layout, condition, colour)
    reads = {c.plate.canonical: c for c in reader.read(scene.image)}
    assert scene.plate.canonical in reads, [c.plate.display for c in reads.values()]
    read = reads[scene.plate.canonical]
    assert read.plate.display == scene.plate.display
    assert read.colour is colour
    x, y, w, h = scene.box
    rx, ry, rw, rh = read.box
    assert (rx < x + w, x < rx + rw) == (True, True)  # where the plate is
    assert (ry < y + h, y < ry + rh) == (True, True)


def yolo_model(path, rows: np.ndarray) -> None:
    """An ONNX model in YOLOv8's output layout whose answer is fixed: enough to drive the
    detector's real input and output handling through ONNX Runtime."""
    images = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 640, 640])
    output = helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(rows.shape))
    zero = helper.make_node("ReduceSum", ["images"], ["total"], keepdims=0)
    scaled = helper.make_node("Mul", ["total", "nothing"], ["none"])
    answer = helper.make_node("Add", ["fixed", "none"], ["output0"])
    graph = helper.make_graph(
        [zero, scaled, answer],
        "plates",
        [images],
        [output],
        [
            numpy_helper.from_array(rows, "fixed"),
            numpy_helper.from_array(np.array(0.0, np.float32), "nothing"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))


def test_a_yolo_layout_detector_finds_the_plate_that_is_then_read(tmp_path):
    scene = make_scene(random.Random(11), Layout.MOTORBIKE, Condition.DAY)
    x, y, w, h = scene.box
    scale = 640 / 1280  # the frame's longer side letterboxed into 640
    cx, cy = (x + w / 2) * scale, (y + h / 2) * scale
    # YOLOv8: (1, 4 + classes, candidates): a plate, a weaker duplicate of it that
    # suppression removes, and candidates below the score threshold.
    rows = np.zeros((1, 5, 200), np.float32)
    rows[0, :, 0] = [cx, cy, w * scale * 1.3, h * scale * 1.3, 0.9]
    rows[0, :, 1] = [cx + 2, cy + 1, w * scale * 1.3, h * scale * 1.3, 0.6]
    rows[0, :, 2:] = np.array([[50.0], [50.0], [10.0], [10.0], [0.1]], np.float32)
    model = tmp_path / "plates.onnx"
    yolo_model(model, rows)
    detector = YoloPlateDetector(model)
    [box] = detector.detect(scene.image)
    assert abs(box[0] + box[2] / 2 - (x + w / 2)) < 3
    assert abs(box[1] + box[3] / 2 - (y + h / 2)) < 3
    [read] = PlateReader(OcrOptions(), detector).read(scene.image)
    assert read.plate.canonical == scene.plate.canonical


def test_regions_limit_where_text_is_looked_for(reader):
    scene = make_scene(random.Random(21), Layout.CAR_TWO_ROWS, Condition.DAY)
    x, y, w, h = scene.box
    around = [(x - w, y - h, 3 * w, 3 * h)]
    [read] = reader.read(scene.image, around)
    assert read.plate.canonical == scene.plate.canonical
    elsewhere = [(0, 0, 100, 100)] if x > 300 else [(1100, 0, 100, 100)]
    assert reader.read(scene.image, elsewhere) == []
