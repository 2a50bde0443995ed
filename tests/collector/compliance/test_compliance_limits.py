"""The Vietnamese limits as data: the rule in force on the day, and nothing unconfirmed. A
broken limits file is a config-error case, in tests/iotruntime/config_errors/."""

from datetime import date

from collector.compliance.limits import builtin_limits

LIMITS = builtin_limits()


def values(kind: str, parameter: str, day: date, **narrow: str) -> list[tuple[str, float | None]]:
    return [(lim.averaging, lim.max) for lim in LIMITS.in_force(kind, parameter, day, **narrow)]


def test_every_air_parameter_the_stations_measure_has_its_limits():
    for parameter in ("pm2_5", "pm10", "no2", "so2", "co", "o3"):
        assert LIMITS.in_force("air", parameter, date(2026, 3, 1)), parameter
    assert values("air", "o3", date(2024, 1, 1)) == [("1h", 200.0), ("8h", 120.0)]


def test_a_period_is_judged_by_the_rule_in_force_then():
    assert values("air", "pm2_5", date(2025, 12, 31)) == [("24h", 50.0), ("1y", 25.0)]
    assert values("air", "pm2_5", date(2026, 1, 1)) == [("24h", 45.0), ("1y", 25.0)]


def test_existing_facilities_keep_a_replaced_rule_until_its_transition_ends():
    """Circular 05/2025/TT-BTNMT keeps QCVN 14:2008 for facilities approved before QCVN
    14:2025 until 2031-12-31; Circular 01/2025/TT-BNNMT keeps QCVN 26:2010 for existing
    facilities until 2026-12-31, though QCVN 26:2025 applies from 2025-11-14."""
    assert values("wastewater", "tss", date(2031, 12, 31), column="B") == [("sample", 100.0)]
    assert values("wastewater", "tss", date(2032, 1, 1), column="B") == []
    assert values("noise", "laeq", date(2026, 12, 31), zone="special") == [
        ("day", 55.0),
        ("night", 45.0),
    ]
    assert values("noise", "laeq", date(2027, 1, 1), zone="special") == []
    [wastewater] = [r for r in LIMITS.regulations if r.id == "QCVN 14:2008/BTNMT"]
    assert "Circular 05/2025/TT-BTNMT" in wastewater.transition


def test_a_new_facility_has_no_limit_where_the_successor_rule_is_unconfirmed():
    def new(kind: str, parameter: str, day: date, **narrow: str) -> list[object]:
        return LIMITS.in_force(kind, parameter, day, existing_facility=False, **narrow)

    assert new("wastewater", "tss", date(2025, 8, 31), column="B")
    assert new("wastewater", "tss", date(2025, 9, 1), column="B") == []
    assert new("noise", "laeq", date(2025, 11, 13), zone="normal")
    assert new("noise", "laeq", date(2025, 11, 14), zone="normal") == []
    assert values("domestic_water", "turbidity", date(2025, 7, 1)) == []
    for successor in ("QCVN 14:2025", "QCVN 01-1:2024", "QCVN 26:2025"):
        assert any(successor in line for line in LIMITS.missing), successor
        assert any(r.id.startswith(successor) for r in LIMITS.regulations), successor


def test_seawater_is_judged_by_the_table_of_its_zone():
    """QCVN 10:2023/BTNMT: Table 2 for the coastal zone (to 6 nautical miles), Table 3 for
    the nearshore zone (6 to 24); coastal pH is in Table 1, not found, so not judged."""
    day = date(2026, 11, 30)
    coastal = {
        (lim.parameter, lim.max) for lim in LIMITS.in_force("seawater", None, day, zone="coastal")
    }
    assert coastal == {
        ("nh4", 0.1),
        ("po4", 0.2),
        ("fluoride", 1.5),
        ("cyanide", 0.01),
        ("arsenic", 0.02),
    }
    [ph] = LIMITS.in_force("seawater", "ph", day, zone="nearshore")
    assert (ph.min, ph.max, ph.clause) == (6.5, 8.5, "Table 3")
    assert LIMITS.in_force("seawater", "ph", day, zone="coastal") == []
    assert LIMITS.in_force("seawater", "nh4", date(2023, 9, 11), zone="coastal") == []


def test_every_wastewater_base_value_of_qcvn_14_2008_scales_by_k_except_ph_and_coliforms():
    day = date(2026, 11, 30)
    column_b = {lim.parameter: lim for lim in LIMITS.in_force("wastewater", None, day, column="B")}
    assert {p: lim.max for p, lim in column_b.items()} == {
        "ph": 9,
        "bod5": 50,
        "tss": 100,
        "nh4": 10,
        "tds": 1000,
        "sulfide": 4,
        "nitrate": 50,
        "animal_vegetable_oil": 20,
        "surfactants": 10,
        "po4": 10,
        "total_coliforms": 5000,
    }
    assert {p for p, lim in column_b.items() if not lim.k_factor} == {"ph", "total_coliforms"}


def test_ranges_and_the_k_factor():
    [ph] = LIMITS.in_force("domestic_water", "ph", date(2024, 1, 1))
    assert [ph.exceeded_by(v) for v in (5.9, 6.0, 8.5, 8.6)] == [True, False, False, True]
    [bod] = LIMITS.in_force("wastewater", "bod5", date(2024, 1, 1), column="A")
    assert not bod.exceeded_by(35, k=1.2)
    assert bod.exceeded_by(37, k=1.2)
    [ph_a] = LIMITS.in_force("wastewater", "ph", date(2024, 1, 1), column="A")
    assert not ph_a.exceeded_by(9.0, k=1.2)  # K never scales pH
    assert ph_a.exceeded_by(9.5, k=1.2)
