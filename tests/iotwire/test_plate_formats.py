"""Vietnamese plate formats: a table of valid and invalid plates, as OCR and people write them."""

import pytest

from iotwire.plate_formats import PlateError, Vehicle, parse_plate, parse_row

VALID = [
    # text, canonical, display, vehicle, two lines, corrections
    ("68A-123.45", "68A12345", "68A-123.45", Vehicle.CAR, False, 0),
    ("68A-1234", "68A1234", "68A-1234", Vehicle.CAR, False, 0),
    ("68A\n123.45", "68A12345", "68A-123.45", Vehicle.CAR, True, 0),
    ("68A\n1234", "68A1234", "68A-1234", Vehicle.CAR, True, 0),
    ("68-B1 234.56", "68B123456", "68-B1 234.56", Vehicle.MOTORBIKE, True, 0),
    ("68B1\n23456", "68B123456", "68-B1 234.56", Vehicle.MOTORBIKE, True, 0),
    ("68-B1 2345", "68B12345", "68-B1 2345", Vehicle.MOTORBIKE, True, 0),
    ("53-F1\n1234", "53F11234", "53-F1 1234", Vehicle.MOTORBIKE, True, 0),
    ("29-HA 002.33", "29HA00233", "29-HA 002.33", Vehicle.MOTORBIKE, True, 0),
    ("51LD-123.45", "51LD12345", "51LD-123.45", Vehicle.CAR, False, 0),
    ("80NG-123.45", "80NG12345", "80NG-123.45", Vehicle.CAR, False, 0),
    ("80QT 123.45", "80QT12345", "80QT-123.45", Vehicle.CAR, True, 0),
    ("29MĐ1 123.45", "29MD112345", "29-MĐ1 123.45", Vehicle.MOTORBIKE, True, 0),
    ("51MĐ-123.45", "51MD12345", "51MĐ-123.45", Vehicle.CAR, False, 0),
    ("68a-123.45", "68A12345", "68A-123.45", Vehicle.CAR, False, 0),
    # Trailers and semi-trailers: R, a one-letter car series of their own.
    ("51R-123.45", "51R12345", "51R-123.45", Vehicle.CAR, False, 0),
    ("51R\n123.45", "51R12345", "51R-123.45", Vehicle.CAR, True, 0),
    ("51R-1234", "51R1234", "51R-1234", Vehicle.CAR, False, 0),
    # A screw or the frame read as a dot at either end says nothing.
    (".68A-123.45.", "68A12345", "68A-123.45", Vehicle.CAR, False, 0),
    # One OCR confusion, corrected where the position allows one reading only.
    ("68A-I23.45", "68A12345", "68A-123.45", Vehicle.CAR, False, 1),
    ("68A-O23.45", "68A02345", "68A-023.45", Vehicle.CAR, False, 1),
    ("688-123.45", "68B12345", "68B-123.45", Vehicle.CAR, False, 1),
    ("685-123.45", "68S12345", "68S-123.45", Vehicle.CAR, False, 1),
    ("68-BI 234.56", "68B123456", "68-B1 234.56", Vehicle.MOTORBIKE, True, 1),
    ("68-B1 Z34.56", "68B123456", "68-B1 234.56", Vehicle.MOTORBIKE, True, 1),
    ("29-H4 O02.33", "29H400233", "29-H4 002.33", Vehicle.MOTORBIKE, True, 1),
    # A separator of the other kind than the plate's: a correction too.
    ("68A.123.45", "68A12345", "68A-123.45", Vehicle.CAR, False, 1),
    ("68A-123-45", "68A12345", "68A-123.45", Vehicle.CAR, False, 1),
    ("68.B1 234.56", "68B123456", "68-B1 234.56", Vehicle.MOTORBIKE, True, 1),
    # A one-row read without the dash after the series: a correction as well.
    ("68A12345", "68A12345", "68A-123.45", Vehicle.CAR, False, 1),
    ("68A 123.45", "68A12345", "68A-123.45", Vehicle.CAR, True, 0),
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
    # R is the trailers' one-letter series, never a motorbike's or part of two letters.
    ("68-R1 234.56", "'R' is not a series letter"),
    ("68-RA 234.56", "'R' is not a series letter"),
    # Any correction in the province code is a guess at the province: rejected.
    ("6BA-123.45", "province code '6B': two digits, read as digits, not corrected"),
    ("G8A\n123.45", "province code 'G8'"),
    # More than one correction in all: rejected, not repaired.
    ("68A-I23.4S", "read only with 2 corrections"),
    ("68-B1 Z34.5G", "read only with 2 corrections"),
    ("29-H4 OO2.33", "read only with 2 corrections"),
    ("688-I23.45", "read only with 2 corrections"),
    # 0 is not read as the series letter D.
    ("680-123.45", "'0' where a series letter must be"),
    ("68-0D 123.45", "'0' where a series letter must be"),
    # Two ordinary letters exist only on two-row motorbike plates.
    ("29HA00233", "series 'HA': two letters only on a two-row motorbike plate"),
    ("51AB-123.45", "series 'AB': two letters only on a two-row motorbike plate"),
    # Separators where a plate has none.
    ("6.8A-123.45", r"6\|8A12345: a separator where a plate has none"),
    ("68A-12.345", r"68A12\|345: a separator where a plate has none"),
    # A car's plate has no separator after its province code (its `Y` read as a dash).
    ("27-24052", "a separator where a plate has none"),
    # A dot where the plate has its dash, and a series letter read from a digit.
    ("605.6120", "read only with 2 corrections"),
    ("688.123.45", "read only with 2 corrections"),
    # The two-letter series, issued since 2023, carry five-digit numbers.
    ("652D\n6754", "series 'ZD': the two-letter series carry five-digit numbers"),
    ("29-HA 0023", "five-digit numbers"),
    # A motorbike's plate has two rows: a camera's one-row read of one is a sign's number.
    ("68B123456", "series 'B1': a motorbike's plate has two rows"),
    ("59Z591012", "a motorbike's plate has two rows"),
]


