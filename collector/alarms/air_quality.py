"""VN_AQI band alarms: each completed hour of an air station qualified to publish VN_AQI
is rated as the exports rate it (`hourly_aqi`: gases from the hour's mean, PM by NowCast
over the last 12 hours), from hourly means in µg/m³ (ppb and ppm converted as the exports
convert them). An hour is complete once a reading of a later hour arrives.

Unlike the exports, an hour's mean here is taken from whatever samples arrived, without
the share of expected samples a report requires: an alarm is a prompt to look, not a
figure for the authority.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from collector.alarms.events import CLEAR, HOLD, Breach, Finding
from collector.compliance.aqi import BANDS, hourly_aqi
from collector.compliance.report import AQI_GASES, AQI_PM
from collector.compliance.units import MASS_UNIT, canonical
from collector.config import AqiRule
from collector.i18n import services
from iotruntime.i18n import N_

_ = services.gettext

HOUR = timedelta(hours=1)
KEPT_HOURS = 13  # the hour rated and the 11 before it for NowCast, and the hour under way
POLLUTANTS = frozenset((*AQI_GASES, *AQI_PM))
# A band as the alarm names it: its label in English, as the rules' `band` writes it.
_BAND_NAMES = {
    "good": N_("good"),
    "moderate": N_("moderate"),
    "poor": N_("poor"),
    "bad": N_("bad"),
    "very bad": N_("very bad"),
    "hazardous": N_("hazardous"),
}


def hour_of(ts: datetime) -> datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


@dataclass
class StationHours:
    """One station's hourly sums per pollutant, the last `KEPT_HOURS` of them."""

    sums: dict[str, dict[datetime, list[float]]] = field(default_factory=lambda: defaultdict(dict))
    newest: datetime | None = None
    rated: datetime | None = None

    def add(self, parameter: str, unit: str, ts: datetime, value: float) -> None:
        if parameter not in POLLUTANTS or canonical(unit) != MASS_UNIT:
            return
        hour = hour_of(ts)
        totals = self.sums[parameter].setdefault(hour, [0.0, 0.0])
        totals[0] += value
        totals[1] += 1
        self.newest = max(self.newest or hour, hour)
        oldest = self.newest - KEPT_HOURS * HOUR
        for by_hour in self.sums.values():
            for gone in [h for h in by_hour if h <= oldest]:
                del by_hour[gone]

    def mean(self, parameter: str, hour: datetime) -> float | None:
        totals = self.sums.get(parameter, {}).get(hour)
        return totals[0] / totals[1] if totals else None

    def completed(self) -> datetime | None:
        """The latest complete hour not rated yet, or None."""
        if self.newest is None:
            return None
        hour = self.newest - HOUR
        return None if self.rated is not None and hour <= self.rated else hour


def rate(rule: AqiRule, device: str, hours: StationHours, hour: datetime) -> Finding:
    """The hour's VN_AQI against the rule's band: a breach at or over it, clear once
    `hysteresis` points under it, hold between."""
    hours.rated = hour
    gases = {p: hours.mean(p, hour) for p in AQI_GASES}
    latest_12 = [hour - i * HOUR for i in range(12)]
    pm = {p: [hours.mean(p, h) for h in latest_12] for p in AQI_PM}
    aqi = hourly_aqi(gases, pm)
    if aqi is None:
        return HOLD
    lowest = next(i for i, b in enumerate(BANDS) if b.label == rule.band)
    floor = BANDS[lowest - 1].upper + 1
    if aqi.value >= floor:
        message = _(
            "{device}: VN_AQI {value} ({band}) for the hour from {hour}, dominant {pollutant}"
        ).format(
            device=device,
            value=aqi.value,
            band=_(_BAND_NAMES[aqi.band.label]),
            hour=hour.isoformat(),
            pollutant=aqi.dominant,
        )
        return Breach(
            message,
            float(aqi.value),
            float(floor),
            "VN_AQI",
            "Decision 1459/QĐ-TCMT",
            aqi.band.label,
            "1h",
        )
    return CLEAR if aqi.value < floor - rule.hysteresis else HOLD
