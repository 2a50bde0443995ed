"""Vietnamese plate formats: a table of valid and invalid plates, as OCR and people write them."""

import pytest

from iotwire.plate_formats import PlateError, Vehicle, parse_plate

VALID = [
    # text, canonical, display, vehicle, two lines, corrections
    ("68A-123.45", "68A12345", "68A-123.45", Vehicle.CAR, False, 0),
    ("68A-1234", "68A1234", "68A-1234", Vehicle.CAR, False, 0),
    ("68A\n123.45", "68A12345", "68A-123.45", Vehicle.CAR, True, 0),
    ("68-B1 234.56", "68B123456", "68-B1 234.56", Vehicle.MOTORBIKE, True, 0),
    ("68B1\n23456", "68B123456", "68-B1 234.56", Vehicle.MOTORBIKE, True, 0),
    ("68B123456", "68B123456", "68-B1 234.56", Vehicle.MOTORBIKE, True, 0),
    ("29-HA 002.33", "29HA00233", "29-HA 002.33", Vehicle.MOTORBIKE, True, 0),
    ("51LD-123.45", "51LD12345", "51LD-123.45", Vehicle.CAR, False, 0),
    ("80NG-123.45", "80NG12345", "80NG-123.45", Vehicle.CAR, False, 0),
    ("80QT 123.45", "80QT12345", "80QT-123.45", Vehicle.CAR, True, 0),
    ("29MĐ1 123.45", "29MD112345", "29-MĐ1 123.45", Vehicle.MOTORBIKE, True, 0),
    ("68a-123.45", "68A12345", "68A-123.45", Vehicle.CAR, False, 0),
    # OCR confusions, corrected where the position allows one reading only.
    ("68A-I23.4S", "68A12345", "68A-123.45", Vehicle.CAR, False, 2),
    ("6BA-123.45", "68A12345", "68A-123.45", Vehicle.CAR, False, 1),
    ("688-123.45", "68B12345", "68B-123.45", Vehicle.CAR, False, 1),
    ("68-BI 234.56", "68B123456", "68-B1 234.56", Vehicle.MOTORBIKE, True, 1),
    ("68-B1 Z34.5G", "68B123456", "68-B1 234.56", Vehicle.MOTORBIKE, True, 2),
    ("29-H4 OO2.33", "29H400233", "29-H4 002.33", Vehicle.MOTORBIKE, True, 2),
]


@pytest.mark.parametrize(("text", "canonical", "display", "vehicle", "two", "fixed"), VALID)
def test_valid_plates(text, canonical, display, vehicle, two, fixed):
    plate = parse_plate(text)
    assert plate.canonical == canonical
    assert plate.display == display
    assert plate.vehicle is vehicle
    assert plate.two_lines is two
    assert plate.corrections == fixed


INVALID = [
    ("68I-123.45", "'I' is not a series letter"),
    ("68O-123.45", "series"),
    ("68W-123.45", "'W' is not a series letter"),
    ("68A-123", "too short"),
    ("68A-1234567", "series .A12.: one letter, a letter and a digit, or two letters"),
    ("05A-123.45", "province code 05: not between 11 and 99"),
    ("XYA-123.45", "province code"),
    ("68-B1 23", "number '23': four or five digits"),
    ("68-ABC 123.45", "series 'ABC'"),
    ("68A 123 45", "one or two rows, not 3"),
    ("", "one or two rows, not 0"),
]


@pytest.mark.parametrize(("text", "message"), INVALID)
def test_invalid_plates_say_what_is_wrong(text, message):
    with pytest.raises(PlateError, match=message):
        parse_plate(text)
