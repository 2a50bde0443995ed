"""Vietnamese licence plates: parse what OCR read into a validated plate, or say why not.

A plate is a province code (two digits, 11-99), a series and a number of four or five
digits. The series tells the vehicle: one letter for a car (`68A-123.45`, the older
`68A-1234` still on the road, also on two rows, `68A` over `123.45`); R for trailers and
semi-trailers (`51R-123.45`), a car-type series of one letter only; a letter and a digit
for a motorbike (`68-B1 234.56`, older `68-B1 2345`, always two rows); two letters for
the motorbike series issued since August 2023 (`29-HA 002.33`, two rows only); and the
special series LD, MĐ, NG and QT. Ordinary series letters come from twenty letters only
(no I, J, O, Q, R, W): R is the trailers' series alone.

OCR confuses 0/O/D/Q, 8/B, 5/S, 2/Z, 1/I, 6/G and 4/A. The format says, position by
position, whether a digit or a letter belongs there, so a confusion is corrected only
there, and only into a character the position allows: a letter where the number must
be is read as the digit it resembles, a digit in the series as the letter it resembles.

Police act on these reads, so a correction is a guess the parser makes sparingly: a read
that needs any correction in the province code, or more than one in all, is rejected,
not repaired. 0 is never read as the series letter D: a 0 where a series belongs is how
a phone number (`1900 1234`) turns into a plausible plate. A one-row read never holds a
two-letter ordinary series: those plates have two rows, and a sign's text read as one
row is the usual source of such a read. Separators (`-`, `.`) that OCR kept must sit
where a plate has them (after the province code, after the series, after the number's
third of five digits): `12.500.000`, a price, is not `12S-000.00`. Their kind counts too:
a plate has a dash after its series (after the province code on a motorbike's top row)
and a dot inside a five-digit number, while a phone number on a sign has dots where a
plate has its dash (`0605.6120`); a separator of the other kind counts as a correction,
so with a series letter read from a digit the read is rejected. So does a camera's
one-row read without the dash after the series: a sign's run of digits (`94843344`)
has none, and needs a series letter read from a digit to be a plate. A car's plate has no
separator after the province code. The two-letter series, issued since 2023, carry
five-digit numbers only. A motorbike's plate has two rows, so a camera's one-row read
holds a car's series (a person may type a motorbike's plate on one line); and a gap the
camera saw in a row (`9 963 5091`, a hotline cut at a sign's edge) is a separator like
any other, which must sit where the plate has one. Phone numbers and prices therefore do
not parse.

The canonical form (`68A12345`, `29HA00233`, `51MD12345` for MĐ) is what the wire, the
store and the watchlist compare; the display form is what people read.
"""

import re
from dataclasses import dataclass
from enum import StrEnum

SERIES_LETTERS = frozenset("ABCDEFGHKLMNPSTUVXYZ")
TRAILER_SERIES = "R"
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
# Only letters a series may hold: 1 (I/L/T) stays ambiguous and is not corrected, and 0
# is not read as D (see the module's docstring).
TO_LETTER = {"8": "B", "5": "S", "2": "Z", "6": "G", "4": "A"}
MAX_CORRECTIONS = 1
_SEPARATOR_CHARS = "-.·:_"
DASH, DOT, SPACE = "-", ".", " "
_KIND = {"-": DASH, "_": DASH, ".": DOT, "·": DOT, ":": DOT}
_SEPARATORS = re.compile(rf"[\s{re.escape(_SEPARATOR_CHARS)}]+")


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


@dataclass(frozen=True)
class _Row:
    """A row's characters without separators, and where separators stood between them
    (index of the character a separator came before) and of which kind: DASH, DOT, or
    SPACE for whitespace, which stands for either."""

    text: str
    cuts: dict[int, str]

    @classmethod
    def of(cls, raw: str) -> "_Row":
        text: list[str] = []
        cuts: dict[int, str] = {}
        for ch in raw.upper().replace("Ð", "Đ"):
            if ch.isspace() or ch in _SEPARATOR_CHARS:
                kind = SPACE if ch.isspace() else _KIND[ch]
                if cuts.get(len(text), SPACE) == SPACE:
                    cuts[len(text)] = kind
            else:
                text.append(ch)
        # A screw or a frame edge read as a dot before or after the text says nothing.
        inner = {at: kind for at, kind in cuts.items() if 0 < at < len(text)}
        return cls("".join(text), inner)

    def check_cuts(self, allowed: dict[int, str]) -> int:
        """Raises for a separator where the plate has none; the number of separators of
        the other kind than the plate's there, each a correction."""
        stray = sorted(set(self.cuts) - set(allowed))
        if stray:
            at = stray[0]
            raise PlateError(
                f"{self.text[:at]}|{self.text[at:]}: a separator where a plate has none"
            )
        return sum(kind not in (SPACE, allowed[at]) for at, kind in self.cuts.items())


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


def _letter(ch: str, what: str, trailer: bool = False) -> tuple[str, int]:
    if ch in SERIES_LETTERS or (trailer and ch == TRAILER_SERIES):
        return ch, 0
    if ch in TO_LETTER:
        return TO_LETTER[ch], 1
    if ch == "0":
        raise PlateError(f"{what}: '0' where a series letter must be (0 is not read as D)")
    raise PlateError(f"{what}: {ch!r} is not a series letter")


