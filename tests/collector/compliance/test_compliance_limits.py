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
    assert values("noise", "laeq", date(2026, 6, 1), zone="special") == [
        ("day", 55.0),
        ("night", 45.0),
    ]
    assert values("noise", "laeq", date(2027, 1, 1), zone="special") == []


def test_replaced_rules_whose_successors_are_unconfirmed_give_no_limit_and_say_why():
    assert values("wastewater", "tss", date(2025, 8, 31), column="B") == [("sample", 100.0)]
    assert values("wastewater", "tss", date(2025, 9, 1), column="B") == []
    assert values("domestic_water", "turbidity", date(2025, 7, 1)) == []
    assert any("QCVN 14:2025" in line for line in LIMITS.missing)
    assert any("QCVN 01-1:2024" in line for line in LIMITS.missing)
    assert not LIMITS.in_force("seawater", "ph", date(2026, 1, 1))


def test_ranges_and_the_k_factor():
    [ph] = LIMITS.in_force("domestic_water", "ph", date(2024, 1, 1))
    assert [ph.exceeded_by(v) for v in (5.9, 6.0, 8.5, 8.6)] == [True, False, False, True]
    [bod] = LIMITS.in_force("wastewater", "bod5", date(2024, 1, 1), column="A")
    assert not bod.exceeded_by(35, k=1.2)
    assert bod.exceeded_by(37, k=1.2)
    [ph_a] = LIMITS.in_force("wastewater", "ph", date(2024, 1, 1), column="A")
    assert not ph_a.exceeded_by(9.0, k=1.2)  # K never scales pH
    assert ph_a.exceeded_by(9.5, k=1.2)
