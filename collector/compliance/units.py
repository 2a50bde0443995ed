"""Units the report converts, flags and rounds.

QCVN 05:2023 sets air limits in µg/Nm³ at 25 °C and 760 mmHg, and VN_AQI's breakpoints are
in the same unit, but gas analysers commonly report ppb or ppm. A mixing ratio becomes a
mass concentration through the gas's molar mass and the molar volume at those reference
conditions (24.45 L/mol), so an O3 analyser in ppb can be judged and rated like one in
µg/m³ instead of being left out. Only gases with a known molar mass convert; anything
else keeps its unit and is reported as not judged, with the reason.
"""

from dataclasses import dataclass

from collector.compliance.texts import Figure, Phrase
from iotruntime.i18n import N_

MASS_UNIT = "µg/m³"
# µg/m³ and µg/Nm³ are the same unit here: QCVN 05 states its reference conditions, and
# the limits file writes µg/m³.
# casefold() turns the micro sign into the Greek mu, so both spellings meet.
_SPELLINGS = {u.casefold() for u in ("µg/m³", "µg/Nm³", "ug/m3", "ug/Nm3", "µg/m3", "µg/Nm3")}
MOLAR_VOLUME_L = 24.45  # L/mol of an ideal gas at 25 °C and 760 mmHg (101.325 kPa)
MOLAR_MASS_G = {"o3": 48.00, "no2": 46.01, "so2": 64.07, "co": 28.01}
_PER_PPB = {"ppb": 1.0, "ppm": 1000.0}
# Numbers and units a Vietnamese reader writes alike, apart from the decimal comma.
REFERENCE = "25 °C, 760 mmHg"

# Units whose negative values are not physical: analyser zero drift, worth flagging.
_CONCENTRATIONS = {u.casefold() for u in ("µg/m³", "mg/m³", "ppb", "ppm", "mg/L", "µg/L")}
# Decimals a value is shown with, by unit: finer than the analysers resolve is noise.
_DECIMALS = {
    u.casefold(): n
    for u, n in (("µg/m³", 1), ("mg/m³", 3), ("ppb", 1), ("ppm", 3), ("dBA", 1), ("dB", 1))
}
_DECIMALS_BY_PARAMETER = {"ph": 2}
DEFAULT_DECIMALS = 3


def canonical(unit: str) -> str:
    """One spelling per unit, so `ug/m3` from an analyser meets `µg/m³` in the limits."""
    if unit.strip().casefold() in _SPELLINGS:
        return MASS_UNIT
    return unit


@dataclass(frozen=True)
class Conversion:
    """ppb or ppm of one gas to µg/m³ at QCVN 05's reference conditions."""

    parameter: str
    measured: str
    factor: float

    def describe(self) -> Phrase:
        """How the value was converted, in words a reader of the report checks by hand."""
        message = (
            N_(
                "converted from {measured}: {mass_unit} = {measured} × {molar_mass} / {volume}"
                " ({reference})"
            )
            if self.measured.casefold() == "ppb"
            else N_(
                "converted from {measured}: {mass_unit} = {measured} × 1000 × {molar_mass}"
                " / {volume} ({reference})"
            )
        )
        return Phrase(
            message,
            measured=self.measured,
            mass_unit=MASS_UNIT,
            molar_mass=Figure(MOLAR_MASS_G[self.parameter], 2),
            volume=Figure(MOLAR_VOLUME_L),
            reference=REFERENCE,
        )


def conversion(parameter: str, unit: str) -> Conversion | None:
    """The conversion of an air series to µg/m³, or None when it is in µg/m³ already or
    its molar mass or unit is unknown."""
    per_ppb = _PER_PPB.get(unit.strip().casefold())
    molar_mass = MOLAR_MASS_G.get(parameter)
    if per_ppb is None or molar_mass is None:
        return None
    return Conversion(parameter, unit, per_ppb * molar_mass / MOLAR_VOLUME_L)


def is_concentration(unit: str) -> bool:
    return canonical(unit).casefold() in _CONCENTRATIONS


def decimals(parameter: str, unit: str) -> int:
    """How many decimals a value of this parameter is shown with."""
    by_parameter = _DECIMALS_BY_PARAMETER.get(parameter.casefold())
    if by_parameter is not None:
        return by_parameter
    return _DECIMALS.get(canonical(unit).casefold(), DEFAULT_DECIMALS)
