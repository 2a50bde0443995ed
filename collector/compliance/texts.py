"""The report's texts for people, said in each reader's language.

A report is computed once and laid out for whoever reads it: the officer's Vietnamese
workbook, the English CSV a program reads, the wall. So the report keeps each text for
people (why a mean was not judged, a flag, a conversion) as a `Phrase`: a str holding the
English text, which the CSV, the logs and every existing reader see unchanged, that also
keeps its catalog message and values so `say(language)` can give it in another language.

Names follow the same split. An English document keeps the codes the stations, the
configs and the CSV use (`pm2_5`, `1h`, `air`), as it always has; a Vietnamese one names
parameters as the regulations write them ("Bụi PM2,5", "Tổng chất rắn lơ lửng (TSS)"),
with the English names here as the catalog's messages.
"""

from collections.abc import Mapping, Sequence

from collector.i18n import reports
from iotruntime.i18n import ENGLISH, N_, number

Value = str | int


class Phrase(str):
    """A text for people: English as a str, any language through `say`. Values that are
    phrases themselves (a unit's name, a number) are said in the same language."""

    message: str
    values: Mapping[str, "Value | Phrase"]

    def __new__(cls, message: str, /, **values: "Value | Phrase") -> "Phrase":
        self = super().__new__(cls, _render(message, values, ENGLISH))
        self.message = message
        self.values = values
        return self

    def say(self, language: str) -> str:
        return _render(self.message, self.values, language)

    def __reduce__(self) -> tuple[object, ...]:
        """Copied and pickled as the text and what it was made from, for every kind."""
        return (_restored, (type(self), str(self), dict(self.__dict__)))


def _restored(kind: type[Phrase], text: str, state: dict[str, object]) -> Phrase:
    phrase = str.__new__(kind, text)
    phrase.__dict__.update(state)
    return phrase


def _render(message: str, values: Mapping[str, "Value | Phrase"], language: str) -> str:
    if not message:
        return ""  # gettext("") is the catalog's header
    shown = {k: v.say(language) if isinstance(v, Phrase) else v for k, v in values.items()}
    return reports.for_language(language).gettext(message).format(**shown)


class Figure(Phrase):
    """A number in a phrase, written as the reader writes numbers (24,45 in Vietnamese)."""

    value: float
    digits: int | None

    def __new__(cls, value: float, digits: int | None = None) -> "Figure":
        self = str.__new__(cls, number(value, ENGLISH, digits))
        self.message, self.values = "", {}
        self.value, self.digits = value, digits
        return self

    def say(self, language: str) -> str:
        return number(self.value, language, self.digits)


class Joined(Phrase):
    """Phrases said one after the other, as a report's note joins its reasons."""

    parts: tuple[str, ...]
    separator: str

    def __new__(cls, parts: Sequence[str], separator: str = "; ") -> "Joined":
        self = str.__new__(cls, separator.join(parts))
        self.message, self.values = "", {}
        self.parts, self.separator = tuple(parts), separator
        return self

    def say(self, language: str) -> str:
        return self.separator.join(said(part, language) for part in self.parts)


class Parameters(Phrase):
    """Parameters listed by their codes, said by their names."""

    codes: tuple[str, ...]

    def __new__(cls, codes: Sequence[str]) -> "Parameters":
        self = str.__new__(cls, ", ".join(codes))
        self.message, self.values = "", {}
        self.codes = tuple(codes)
        return self

    def say(self, language: str) -> str:
        return ", ".join(parameter_name(code, language) for code in self.codes)


NOTHING = Phrase("")


def said(text: str, language: str) -> str:
    """`text` in `language`: a phrase is said again, any other text (a station's name, a
    site file's own clause) is shown as it was written."""
    return text.say(language) if isinstance(text, Phrase) else text


def translated(message: str, language: str) -> str:
    """A message marked where it is defined (`N_`), in `language`."""
    return reports.for_language(language).gettext(message)


