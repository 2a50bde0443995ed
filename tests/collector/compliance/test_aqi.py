"""VN_AQI against values worked by hand from Decision 1459/QĐ-TCMT's formula and tables."""

import pytest

from collector.compliance.aqi import band_of, daily_aqi, hourly_aqi, nowcast, sub_index


@pytest.mark.parametrize(
    ("scale", "concentration", "expected"),
    [
        ("pm2_5", 0, 0.0),
        ("pm2_5", 25, 50.0),
        ("pm2_5", 30, 60.0),  # (100 - 50) / (50 - 25) x (30 - 25) + 50
        ("pm10", 200, 125.0),  # (150 - 100) / (250 - 150) x (200 - 150) + 100
        ("co", 20_000, 75.0),  # (100 - 50) / (30000 - 10000) x 10000 + 50
        ("o3_1h", 180, 75.0),  # (100 - 50) / (200 - 160) x 20 + 50
        ("o3_8h", 400, 300.0),
        ("pm2_5", 700, 500.0),  # past the last breakpoint: the top of the scale
    ],
)
def test_sub_indices(scale, concentration, expected):
    assert sub_index(scale, concentration) == pytest.approx(expected)


def test_the_o3_8_hour_scale_stops_where_the_decision_stops_it():
    assert sub_index("o3_8h", 401) is None


def test_nowcast_weights_recent_hours_and_needs_two_of_the_latest_three():
    assert nowcast([30.0] * 12) == pytest.approx(30.0)
    # Only c1 = 40 and c2 = 20: w* = 0.5, so (40 + 0.5 x 20) / (1 + 0.5).
    assert nowcast([40.0, 20.0] + [None] * 10) == pytest.approx(50 / 1.5)
    # A steady hour after a spike: w* = 10/90 < 1/2, so w = 1/2.
    assert nowcast([10.0, 90.0, 10.0]) == pytest.approx((10 + 45 + 2.5) / 1.75)
    assert nowcast([40.0, None, None, 30.0]) is None


def test_an_hour_is_rated_by_its_worst_pollutant():
    aqi = hourly_aqi({"co": 20_000.0, "no2": 50.0}, {"pm2_5": [30.0] * 12})
    assert aqi is not None
    assert (aqi.value, aqi.dominant, aqi.band.label) == (75, "co", "moderate")


def test_no_aqi_without_particulates():
    assert hourly_aqi({"co": 20_000.0}, {}) is None


def test_a_day_uses_24_hour_pm_and_the_highest_hours_and_o3_both_ways():
    aqi = daily_aqi({"pm10": 120.0}, {"so2": 200.0, "o3": 170.0}, max_o3_8h=150.0)
    # PM10 120: 50/100 x 70 + 50 = 85; SO2 200: 50/225 x 75 + 50 = 66.7;
    # O3 1h 170: 50/40 x 10 + 50 = 62.5; O3 8h 150: 50/50 x 30 + 100 = 130.
    assert aqi is not None
    assert (aqi.value, aqi.dominant, aqi.band.label) == (130, "o3", "poor")


def test_bands_and_their_colours():
    assert (band_of(50).label, band_of(51).label) == ("good", "moderate")
    assert band_of(301).rgb == (126, 0, 35)


def test_a_negative_concentration_counts_as_0_and_is_named():
    assert sub_index("pm2_5", -4.0) == 0.0
    aqi = hourly_aqi({"no2": -1.0}, {"pm2_5": [-3.0] * 12, "pm10": [20.0] * 12})
    # PM10 20: 50 / 50 x 20 = 20; PM2.5 and NO2 below zero count as 0.
    assert aqi is not None
    assert (aqi.value, aqi.dominant, aqi.clamped) == (20, "pm10", ("no2", "pm2_5"))


def test_a_day_of_negative_particulates_rates_0_not_below():
    aqi = daily_aqi({"pm2_5": -3.0, "pm10": -2.0}, {}, max_o3_8h=-1.0)
    assert aqi is not None
    assert (aqi.value, aqi.band.label, aqi.clamped) == (0, "good", ("o3", "pm10", "pm2_5"))
