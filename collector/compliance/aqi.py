"""VN_AQI by Decision 1459/QĐ-TCMT (2019): hourly (PM by NowCast) and daily, with bands.

Pure functions over concentrations in µg/m³: callers bring hourly means from the query
layer. Only stations qualified under Circular 10/2021 (Articles 30-31) may publish the
result; which those are is the station's configuration, not this module's business.

A concentration below zero is analyser zero drift, not cleaner than clean air: it counts
as 0, so no sub-index is negative, and the result names the pollutants it happened to
(`clamped`) for the report to flag.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from collector.i18n import reports
from iotruntime.i18n import N_

_INDEX = (0, 50, 100, 150, 200, 300, 400, 500)
# Breakpoints per pollutant, aligned with _INDEX; the O3 8-hour scale ends at index 300.
BREAKPOINTS: dict[str, tuple[float, ...]] = {
    "o3_1h": (0, 160, 200, 300, 400, 800, 1000, 1200),
    "o3_8h": (0, 100, 120, 170, 210, 400),
    "co": (0, 10_000, 30_000, 45_000, 60_000, 90_000, 120_000, 150_000),
    "so2": (0, 125, 350, 550, 800, 1600, 2100, 2630),
    "no2": (0, 100, 200, 700, 1200, 2350, 3100, 3850),
    "pm10": (0, 50, 150, 250, 350, 420, 500, 600),
    "pm2_5": (0, 25, 50, 80, 150, 250, 350, 500),
}


@dataclass(frozen=True)
class Band:
    """A VN_AQI band with the public information Decision 1459 attaches to it (its Table
    5): what the air means for health, and what the general public and sensitive groups
    (the elderly, children, people with respiratory or heart disease) should do. The texts
    are English here; `public_information` gives them in the reader's language, in
    Vietnamese as the decision words them."""

    upper: int
    label: str
    rgb: tuple[int, int, int]
    colour: str
    meaning: str
    general: tuple[str, ...]
    sensitive: tuple[str, ...]

    def public_information(self, language: str) -> "BandInformation":
        text = reports.for_language(language).gettext
        return BandInformation(
            name=text(_NAMES[self.label]),
            colour=text(self.colour),
            rgb=self.rgb,
            meaning=text(self.meaning),
            general=" ".join(map(text, self.general)),
            sensitive=" ".join(map(text, self.sensitive)),
        )


@dataclass(frozen=True)
class BandInformation:
    """One band's public information in one language, ready to print."""

    name: str
    colour: str
    rgb: tuple[int, int, int]
    meaning: str
    general: str
    sensitive: str


_NAMES = {
    "good": N_("Good"),
    "moderate": N_("Moderate"),
    "poor": N_("Poor"),
    "bad": N_("Bad"),
    "very bad": N_("Very bad"),
    "hazardous": N_("Hazardous"),
}
_FREELY = (N_("Enjoy outdoor activities freely."),)
_MASK = N_("If you must go out, wear a mask that meets the standard.")
_INDOORS = N_("Stay indoors and do less strenuous activity.")
_CLOSED = (N_("Everyone should stay indoors with doors and windows closed."), _MASK)
BANDS = (
    Band(
        50,
        "good",
        (0, 228, 0),
        N_("green"),
        N_("Air quality is good and does not affect health."),
        _FREELY,
        _FREELY,
    ),
    Band(
        100,
        "moderate",
        (255, 255, 0),
        N_("yellow"),
        N_(
            "Air quality is acceptable; sensitive people (the elderly, children, people with"
            " respiratory or heart disease) may feel some effects on their health."
        ),
        _FREELY,
        (
            N_(
                "Watch for symptoms such as coughing or shortness of breath, but outdoor"
                " activities can go on."
            ),
        ),
    ),
    Band(
        150,
        "poor",
        (255, 126, 0),
        N_("orange"),
        N_("Sensitive people have health problems; other people are little affected."),
        (
            N_(
                "People with sore eyes, a cough or a sore throat should consider doing less"
                " outdoors. Pupils can be active outdoors but should cut down long exercise."
            ),
        ),
        (
            N_(
                "Do less strenuous activity and spend less time outdoors. People with asthma"
                " may need their medicine more often."
            ),
        ),
    ),
    Band(
        200,
        "bad",
        (255, 0, 0),
        N_("red"),
        N_(
            "Everyone begins to feel effects on their health; sensitive people may have more"
            " serious health problems."
        ),
        (
            N_(
                "Everyone should do less strenuous activity outdoors, avoid long exercise and"
                " rest more indoors."
            ),
        ),
        (_INDOORS, _MASK),
    ),
    Band(
        300,
        "very bad",
        (143, 63, 151),
        N_("purple"),
        N_("Health warning: everyone is more seriously affected."),
        (
            N_(
                "Everyone should keep outdoor activities to a minimum and move all activities"
                " indoors."
            ),
            _MASK,
        ),
        (_INDOORS,),
    ),
    Band(
        500,
        "hazardous",
        (126, 0, 35),
        N_("maroon"),
        N_("Health emergency: the whole population is seriously affected."),
        _CLOSED,
        _CLOSED,
    ),
)


