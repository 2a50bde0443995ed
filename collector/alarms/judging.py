"""A running mean judged against the limits in force, as the exports judge a mean.

The same table (`configured_limits`: built-in, completed by the site file), the same
choice of limits for an averaging (`JUDGED_BY`: an hourly mean is judged by hourly and
single-sample limits), the same unit rules (a limit applies only to a series in its unit;
air gases in ppb or ppm converted to µg/m³ first) and the same K factor. What alarms add
is hysteresis: a mean over a limit raises the alarm, and only a mean back inside the limit
narrowed by `hysteresis` (a share of it) clears it, so a value hovering at the limit does
not raise and resolve it over and over.
"""

from datetime import date

from collector.alarms.events import CLEAR, HOLD, Breach, Finding
from collector.compliance.limits import Limit, LimitTable
from collector.compliance.report import JUDGED_BY
from collector.compliance.units import MASS_UNIT, canonical, conversion
from collector.config import StationSettings
from collector.i18n import services

_ = services.gettext


def in_mass(station: StationSettings, parameter: str, unit: str, value: float) -> tuple[str, float]:
    """An air station's gas in ppb or ppm as µg/m³, as the exports convert it."""
    if station.kind == "air" and (found := conversion(parameter, unit)) is not None:
        return MASS_UNIT, value * found.factor
    return unit, value


def limits_for(
    table: LimitTable,
    station: StationSettings,
    parameter: str,
    unit: str,
    averaging: str,
    day: date,
) -> list[Limit]:
    """The limits in force on `day` that judge this averaging of the series, in its unit."""
    return [
        limit
        for limit in table.for_station(station, parameter, day)
        if limit.averaging in JUDGED_BY.get(averaging, (averaging,))
        and canonical(limit.unit) == canonical(unit)
    ]


def _inside_narrowed(limit: Limit, value: float, k: float, hysteresis: float) -> bool:
    factor = k if limit.k_factor else 1.0
    if limit.max is not None and value > limit.max * factor * (1 - hysteresis):
        return False
    return limit.min is None or value >= limit.min + abs(limit.min) * hysteresis


def _bound(limit: Limit, value: float, k: float) -> float:
    """The bound `value` is beyond: the upper one (times K where it applies) or the lower."""
    if limit.max is not None and value > limit.max * (k if limit.k_factor else 1.0):
        return limit.max * (k if limit.k_factor else 1.0)
    return limit.min if limit.min is not None else 0.0


def judge_mean(
    limits: list[Limit],
    station: StationSettings,
    label: str,
    unit: str,
    averaging: str,
    mean: float,
    hysteresis: float,
) -> Finding:
    """Over a limit: a breach naming the regulation, its clause and the limit. Inside
    every limit narrowed by the hysteresis: clear. Between the two: hold."""
    for limit in limits:
        if limit.exceeded_by(mean, station.k):
            bound = _bound(limit, mean, station.k)
            beyond = (
                _(
                    "{series}: {averaging} mean {mean} {unit} over the limit"
                    " {limit} {limit_unit} of {regulation} ({clause})"
                )
                if mean > bound
                else _(
                    "{series}: {averaging} mean {mean} {unit} under the limit"
                    " {limit} {limit_unit} of {regulation} ({clause})"
                )
            )
            return Breach(
                message=beyond.format(
                    series=label,
                    averaging=averaging,
                    mean=f"{mean:.4g}",
                    unit=unit,
                    limit=f"{bound:.4g}",
                    limit_unit=limit.unit,
                    regulation=limit.regulation,
                    clause=limit.clause,
                ),
                value=mean,
                limit=bound,
                unit=limit.unit,
                regulation=limit.regulation,
                clause=limit.clause,
                averaging=averaging,
            )
    if all(_inside_narrowed(limit, mean, station.k, hysteresis) for limit in limits):
        return CLEAR
    return HOLD


def judge_threshold(
    label: str,
    value: float,
    unit: str,
    low: float | None,
    high: float | None,
    hysteresis: float,
) -> Finding:
    """A raw value beyond a fixed bound; cleared `hysteresis` (in the value's unit) inside."""
    if high is not None and value > high:
        message = _("{series}: {value} {unit} over {bound}").format(
            series=label, value=f"{value:.4g}", unit=unit, bound=f"{high:.4g}"
        )
        return Breach(message, value, high, unit)
    if low is not None and value < low:
        message = _("{series}: {value} {unit} under {bound}").format(
            series=label, value=f"{value:.4g}", unit=unit, bound=f"{low:.4g}"
        )
        return Breach(message, value, low, unit)
    if (high is None or value <= high - hysteresis) and (low is None or value >= low + hysteresis):
        return CLEAR
    return HOLD
