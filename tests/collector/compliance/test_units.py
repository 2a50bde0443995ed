"""Unit conversions at QCVN 05:2023's reference conditions, against figures worked by hand:
µg/m³ = ppb × M / 24.45 (25 °C, 760 mmHg), ppm × 1000 × M / 24.45."""

import pytest

from collector.compliance.units import canonical, conversion, decimals, is_concentration


@pytest.mark.parametrize(
    ("parameter", "unit", "factor"),
    [
        ("o3", "ppb", 48.00 / 24.45),  # 1.963
        ("no2", "ppb", 46.01 / 24.45),  # 1.882
        ("so2", "ppb", 64.07 / 24.45),  # 2.620
        ("co", "ppm", 1000 * 28.01 / 24.45),  # 1145.6
        ("co", "PPM", 1000 * 28.01 / 24.45),
    ],
)
def test_gases_with_a_known_molar_mass_convert(parameter, unit, factor):
    found = conversion(parameter, unit)
    assert found is not None
    assert found.factor == pytest.approx(factor)


@pytest.mark.parametrize(
    ("parameter", "unit"), [("pm2_5", "ppb"), ("h2s", "ppb"), ("o3", "µg/m³"), ("o3", "mg/m³")]
)
def test_nothing_else_converts(parameter, unit):
    assert conversion(parameter, unit) is None


def test_the_conversion_states_its_reference_conditions():
    found = conversion("no2", "ppb")
    assert found is not None
    assert found.describe() == ("converted from ppb: µg/m³ = ppb × 46.01 / 24.45 (25 °C, 760 mmHg)")


def test_spellings_of_micrograms_per_cubic_metre_are_one_unit():
    assert {canonical(u) for u in ("µg/m³", "µg/Nm³", "ug/m3", "μg/m³", "UG/M3")} == {"µg/m³"}
    assert canonical("mg/L") == "mg/L"


def test_concentrations_can_be_flagged_and_levels_have_their_decimals():
    assert is_concentration("ug/m3")
    assert not is_concentration("°C")
    assert (decimals("pm2_5", "µg/m³"), decimals("laeq", "dBA"), decimals("ph", "pH")) == (1, 1, 2)
    assert decimals("tss", "mg/L") == 3