@pytest.mark.parametrize(("text", "message"), INVALID)
def test_invalid_plates_say_what_is_wrong(text, message):
    with pytest.raises(PlateError, match=message):
        parse_plate(text)


NOT_PLATES = [
    "0905123456",
    "0905 123 456",
    "0905.123.456",
    "1900 1234",
    "1900.1234",
    "19001234",
    "1800 6868",
    "18006868",
    "028 3823 4567",
    "02838234567",
    "0283 823 4567",
    "84905123456",
    "35.000",
    "35.000đ",
    "150.000đ",
    "1.250.000",
    "2.500.000",
    "12.500.000",
    "99.000 VND",
    "12/3456",
    # Sign numbers as the reader saw them, a leading digit lost at the sign's edge.
    "238.7781",
    "605.6120",
    "..312.0903",
    ".675.9075",
    # Runs of digits a plate detector boxed on a sign: a series letter from a digit, and
    # no dash.
    "94843344",
    "56636495",
    "9459216",
]


@pytest.mark.parametrize("text", NOT_PLATES)
def test_phone_numbers_and_prices_never_parse(text):
    """As OCR reads them off signs, with and without the reader's joining of a row's
    parts and with a second row below."""
    for variant in (text, text.replace(" ", ""), text.replace(" ", "\n", 1)):
        with pytest.raises(PlateError):
            parse_plate(variant)


def test_a_person_may_type_a_two_letter_series_plate_on_one_row_a_camera_may_not():
    typed = parse_plate("29HA00233", typed=True)
    assert (typed.canonical, typed.display, typed.two_lines) == ("29HA00233", "29-HA 002.33", True)
    assert parse_plate("29-HA 002.33", typed=True) == typed
    with pytest.raises(PlateError, match="two letters only on a two-row motorbike plate"):
        parse_plate("29HA00233")


def test_a_person_may_type_a_motorbike_s_plate_on_one_line():
    typed = parse_plate("68B123456", typed=True)
    assert (typed.display, typed.vehicle, typed.two_lines) == (
        "68-B1 234.56",
        Vehicle.MOTORBIKE,
        True,
    )


@pytest.mark.parametrize(
    ("row", "canonical"),
    [("51F-123.45", "51F12345"), ("51F 123.45", "51F12345"), ("51F 123 45", "51F12345")],
)
def test_a_camera_s_row_reads_with_its_gaps_where_the_plate_has_separators(row, canonical):
    assert parse_row(row).canonical == canonical


@pytest.mark.parametrize("row", ["9 963 5091", "3 148 721", "13 409 092", "935 267 998"])
def test_a_camera_s_row_with_gaps_where_a_plate_has_none_is_not_a_plate(row):
    """Hotlines cut at a sign's edge, as the recogniser read them: joined, each would
    pass as a plate with one correction (`99G-350.91`)."""
    with pytest.raises(PlateError):
        parse_row(row)


def test_a_person_need_not_type_the_dash():
    assert parse_plate("68A12345", typed=True).corrections == 0
