"""The shipped plate detector on generated streets of the style its training never saw."""

import random
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edge_agent.plates.detector import (
    DetectedPlate,
    PlateDetector,
    PlateModelError,
    load_detector,
)
from edge_agent.plates.ocr import Runtime
from edge_agent.plates.reader import OcrOptions, PlateReader
from iotwire.plate_formats import Colour
from testbed.plate_scenes import HELD_OUT, Condition, Layout, Scene, make_scene, make_street

SEEDS = range(3)


@pytest.fixture(scope="module")
def detector() -> PlateDetector:
    return PlateDetector()


def overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0, min(ay + ah, by + bh) - max(ay, by))
    return w * h / (aw * ah + bw * bh - w * h)


def held_out_scene(layout: Layout, seed: int) -> Scene:
    condition = list(Condition)[seed % len(Condition)]
    colour = list(Colour)[seed % len(Colour)]
    return make_scene(random.Random(seed), layout, condition, colour, style=HELD_OUT)


def best_match(detector: PlateDetector, scene: Scene) -> DetectedPlate | None:
    found = detector.detect(scene.image)
    best = max(found, key=lambda plate: overlap(plate.box, scene.box), default=None)
    return best if best and overlap(best.box, scene.box) >= 0.5 else None


@pytest.mark.parametrize("layout", list(Layout))
def test_finds_most_plates_of_each_layout(detector, layout):
    # The shipped model's held-out recall is 68-93 % by layout (bench/bench_plate_detector.py).
    scenes = [held_out_scene(layout, seed) for seed in SEEDS]
    matches = [best_match(detector, scene) for scene in scenes]
    assert sum(match is not None for match in matches) >= 2


@pytest.mark.parametrize("layout", list(Layout))
def test_corners_come_in_the_plate_s_own_order(detector, layout):
    scene = held_out_scene(layout, 0)
    match = best_match(detector, scene)
    assert match is not None
    top_left, top_right, bottom_right, bottom_left = match.corners
    assert top_left[0] < top_right[0]
    assert bottom_left[0] < bottom_right[0]
    assert top_left[1] < bottom_left[1]
    assert top_right[1] < bottom_right[1]
    centre_error = np.abs(match.corners.mean(axis=0) - scene.corners.mean(axis=0)).max()
    assert centre_error < 0.1 * scene.box[2]


def test_few_signs_pass_for_plates(detector):
    # Issue #18 asks for none; the shipped model still takes about one sign in a
    # plate-less held-out street for a plate, so this guards against it getting worse.
    streets = [make_street(random.Random(1000 + s), HELD_OUT, Condition.DAY, ()) for s in SEEDS]
    false_plates = sum(len(detector.detect(street.image)) for street in streets)
    assert false_plates <= 2 * len(streets)


def test_boxes_are_in_the_frame_s_pixels_whatever_its_size(detector):
    scene = make_scene(random.Random(5), Layout.CAR_ONE_ROW, Condition.DAY, style=HELD_OUT)
    small = cv2.resize(scene.image, (960, 540), interpolation=cv2.INTER_AREA)
    [full] = [p for p in detector.detect(scene.image) if overlap(p.box, scene.box) >= 0.5]
    [scaled] = [
        p
        for p in detector.detect(small)
        if overlap(p.box, tuple(round(v * 0.75) for v in scene.box)) >= 0.5
    ]
    assert np.abs(scaled.corners / 0.75 - full.corners).max() < 12


def test_a_missing_model_is_named_with_where_it_comes_from(tmp_path):
    with pytest.raises(PlateModelError, match="not found"):
        PlateDetector(model=tmp_path / "missing.onnx")


def test_a_model_that_is_not_a_plate_detector_is_refused(tmp_path: Path):
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 8, 8])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, 8, 8])
    graph = helper.make_graph(
        [helper.make_node("Identity", ["image"], ["out"])], "g", [image], [out]
    )
    model = tmp_path / "other.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(model))
    with pytest.raises(PlateModelError, match="not a model exported"):
        PlateDetector(model=model)
    (tmp_path / "garbage.onnx").write_bytes(b"not onnx")
    with pytest.raises(PlateModelError, match="not a loadable ONNX model"):
        PlateDetector(model=tmp_path / "garbage.onnx")


def test_a_camera_asking_for_the_builtin_detector_reads_plates_inside_its_boxes(tmp_path):
    finder = load_detector(tmp_path / "builtin", Runtime())
    assert isinstance(finder, PlateDetector)
    reader = PlateReader(OcrOptions(), finder)
    scene = make_scene(random.Random(1), Layout.MOTORBIKE, Condition.DAY)
    assert [c.plate.canonical for c in reader.read(scene.image)] == [scene.plate.canonical]
    with pytest.raises(PlateModelError, match="not found"):
        load_detector(tmp_path / "absent.onnx", Runtime())
    not_onnx = tmp_path / "plates.onnx"
    not_onnx.write_bytes(b"not a model")
    with pytest.raises(PlateModelError, match="not a loadable ONNX model"):
        load_detector(not_onnx, Runtime())
