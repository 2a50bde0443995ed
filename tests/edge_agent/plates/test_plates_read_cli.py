"""`edge-agent plates read` on generated photos and videos, with the real models."""

import json
import random

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from edge_agent.cli.app import app
from iotwire.plate_formats import Colour
from testbed.plate_scenes import Condition, Layout, make_scene, passing_vehicle, write_video

PLATE_KEYS = ["plate", "display", "confidence", "box", "colour"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plates")
    car = make_scene(random.Random(3), Layout.CAR_ONE_ROW, Condition.DAY)
    bike = make_scene(random.Random(4), Layout.MOTORBIKE, Condition.DAY, Colour.YELLOW)
    cv2.imwrite(str(folder / "car.jpg"), car.image)
    cv2.imwrite(str(folder / "bike.png"), bike.image)
    cv2.imwrite(str(folder / "street.png"), np.full((720, 1280, 3), 110, np.uint8))
    (folder / "notes.txt").write_text("not a picture")
    (folder / "blank.png").write_bytes(b"")
    (folder / "cut.jpg").write_bytes((folder / "car.jpg").read_bytes()[:300])
    rng = random.Random(5)
    first, first_plate = passing_vehicle(rng, Layout.CAR_TWO_ROWS, frames=12)
    second, second_plate = passing_vehicle(rng, Layout.MOTORBIKE, frames=12)
    write_video(str(folder / "street.avi"), first + second, fps=10)
    return {
        "folder": folder,
        "car": car,
        "bike": bike,
        "vehicles": [first_plate, second_plate],
    }


def run(*args: str):
    return CliRunner().invoke(app, ["plates", "read", *args])


def lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines()]


def test_photos_give_one_json_line_each_in_the_documented_shape(files):
    folder = files["folder"]
    result = run(
        "--json", str(folder / "car.jpg"), str(folder / "bike.png"), str(folder / "street.png")
    )
    assert result.exit_code == 0, result.output
    car, bike, street = lines(result.stdout)
    for found, scene, colour in ((car, files["car"], "white"), (bike, files["bike"], "yellow")):
        assert list(found) == ["file", "plates"]
        [plate] = found["plates"]
        assert list(plate) == PLATE_KEYS
        assert plate["plate"] == scene.plate.canonical
        assert plate["plate"].isalnum()
        assert plate["plate"].isupper()
        assert plate["display"] == scene.plate.display
        assert plate["colour"] == colour
        assert 0.5 <= plate["confidence"] <= 1
        x1, y1, x2, y2 = plate["box"]
        x, y, w, h = scene.box
        # Corners, around the plate and not much larger.
        assert x1 < x + w / 2 < x2
        assert y1 < y + h / 2 < y2
        assert x2 - x1 < 2 * w
        assert y2 - y1 < 3 * h
    assert car["file"] == str(folder / "car.jpg")
    assert street == {"file": str(folder / "street.png"), "plates": []}


def test_photos_in_words_one_line_each(files):
    folder = files["folder"]
    result = run(str(folder / "car.jpg"), str(folder / "street.png"))
    assert result.exit_code == 0, result.output
    car, street = result.stdout.splitlines()
    assert car.startswith(f"{folder / 'car.jpg'}: {files['car'].plate.display} (")
    assert "white" in car
    assert street == f"{folder / 'street.png'}: no plate"


def test_a_video_gives_one_line_per_vehicle(files):
    result = run("--json", str(files["folder"] / "street.avi"))
    assert result.exit_code == 0, result.output
    events = lines(result.stdout)
    assert [e["plates"][0]["display"] for e in events] == [p.display for p in files["vehicles"]]
    assert events[0]["time_s"] < events[1]["time_s"]
    for event in events:
        assert list(event) == ["file", "time_s", "votes", "frames", "plates"]
        assert 2 <= event["votes"] <= event["frames"]
        assert list(event["plates"][0]) == PLATE_KEYS


def test_files_that_cannot_be_read_are_named_and_the_rest_still_read(files):
    folder = files["folder"]
    result = run(
        "--json",
        str(folder / "notes.txt"),
        str(folder / "missing.jpg"),
        str(folder / "car.jpg"),
        str(folder / "cut.jpg"),
        str(folder / "blank.png"),
        str(folder),
    )
    assert result.exit_code == 1
    [car] = lines(result.stdout)
    assert car["plates"][0]["plate"] == files["car"].plate.canonical
    assert result.stderr.splitlines() == [
        f"error: {folder / 'notes.txt'}: neither an image nor a video this box can decode",
        f"error: {folder / 'missing.jpg'}: No such file or directory",
        f"error: {folder / 'cut.jpg'}: neither an image nor a video this box can decode",
        f"error: {folder / 'blank.png'}: an empty file",
        f"error: {folder}: a directory: give the files in it",
    ]


def test_missing_models_are_one_clear_line(files, monkeypatch):
    car = str(files["folder"] / "car.jpg")
    result = run("--rec-model", "/nowhere/rec.onnx", car)
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: model /nowhere/rec.onnx: no such file"
    monkeypatch.setattr("edge_agent.plates.ocr.MODEL_PACKAGE", "no_such_ocr_package")
    result = run(car)
    assert result.exit_code == 2
    [message] = result.stderr.splitlines()
    assert "OCR model ch_PP-OCRv4_det_infer.onnx not found" in message
    assert "pip install --no-deps rapidocr-onnxruntime" in message
    assert result.stdout == ""


def test_a_model_that_is_not_one_says_so(files):
    result = run("--detector", str(files["folder"] / "notes.txt"), str(files["folder"] / "car.jpg"))
    assert result.exit_code == 2
    [message] = result.stderr.splitlines()
    assert message.startswith("error: ")
    assert "notes.txt: not a loadable ONNX model" in message
