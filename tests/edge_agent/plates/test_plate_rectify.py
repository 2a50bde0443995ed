"""Straightening plates before reading them: tilted and skewed plates of the held-out
generator style, two-row plates cut at their gap, and crops with no plate border."""

import random

import cv2
import numpy as np
import pytest

from edge_agent.config import CameraSettings
from edge_agent.plates.detector import PlateDetector
from edge_agent.plates.ocr import Runtime, TextRecogniser
from edge_agent.plates.reader import OcrOptions, PlateReader
from edge_agent.plates.rectify import MAX_GAP_INK, Method, rectify, row_gap
from edge_agent.sources.camera import build_reader
from iotwire.plate_formats import Colour, parse_plate
from testbed.plate_scenes import HELD_OUT, Condition, Layout, Scene, make_scene, render_plate

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed.ttf"


@pytest.fixture(scope="module")
def straightened() -> PlateReader:
    return PlateReader(OcrOptions())


@pytest.fixture(scope="module")
def as_before() -> PlateReader:
    return PlateReader(OcrOptions(rectify=False))


@pytest.fixture(scope="module")
def words() -> TextRecogniser:
    return TextRecogniser(Runtime())


def confidence(reader: PlateReader, scene: Scene) -> float | None:
    """The confidence of the exact read of the scene's plate, None when it is not read."""
    reads = [c for c in reader.read(scene.image) if c.plate == scene.plate]
    return reads[0].confidence if reads else None


def tilted(layout: Layout, degrees: float = 15.0) -> Scene:
    return make_scene(random.Random(0), layout, Condition.DAY, style=HELD_OUT, tilt=degrees)


@pytest.mark.parametrize("layout", list(Layout))
def test_a_tilted_plate_is_read_once_straightened(straightened, as_before, layout):
    scene = tilted(layout)
    assert confidence(as_before, scene) is None
    assert (confidence(straightened, scene) or 0.0) > 0.9


@pytest.mark.parametrize("layout", list(Layout))
def test_a_plate_seen_at_an_angle_is_read_once_straightened(straightened, as_before, layout):
    scene = make_scene(random.Random(0), layout, Condition.ANGLE, style=HELD_OUT)
    assert confidence(as_before, scene) is None
    assert (confidence(straightened, scene) or 0.0) > 0.9


def test_the_plate_detector_s_plates_are_read_straightened():
    detector = PlateDetector()
    scene = tilted(Layout.CAR_ONE_ROW)
    before = PlateReader(OcrOptions(rectify=False), detector)
    after = PlateReader(OcrOptions(), detector)
    assert confidence(before, scene) is None
    [read] = [c for c in after.read(scene.image) if c.plate == scene.plate]
    assert read.confidence > 0.9
    assert read.colour is Colour.WHITE
    x, y, w, h = scene.box
    rx, ry, rw, rh = read.box
    assert abs(rx + rw / 2 - (x + w / 2)) < 0.1 * w
    assert abs(ry + rh / 2 - (y + h / 2)) < 0.2 * h


@pytest.mark.parametrize("layout", [Layout.CAR_TWO_ROWS, Layout.MOTORBIKE])
def test_a_tilted_two_row_plate_is_cut_at_its_row_gap(words, layout):
    scene = tilted(layout, 10.0)
    plate = rectify(scene.image, scene.box)
    assert plate.method is Method.BORDER
    top, bottom = plate.rows
    split, ink = row_gap(plate.image)
    assert 0.4 < split / plate.image.shape[0] < 0.6
    assert ink < MAX_GAP_INK
    reads = words.read([top, bottom])
    assert parse_plate("\n".join(text for text, _ in reads)) == scene.plate


def test_the_gap_is_between_the_rows_of_a_frontal_plate_and_a_one_row_plate_has_none():
    two_rows = parse_plate("51F\n12345")
    face = render_plate(two_rows, Layout.CAR_TWO_ROWS, Colour.WHITE, random.Random(1), (FONT,))
    split, ink = row_gap(face)
    assert abs(split / face.shape[0] - 0.5) < 0.1
    assert ink < MAX_GAP_INK
    one_row = parse_plate("51F12345")
    face = render_plate(one_row, Layout.CAR_ONE_ROW, Colour.WHITE, random.Random(1), (FONT,))
    assert row_gap(face)[1] >= MAX_GAP_INK


def lettering_without_border(degrees: float) -> np.ndarray:
    """A plate's text rolled by `degrees` on paper that fills the frame: no border."""
    image = np.full((300, 500, 3), 225, np.uint8)
    cv2.putText(image, "51F-123.45", (70, 170), cv2.FONT_HERSHEY_SIMPLEX, 1.8, (20, 20, 20), 4)
    turn = cv2.getRotationMatrix2D((250, 150), -degrees, 1.0)
    return cv2.warpAffine(image, turn, (500, 300), borderValue=(225, 225, 225))


def test_lettering_without_a_border_is_straightened_by_its_own_tilt(words):
    image = lettering_without_border(12.0)
    plate = rectify(image, (50, 90, 400, 120))
    assert plate.method is Method.TEXT
    [row] = plate.rows
    assert words.read([row])[0][0] == "51F-123.45"


@pytest.mark.parametrize("box", [(40, 40, 200, 60), (0, 0, 3, 3), (470, 280, 60, 60)])
def test_a_crop_without_plate_or_lettering_is_read_as_it_is(box):
    grey = np.random.default_rng(3).normal(120, 8, (300, 500, 3))
    image = np.clip(grey, 0, 255).astype(np.uint8)
    plate = rectify(image, box)
    assert plate.method is Method.CROP
    assert len(plate.rows) == 1
    assert plate.rows[0].size > 0


def test_a_camera_s_ocr_rectify_setting_turns_straightening_on_and_off():
    scene = tilted(Layout.CAR_ONE_ROW)
    readers = {
        on: build_reader(CameraSettings(name="cam", url="street.avi", ocr={"rectify": on}))
        for on in (True, False)
    }
    assert confidence(readers[True], scene) is not None
    assert confidence(readers[False], scene) is None