@dataclass(frozen=True)
class Aqi:
    value: int
    dominant: str
    band: Band
    clamped: tuple[str, ...] = ()


def sub_index(scale: str, concentration: float) -> float | None:
    """AQIx on one pollutant's scale; past the scale's last breakpoint, its top index
    (500, or None for the O3 8-hour scale, which the decision leaves open there)."""
    points = BREAKPOINTS[scale]
    concentration = max(concentration, 0.0)
    if concentration > points[-1] and scale == "o3_8h":
        return None
    if concentration >= points[-1]:
        return float(_INDEX[len(points) - 1])
    for i in range(len(points) - 1):
        low, high = points[i], points[i + 1]
        if concentration < high:
            return (_INDEX[i + 1] - _INDEX[i]) / (high - low) * (concentration - low) + _INDEX[i]
    return None


def nowcast(hourly: Sequence[float | None]) -> float | None:
    """PM NowCast over the last 12 hourly means, latest first; a missing hour weighs 0,
    and two of the latest three must be there."""
    recent = list(hourly[:12])
    if sum(c is not None for c in recent[:3]) < 2:
        return None
    present = [c for c in recent if c is not None]
    low, high = min(present), max(present)
    w = max(low / high, 0.5) if high > 0 else 1.0
    weights = [(w**i, c) for i, c in enumerate(recent) if c is not None]
    return sum(wt * c for wt, c in weights) / sum(wt for wt, _ in weights)


def _combine(indices: dict[str, float | None], clamped: set[str]) -> Aqi | None:
    known = {name: v for name, v in indices.items() if v is not None}
    if not ({"pm10", "pm2_5"} & known.keys()):
        return None
    dominant = max(known, key=lambda name: known[name])
    value = math.floor(known[dominant] + 0.5)
    return Aqi(value, dominant, band_of(value), tuple(sorted(clamped)))


def _negative(concentrations: Mapping[str, float | None]) -> set[str]:
    return {name for name, c in concentrations.items() if c is not None and c < 0}


def band_of(value: int) -> Band:
    return next(b for b in BANDS if value <= b.upper)


def hourly_aqi(
    hour_means: Mapping[str, float | None], pm_hourly: Mapping[str, Sequence[float | None]]
) -> Aqi | None:
    """The hour's VN_AQI: SO2, CO, NO2 and O3 from their 1-hour means, PM10 and PM2.5 from
    the NowCast of their last 12 hourly means (latest first)."""
    indices: dict[str, float | None] = {}
    pm = {name: nowcast(pm_hourly.get(name, ())) for name in ("pm10", "pm2_5")}
    for name in ("so2", "co", "no2"):
        if (c := hour_means.get(name)) is not None:
            indices[name] = sub_index(name, c)
    if (o3 := hour_means.get("o3")) is not None:
        indices["o3"] = sub_index("o3_1h", o3)
    for name, c in pm.items():
        if c is not None:
            indices[name] = sub_index(name, c)
    gases = {name: hour_means.get(name) for name in ("so2", "co", "no2", "o3")}
    return _combine(indices, _negative(gases) | _negative(pm))


def daily_aqi(
    day_pm_means: dict[str, float | None],
    max_hourly: dict[str, float | None],
    max_o3_8h: float | None,
) -> Aqi | None:
    """The day's VN_AQI: PM from the 24-hour means; SO2, NO2, CO from the day's highest
    1-hour mean; O3 the larger of its highest 1-hour and highest 8-hour sub-indices."""
    indices: dict[str, float | None] = {}
    for name in ("pm10", "pm2_5"):
        if (c := day_pm_means.get(name)) is not None:
            indices[name] = sub_index(name, c)
    for name in ("so2", "no2", "co"):
        if (c := max_hourly.get(name)) is not None:
            indices[name] = sub_index(name, c)
    o3 = [
        sub_index("o3_1h", c) if (c := max_hourly.get("o3")) is not None else None,
        sub_index("o3_8h", max_o3_8h) if max_o3_8h is not None else None,
    ]
    if any(v is not None for v in o3):
        indices["o3"] = max(v for v in o3 if v is not None)
    clamped = _negative(day_pm_means) | _negative(max_hourly)
    if max_o3_8h is not None and max_o3_8h < 0:
        clamped.add("o3")
    return _combine(indices, clamped)