def _series(text: str) -> tuple[str, Vehicle | None, int]:
    """The series and the vehicle it implies (None: two ordinary letters, the motorbike
    series since 2023, on two rows only), with the corrections made."""
    special = SPECIAL_SERIES.get(text[:2].replace("Đ", "D"))
    if special is not None and len(text) in (2, 3):
        if len(text) == 3:
            digit, fixed = _digits(text[2], "series")
            return special + digit, Vehicle.MOTORBIKE, fixed
        return special, Vehicle.CAR, 0
    if len(text) == 1:
        letter, fixed = _letter(text, f"series {text!r}", trailer=True)
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


def _number_cuts(number: str, start: int) -> dict[int, str]:
    """Where a separator may stand in a row whose number begins at `start`, and which:
    a dash before it, and in a five-digit number a dot after its third digit (`123.45`)."""
    return {start: DASH, start + 3: DOT} if len(number) == 5 else {start: DASH}


def _five_digits(series: str, vehicle: Vehicle | None, number: str) -> None:
    if vehicle is None and len(number) != 5:
        raise PlateError(f"series {series!r}: the two-letter series carry five-digit numbers")


def _trusted(plate: Plate) -> Plate:
    if plate.corrections > MAX_CORRECTIONS:
        raise PlateError(
            f"{plate.display}: read only with {plate.corrections} corrections; "
            f"more than {MAX_CORRECTIONS} is a guess, not a read"
        )
    return plate


def parse_plate(text: str, typed: bool = False) -> Plate:
    """One plate from OCR text, or with `typed` from a person (a watchlist entry, a
    search): lines (or parts separated by a space) are the plate's rows, `68-B1 234.56`
    and `68B1\\n23456` are two-row plates. A person may also write a two-letter series'
    plate on one row, as its canonical form is (`29HA00233`); a camera's one-row read of
    it is refused, as the module says why."""
    parts = [part for part in re.split(r"[\n ]+", text.strip()) if _Row.of(part).text]
    rows = [_Row.of(part) for part in parts]
    if len(rows) == 1:
        return _one_row(rows[0], typed)
    if len(rows) == 2:
        return _two_rows(*rows)
    raise PlateError(f"{text!r}: a plate has one or two rows, not {len(rows)}")


def parse_row(text: str) -> Plate:
    """One text row as a camera read it, as a one-row plate: its spaces are where the
    recogniser saw gaps, and count as separators (`parse_plate` would take them for rows)."""
    row = _Row.of(text)
    if not row.text:
        raise PlateError(f"{text!r}: no plate characters")
    return _one_row(row)


def _province(text: str) -> str:
    """The province code, as read: a correction here would choose the province, which
    is what a police match turns on."""
    if not text.isdigit():
        raise PlateError(f"province code {text!r}: two digits, read as digits, not corrected")
    if not 11 <= int(text) <= 99:
        raise PlateError(f"province code {text}: not between 11 and 99")
    return text


def _two_rows(top: _Row, bottom: _Row) -> Plate:
    if len(top.text) < 3:
        raise PlateError(f"top row {top.text!r}: a province code and a series")
    province = _province(top.text[:2])
    series, vehicle, fixed = _series(top.text[2:])
    number, more = _number(bottom.text)
    _five_digits(series, vehicle, number)
    kinds = top.check_cuts({2: DASH}) + bottom.check_cuts(_number_cuts(number, 0))
    return _trusted(
        Plate(
            province,
            series,
            number,
            vehicle or Vehicle.MOTORBIKE,
            two_lines=True,
            corrections=fixed + more + kinds,
        )
    )


def _one_row(row: _Row, typed: bool = False) -> Plate:
    """A one-row plate is a car's: province, a one-letter or special series, a number;
    a row that holds a letter-and-digit series is a motorbike's two rows written on one
    line, as people type it (`typed`), and from a camera a sign's number."""
    text = row.text
    if len(text) < 7:
        raise PlateError(f"{text!r}: too short for a plate")
    province = _province(text[:2])
    rest = text[2:]
    errors, fits = [], []
    for series_length in (1, 2, 3):
        number_text = rest[series_length:]
        if len(number_text) not in (4, 5):
            continue
        try:
            series, vehicle, fixed = _series(rest[:series_length])
            if vehicle is None and not typed:
                raise PlateError(
                    f"series {series!r}: two letters only on a two-row motorbike plate "
                    f"(write it `{province}-{series} ...` with its rows apart)"
                )
            if vehicle is Vehicle.MOTORBIKE and not typed:
                raise PlateError(f"series {series!r}: a motorbike's plate has two rows")
            number, more = _number(number_text)
            _five_digits(series, vehicle, number)
            # A car's plate has its dash after the series only; a motorbike's rows
            # written on one line keep the top row's dash after the province code, and
            # a person typing a car's may put one there too.
            after_province = {} if vehicle is Vehicle.CAR and not typed else {2: DASH}
            kinds = row.check_cuts(after_province | _number_cuts(number, 2 + series_length))
            # A camera reads a car plate's dash (a bar as tall as a digit is wide): a
            # row without one is a run of digits more often than a plate.
            if not typed and 2 + series_length not in row.cuts:
                kinds += 1
            fits.append(
                _trusted(
                    Plate(
                        province,
                        series,
                        number,
                        vehicle or Vehicle.MOTORBIKE,
                        two_lines=vehicle is not Vehicle.CAR,
                        corrections=fixed + more + kinds,
                    )
                )
            )
        except PlateError as exc:
            errors.append(str(exc))
    if not fits:
        reasons = "; ".join(dict.fromkeys(errors)) or "no series and number fit"
        raise PlateError(f"{text!r}: {reasons}")
    return min(fits, key=lambda plate: plate.corrections)
