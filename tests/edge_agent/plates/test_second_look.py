"""The camera's reader: a text search, then a second look at the shipped detector's plates
read by the shipped plate recogniser; and while a plate is tracked, that look first."""

import random

import pytest

from edge_agent.config import CameraSettings, OcrSettings
from edge_agent.plates.detector import PlateDetector
from edge_agent.plates.reader import Box, PlateReader, _same_place, printed_as_plate
from edge_agent.sources.camera import build_reader
from iotwire.plate_formats import Colour, parse_plate
from testbed.plate_scenes import HELD_OUT, Condition, Layout, PlacedPlate, Street, make_street


@pytest.fixture(scope="module")
def reader() -> PlateReader:
    return build_reader(CameraSettings(name="pole", url="street.avi"))


@pytest.fixture(scope="module")
def text_alone() -> PlateReader:
    settings = CameraSettings(name="pole", url="street.avi", ocr=OcrSettings(second_look=False))
    return build_reader(settings)


def blurred_street(seed: int) -> Street:
    """A held-out street with one two-row car plate, blurred by the vehicle's motion."""
    plates = ((Layout.CAR_TWO_ROWS, Colour.WHITE),)
    return make_street(random.Random(seed), HELD_OUT, Condition.BLUR, plates)


def box_of(plate: PlacedPlate) -> Box:
    x0, y0 = plate.corners.min(axis=0)
    x1, y1 = plate.corners.max(axis=0)
    return int(x0), int(y0), int(x1 - x0), int(y1 - y0)


def read(reader: PlateReader, street: Street, regions=()) -> set[str]:
    return {candidate.plate.canonical for candidate in reader.read(street.image, regions)}


def test_a_plate_the_text_search_misses_is_read_at_the_second_look(reader, text_alone):
    street = blurred_street(23)
    [plate] = street.plates
    assert read(text_alone, street) == set()
    assert read(reader, street) == {plate.plate.canonical}


def test_an_unsure_misread_gives_way_to_a_surer_second_look(reader, text_alone):
    street = blurred_street(15)
    [plate] = street.plates
    [misread] = text_alone.read(street.image)
    assert misread.plate.canonical != plate.plate.canonical
    assert read(reader, street) == {plate.plate.canonical}


def test_a_tracked_plate_is_read_in_its_region(reader):
    street = blurred_street(23)
    [plate] = street.plates
    x, y, w, h = box_of(plate)
    region = (x - w, y - h, 3 * w, 3 * h)  # as the tracker grows it
    assert read(reader, street, [region]) == {plate.plate.canonical}
    elsewhere = (0, 0, 200, 100)
    assert plate.plate.canonical not in read(reader, street, [elsewhere])


@pytest.mark.parametrize("seed", [1, 60])
def test_a_plate_the_detector_is_unsure_of_is_still_read_at_the_second_look(
    seed, reader, text_alone
):
    """A yellow one-row plate seen at an angle, which the detector scores below its own
    0.4 and the text search cannot read: the second look reads from 0.2, and the read
    stands, printed as a plate is."""
    street = make_street(
        random.Random(seed), HELD_OUT, Condition.ANGLE, ((Layout.CAR_ONE_ROW, Colour.YELLOW),)
    )
    [plate] = street.plates
    detected = PlateDetector().detect(street.image)
    assert not any(_same_place(d.box, box_of(plate)) for d in detected)
    assert read(text_alone, street) == set()
    assert read(reader, street) == {plate.plate.canonical}


@pytest.mark.parametrize(
    "rows",
    [("89A-786.24",), ("21M-4742",), ("41B", "106.34"), ("29-B1", "123.45"), ("51MD", "123.45")],
)
def test_a_read_as_plates_are_printed_is_taken_from_a_doubted_box(rows):
    plate = parse_plate("\n".join(rows))
    assert printed_as_plate(plate, rows)


@pytest.mark.parametrize(
    "rows",
    [
        ("888", "19007"),  # a sign's '1900 7782': a number without its dot
        ("94F07704",),  # 'CAF 0770 96': no dash after the series
        ("2645", "17775"),  # '...00 2645 / ...44 117 775': the series corrected from a 4
        ("29B1", "123.45"),  # a motorbike's top row without its dash
    ],
)
def test_a_sign_number_that_parses_is_not_taken_from_a_doubted_box(rows):
    plate = parse_plate("\n".join(rows))
    assert not printed_as_plate(plate, rows)