# Parameters as the regulations name them: QCVN 05:2023 (air), QCVN 08:2023 (surface
# water), QCVN 10:2023 (seawater), QCVN 14:2008 (domestic wastewater), QCVN 01-1:2018/BYT
# (domestic water), QCVN 26:2010 (noise); the others as Vietnamese monitoring reports do.
PARAMETERS = {
    "so2": N_("Sulphur dioxide (SO2)"),
    "co": N_("Carbon monoxide (CO)"),
    "no2": N_("Nitrogen dioxide (NO2)"),
    "no": N_("Nitrogen monoxide (NO)"),
    "o3": N_("Ozone (O3)"),
    "tsp": N_("Total suspended particulates (TSP)"),
    "pm10": N_("PM10 dust"),
    "pm2_5": N_("PM2.5 dust"),
    "pm1": N_("PM1 dust"),
    "ph": N_("pH"),
    "bod5": N_("Biochemical oxygen demand (BOD5)"),
    "cod": N_("Chemical oxygen demand (COD)"),
    "tss": N_("Total suspended solids (TSS)"),
    "tds": N_("Total dissolved solids (TDS)"),
    "sulfide": N_("Sulphide (as H2S)"),
    "nh4": N_("Ammonium (NH4+ as N)"),
    "nitrate": N_("Nitrate (NO3- as N)"),
    "nitrite": N_("Nitrite (NO2- as N)"),
    "po4": N_("Phosphate (PO4 3- as P)"),
    "animal_vegetable_oil": N_("Animal and vegetable oils and fats"),
    "oil_grease": N_("Total oil and grease"),
    "surfactants": N_("Total surfactants"),
    "total_coliforms": N_("Total coliforms"),
    "chloride": N_("Chloride (Cl-)"),
    "fluoride": N_("Fluoride (F-)"),
    "cyanide": N_("Cyanide (CN-)"),
    "arsenic": N_("Arsenic (As)"),
    "iron": N_("Iron (Fe)"),
    "turbidity": N_("Turbidity"),
    "free_chlorine": N_("Free residual chlorine"),
    "colour": N_("Colour"),
    "dissolved_oxygen": N_("Dissolved oxygen (DO)"),
    "temperature": N_("Temperature"),
    "humidity": N_("Relative humidity"),
    "conductivity": N_("Electrical conductivity (EC)"),
    "salinity": N_("Salinity"),
    "laeq": N_("Noise (LAeq)"),
    "lamax": N_("Maximum noise level (LAmax)"),
}
AVERAGINGS = {
    "sample": N_("single sample"),
    "1h": N_("1 hour"),
    "8h": N_("8 hours"),
    "24h": N_("24 hours"),
    "1y": N_("year"),
    "day": N_("daytime (06:00-21:00)"),
    "night": N_("night (21:00-06:00)"),
}
KINDS = {
    "air": N_("ambient air"),
    "noise": N_("noise"),
    "wastewater": N_("wastewater"),
    "surface_water": N_("surface water"),
    "seawater": N_("seawater"),
    "domestic_water": N_("domestic water"),
}
# The parts of a regulation the built-in limits cite; a site file's own clause is shown as
# written.
CLAUSES = {
    "limit table": N_("table of limit values"),
    "Table 1": N_("Table 1"),
    "Table 2": N_("Table 2"),
    "Table 3": N_("Table 3"),
    "column A": N_("column A"),
    "column B": N_("column B"),
    "group A": N_("group A"),
    "special zone": N_("special zone"),
    "normal zone": N_("normal zone"),
}
VN_AQI_DECISION = N_("Decision 1459/QĐ-TCMT")
# Each built-in regulation's title, as the regulation itself is titled; a site file's own
# regulation is cited by its id alone.
REGULATIONS = {
    "QCVN 05:2023/BTNMT": N_("National technical regulation on air quality"),
    "QCVN 08:2023/BTNMT": N_("National technical regulation on surface water quality"),
    "QCVN 10:2023/BTNMT": N_("National technical regulation on seawater quality"),
    "QCVN 14:2008/BTNMT": N_("National technical regulation on domestic wastewater"),
    "QCVN 14:2025/BTNMT": N_("National technical regulation on domestic and urban wastewater"),
    "QCVN 01-1:2018/BYT": N_("National technical regulation on domestic water quality"),
    "QCVN 01-1:2024/BYT": N_("National technical regulation on domestic water quality"),
    "QCVN 26:2010/BTNMT": N_("National technical regulation on noise"),
    "QCVN 26:2025/BNNMT": N_("National technical regulation on noise"),
}
VN_AQI_TITLE = N_(
    "Technical guidance on calculating and publishing the Vietnam Air Quality Index (VN_AQI)"
)


def regulation_title(regulation: str, language: str) -> str:
    """A regulation's title in `language`, or "" for one the built-in table does not hold."""
    return translated(REGULATIONS[regulation], language) if regulation in REGULATIONS else ""


def _named(names: Mapping[str, str], code: str, language: str) -> str:
    if language == ENGLISH or code not in names:
        return code
    return translated(names[code], language)


def parameter_name(code: str, language: str) -> str:
    return _named(PARAMETERS, code, language)


def averaging_name(code: str, language: str) -> str:
    return _named(AVERAGINGS, code, language)


def kind_name(code: str, language: str) -> str:
    return _named(KINDS, code, language)


def clause_name(clause: str, language: str) -> str:
    return _named(CLAUSES, clause, language)


def yes_no(value: bool, language: str) -> str:
    return translated(N_("yes") if value else N_("no"), language)
