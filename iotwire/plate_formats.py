"""Vietnamese licence plates: parse what OCR read into a validated plate, or say why not.

A plate is a province code (two digits), a series and a number of four or five digits.
The series tells the vehicle: one letter for a car (`68A-123.45`, older `68A-1234`, also
on two lines, `68A` over `123.45`); a letter and a digit for a motorbike (`68-B1 234.56`,
always two lines); two letters for the motorbike series issued since August 2023
(`29-HA 002.33`); and the special series LD, MĐ, NG and QT. Ordinary series letters come
from twenty letters only (no I, J, O, Q, R, W).

OCR confuses 0/O/D/Q, 8/B, 5/S, 2/Z, 1/I, 6/G and 4/A. The format says, position by
position, whether a digit or a letter belongs there, so a confusion is corrected only
there, and only into a character the position allows: a letter where the number must
be is read as the digit it resembles, never guessed the other way round elsewhere.

The canonical form (`68A12345`, `29HA00233`, `51MD12345` for MĐ) is what the wire, the
store and the watchlist compare; the display form is what people read.
"""

import re
from dataclasses import dataclass
from enum import StrEnum

SERIES_LETTERS = frozenset("ABCDEFGHKLMNPSTUVXYZ")
SPECIAL_SERIES = {"LD": "LD", "MD": "MĐ", "NG": "NG", "QT": "QT"}
TO_DIGIT = {
    "O": "0",
    "Q": "0",
    "D": "0",
    "I": "1",
    "L": "1",
    "Z": "2",
    "S": "5",
    "B": "8",
    "G": "6",
    "A": "4",
}
# Only letters a series may hold: 1 (I/L/T) stays ambiguous and is not corrected.
TO_LETTER = {"0": "D", "8": "B", "5": "S", "2": "Z", "6": "G", "4": "A"}
_SEPARATORS = re.compile(r"[\s\-.·:_]+")


class PlateError(ValueError):
    """The text is not a Vietnamese plate; the message says which part is wrong."""


class Vehicle(StrEnum):
    CAR = "car"
    MOTORBIKE = "motorbike"


class Colour(StrEnum):
    """The plate's background colour, which tells the vehicle's category."""

    WHITE = "white"
    YELLOW = "yellow"
    BLUE = "blue"
    RED = "red"


CATEGORY = {
    Colour.WHITE: "private",
    Colour.YELLOW: "commercial transport",
    Colour.BLUE: "state",
    Colour.RED: "military",
}


@dataclass(frozen=True)
class Plate:
    province: str
    series: str
    number: str
    vehicle: Vehicle
    two_lines: bool
    corrections: int = 0

    @property
    def canonical(self) -> str:
        return f"{self.province}{self.series.replace('Đ', 'D')}{self.number}"

    @property
    def display(self) -> str:
        number = f"{self.number[:3]}.{self.number[3:]}" if len(self.number) == 5 else self.number
        if self.vehicle is Vehicle.MOTORBIKE:
            return f"{self.province}-{self.series} {number}"
        return f"{self.province}{self.series}-{number}"


def _clean(text: str) -> str:
    return _SEPARATORS.sub("", text.upper().replace("Ð", "Đ"))


def _digits(text: str, what: str) -> tuple[str, int]:
    out, fixed = [], 0
    for ch in text:
        if ch.isdigit():
            out.append(ch)
        elif ch in TO_DIGIT:
            out.append(TO_DIGIT[ch])
            fixed += 1
        else:
            raise PlateError(f"{what} {text!r}: {ch!r} where a digit must be")
    return "".join(out), fixed


def _letter(ch: str, what: str) -> tuple[str, int]:
    if ch in SERIES_LETTERS:
        return ch, 0
    if ch in TO_LETTER:
        return TO_LETTER[ch], 1
    raise PlateError(f"{what}: {ch!r} is not a series letter")


def _series(text: str) -> tuple[str, Vehicle | None, int]:
    """The series and the vehicle it implies (None: two ordinary letters, the motorbike
    series since 2023 on two rows), with the corrections made."""
    special = SPECIAL_SERIES.get(text[:2].replace("Đ", "D"))
    if special is not None and len(text) in (2, 3):
        if len(text) == 3:
            digit, fixed = _digits(text[2], "series")
            return special + digit, Vehicle.MOTORBIKE, fixed
        return special, Vehicle.CAR, 0
    if len(text) == 1:
        letter, fixed = _letter(text, f"series {text!r}")
        return letter, Vehicle.CAR, fixed
    if len(text) == 2:
        first, fixed = _letter(text[0], f"series {text!r}")
        if text[1].isdigit() or (text[1] not in SERIES_LETTERS and text[1] in TO_DIGIT):
            digit, more = _digits(text[1], "series")
            return first + digit, Vehicle.MOTORBIKE, fixed + more
        second, more = _letter(text[1], f"series {text!r}")
        return first + second, None, fixed + more
    raise PlateError(f"series {text!r}: one letter, a letter and a digit, or two letters")


def _number(text: str) -> tuple[str, int]:
    if len(text) not in (4, 5):
        raise PlateError(f"number {text!r}: four or five digits")
    return _digits(text, "number")


def parse_plate(text: str) -> Plate:
    """One plate from OCR text or a typed plate. Lines (or parts separated by a space)
    are the plate's rows: `68-B1 234.56` and `68B1\\n23456` are two-line plates."""
    rows = [_clean(part) for part in re.split(r"[\n ]+", text.strip()) if _clean(part)]
    if len(rows) == 1:
        return _one_line(rows[0])
    if len(rows) == 2:
        return _two_lines(*rows)
    raise PlateError(f"{text!r}: a plate has one or two rows, not {len(rows)}")


def _province(text: str) -> tuple[str, int]:
    province, fixed = _digits(text, "province code")
    if not 11 <= int(province) <= 99:
        raise PlateError(f"province code {province}: not between 11 and 99")
    return province, fixed


def _two_lines(top: str, bottom: str) -> Plate:
    if len(top) < 3:
        raise PlateError(f"top row {top!r}: a province code and a series")
    province, fixed = _province(top[:2])
    series, vehicle, more = _series(top[2:])
    number, most = _number(bottom)
    return Plate(
        province,
        series,
        number,
        vehicle or Vehicle.MOTORBIKE,
        two_lines=True,
        corrections=fixed + more + most,
    )


def _one_line(text: str) -> Plate:
    """A one-row plate is a car's: province, a one-letter or special series, a number;
    a row that holds a motorbike's series is a two-row plate written on one line."""
    if len(text) < 7:
        raise PlateError(f"{text!r}: too short for a plate")
    province, fixed = _province(text[:2])
    rest = text[2:]
    errors, fits = [], []
    for series_length in (1, 2, 3):
        number_text = rest[series_length:]
        if len(number_text) not in (4, 5):
            continue
        try:
            series, vehicle, more = _series(rest[:series_length])
            number, most = _number(number_text)
        except PlateError as exc:
            errors.append(str(exc))
            continue
        fits.append(
            Plate(
                province,
                series,
                number,
                vehicle or Vehicle.CAR,
                two_lines=vehicle is Vehicle.MOTORBIKE,
                corrections=fixed + more + most,
            )
        )
    if not fits:
        raise PlateError(f"{text!r}: " + ("; ".join(errors) or "no series and number fit"))
    return min(fits, key=lambda plate: plate.corrections)
