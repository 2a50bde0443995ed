"""The environmental officer's report: stored readings turned into valid means, each judged
against the limit in force on its day, with VN_AQI for the air stations qualified to
publish it.

Everything is computed from raw readings through the shared query model, so both stores
give the same report. Days and the noise day and night periods are local time (the
export's `timezone`); hours are whole hours, which in Vietnam (UTC+7) are local hours too.
The file formats (CSV, workbook, HTML, Circular 10 files) only lay this out.

A mean that is not judged says why (`Row.note`): an empty verdict would read as
compliance. Reasons, notes and flags are `texts.Phrase`s: English strings, as the CSV
writes them, that each document can say again in its reader's language. Air gases in ppb
or ppm are converted to µg/m³ at QCVN 05's reference conditions before anything else
(`units.py`), so they are judged and enter VN_AQI; a negative concentration is flagged as
analyser zero drift.
"""

import math
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from collector.compliance.aqi import Aqi, daily_aqi, hourly_aqi
from collector.compliance.averages import (
    HOUR,
    Mean,
    combine,
    hourly_means,
    infer_interval_s,
    is_level,
    needed_samples,
    rolling,
)
from collector.compliance.limits import Limit, LimitTable
from collector.compliance.texts import NOTHING, Joined, Parameters, Phrase
from collector.compliance.units import (
    MASS_UNIT,
    Conversion,
    canonical,
    conversion,
    is_concentration,
)
from collector.config import ExportSettings, StationSettings
from collector.i18n import reports as texts
from collector.query import ReadingQuery, ReadingRow
from collector.stores.base import Store
from iotruntime.i18n import N_

# Hours read before the period, for the PM NowCast (12 h) and the 8-hour means (8 h), and
# after it, for the last day's noise night (until 06:00 the next morning).
BEFORE = timedelta(hours=12)
AFTER = timedelta(hours=6)
ZERO = timedelta(0)
CHUNK_ROWS = 200_000
AQI_GASES = ("so2", "co", "no2", "o3")
AQI_PM = ("pm10", "pm2_5")
AQI_UNIT = MASS_UNIT
NO_UNIT = Phrase(N_("no unit"))


def not_judged(why: Phrase) -> Phrase:
    """A mean's reason for not being judged (`Row.why` is `why` alone)."""
    return Phrase(N_("not judged: {why}"), why=why)


NO_LIMIT = not_judged(Phrase(N_("no limit in force on this day")))
TOO_FEW = not_judged(Phrase(N_("too few valid data for a mean")))
# Which limits judge a mean of each kind: a limit on single samples judges hourly means,
# the finest mean the report gives.
JUDGED_BY = {"1h": ("1h", "sample"), "8h": ("8h",), "24h": ("24h",)}
NOISE_DAY = (time(6), time(21))

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Judgement:
    limit: Limit
    exceeded: bool


@dataclass(frozen=True)
class Row:
    """One mean of one parameter, with every limit that judged it."""

    parameter: str
    unit: str
    averaging: str
    mean: Mean
    judgements: tuple[Judgement, ...] = ()
    note: Phrase = NOTHING
    flags: tuple[Phrase, ...] = ()
    conversion: Conversion | None = None
    reason: Phrase = NOTHING  # why it was not judged, also in `note`; empty when judged

    @property
    def exceeded(self) -> bool:
        return any(j.exceeded for j in self.judgements)

    @property
    def judged(self) -> bool:
        return bool(self.judgements)

    @property
    def why(self) -> Phrase:
        """The reason without its "not judged: ", for a table whose column says that."""
        why = self.reason.values.get("why", NOTHING)
        return why if isinstance(why, Phrase) else NOTHING

    @property
    def measured_unit(self) -> str:
        """The unit the analyser reported, before any conversion."""
        return self.conversion.measured if self.conversion else self.unit


@dataclass(frozen=True)
class AqiRow:
    averaging: str
    start: datetime
    end: datetime
    aqi: Aqi | None

    @property
    def flags(self) -> tuple[Phrase, ...]:
        if self.aqi is None or not self.aqi.clamped:
            return ()
        return (
            Phrase(
                N_("{pollutants} below 0 (analyser zero drift), counted as 0"),
                pollutants=Parameters(self.aqi.clamped),
            ),
        )


@dataclass
class StationReport:
    device: str
    station: StationSettings
    rows: list[Row] = field(default_factory=list)
    aqi: list[AqiRow] = field(default_factory=list)
    conversions: list[Conversion] = field(default_factory=list)

    @property
    def judged(self) -> int:
        return sum(r.judged for r in self.rows)

    @property
    def not_judged(self) -> int:
        return len(self.rows) - self.judged

    @property
    def flagged(self) -> int:
        return sum(bool(r.flags) for r in self.rows)

    @property
    def excluded(self) -> int:
        """Samples the device flagged in the period, counted once (in the hourly rows)."""
        return sum(r.mean.excluded for r in self.rows if r.averaging == "1h")

    def exceedances(self) -> list[Row]:
        return [r for r in self.rows if r.exceeded]


@dataclass(frozen=True)
class Report:
    first: date
    last: date
    zone: ZoneInfo
    stations: list[StationReport]

    def local(self, ts: datetime) -> datetime:
        return ts.astimezone(self.zone)


def day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), zone).astimezone(UTC)


def days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def fetch(store: Store, device: str, start: datetime, end: datetime) -> list[ReadingRow]:
    """Every reading of one device in [start, end), in halves when a part is too big to
    come back in one answer."""
    rows = store.query(ReadingQuery(start, end, (device,), (), CHUNK_ROWS))
    if len(rows) < CHUNK_ROWS:
        return rows
    middle = start + (end - start) / 2
    return fetch(store, device, start, middle) + fetch(store, device, middle, end)


def hour_range(start: datetime, end: datetime) -> list[datetime]:
    return [start + HOUR * i for i in range(int((end - start) / HOUR))]


Series = tuple[str, str]


def series_hourly(
    store: Store,
    device: str,
    station: StationSettings,
    settings: ExportSettings,
    chunks: list[tuple[datetime, datetime]],
    step: Callable[[], None],
) -> dict[Series, list[Mean]]:
    """Hourly means of each (parameter, unit) series of one device over the chunks, read
    a chunk (a day) at a time, so a year's export holds hourly means rather than a year of
    raw readings. Chunks are whole hours; an hour a series has no reading in is empty."""
    means: dict[Series, dict[datetime, Mean]] = defaultdict(dict)
    intervals: dict[Series, float] = {}
    for start, end in chunks:
        by_series: dict[Series, list[ReadingRow]] = defaultdict(list)
        for row in fetch(store, device, start, end):
            by_series[(row.parameter, row.unit)].append(row)
        hours = hour_range(start, end)
        for key, readings in by_series.items():
            interval = (
                station.interval_s
                or infer_interval_s(readings)
                or intervals.get(key, HOUR.total_seconds())
            )
            intervals[key] = interval
            energetic = is_level(key[1])
            for mean in hourly_means(readings, hours, interval, settings.hour_min_share, energetic):
                means[key][mean.start] = mean
        step()
    hours = hour_range(chunks[0][0], chunks[-1][1])
    return {
        key: [
            by_hour.get(h)
            or Mean(
                h, h + HOUR, None, 0, 0, needed_samples(intervals[key], settings.hour_min_share)
            )
            for h in hours
        ]
        for key, by_hour in sorted(means.items())
    }


def build_report(
    store: Store,
    stations: dict[str, StationSettings],
    settings: ExportSettings,
    limits: LimitTable,
    first: date,
    last: date,
    progress: Progress | None = None,
) -> Report:
    """The report for the local days `first` to `last` inclusive. `progress` hears
    (done, total) after each station-day read from the store."""
    if last < first:
        raise ValueError(
            texts.gettext("the period ends ({last}) before it starts ({first})").format(
                last=last, first=first
            )
        )
    zone = settings.zone
    span = list(days(first, last))
    chunks = [
        (
            day_start(day, zone) - (BEFORE if day == first else ZERO),
            day_start(day + timedelta(days=1), zone) + (AFTER if day == last else ZERO),
        )
        for day in span
    ]
    total, done = len(stations) * len(span), 0

    def step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    reports = []
    for device, station in stations.items():
        hourly, conversions = _to_mass(
            series_hourly(store, device, station, settings, chunks, step), station
        )
        reports.append(
            _station_report(device, station, settings, limits, hourly, conversions, span, zone)
        )
    return Report(first, last, zone, reports)


def _to_mass(
    hourly: dict[Series, list[Mean]], station: StationSettings
) -> tuple[dict[Series, list[Mean]], dict[str, Conversion]]:
    """An air station's gases in ppb or ppm as µg/m³, and the conversions made, by
    parameter. A series converts only when the station has no µg/m³ series of that gas
    already, which would otherwise be overwritten; it then stays in its unit."""
    if station.kind != "air":
        return hourly, {}
    out: dict[Series, list[Mean]] = {}
    conversions: dict[str, Conversion] = {}
    for (parameter, unit), means in hourly.items():
        found = conversion(parameter, unit)
        if found is None or (parameter, MASS_UNIT) in hourly or parameter in conversions:
            out[(parameter, unit)] = means
            continue
        conversions[parameter] = found
        out[(parameter, MASS_UNIT)] = [
            replace(m, value=None if m.value is None else m.value * found.factor) for m in means
        ]
    return dict(sorted(out.items())), conversions


def _station_report(
    device: str,
    station: StationSettings,
    settings: ExportSettings,
    limits: LimitTable,
    hourly: dict[Series, list[Mean]],
    conversions: dict[str, Conversion],
    span: list[date],
    zone: ZoneInfo,
) -> StationReport:
    report = StationReport(device, station, conversions=list(conversions.values()))
    period = (day_start(span[0], zone), day_start(span[-1] + timedelta(days=1), zone))
    for (parameter, unit), means in hourly.items():
        energetic = is_level(unit)
        judge = _judge(limits, station, parameter, unit, zone, conversions.get(parameter))
        report.rows += [judge("1h", m) for m in means if period[0] <= m.start < period[1]]
        if any(_limits_for(limits, station, parameter, day, "8h") for day in span):
            eights = rolling(means, 8, settings.eight_hour_min_hours)
            report.rows += [judge("8h", m) for m in eights if period[0] <= m.start < period[1]]
        for day in span:
            start, end = day_start(day, zone), day_start(day + timedelta(days=1), zone)
            daily = combine(
                within(means, start, end), start, end, settings.day_min_hours, energetic
            )
            report.rows.append(judge("24h", daily))
            if station.kind == "noise":
                report.rows += [
                    judge(
                        name,
                        combine(
                            within(means, a, b), a, b, math.ceil(settings.hour_min_share * n), True
                        ),
                    )
                    for name, a, b, n in _noise_periods(day, zone)
                ]
    if station.aqi:
        report.aqi = _aqi(hourly, span, zone, period, settings)
    return report


def within(means: list[Mean], start: datetime, end: datetime) -> list[Mean]:
    """The hourly means in [start, end), by position: the list is contiguous hours, and a
    year's export would otherwise scan every hour for every day."""
    first = means[0].start
    return means[max(0, int((start - first) / HOUR)) : max(0, int((end - first) / HOUR))]


def _noise_periods(day: date, zone: ZoneInfo) -> list[tuple[str, datetime, datetime, int]]:
    """QCVN 26's day (06:00-21:00) and the night that begins on `day` (21:00-06:00)."""
    morning = datetime.combine(day, NOISE_DAY[0], zone).astimezone(UTC)
    evening = datetime.combine(day, NOISE_DAY[1], zone).astimezone(UTC)
    next_morning = morning + timedelta(days=1)
    return [
        ("day", morning, evening, int((evening - morning) / HOUR)),
        ("night", evening, next_morning, int((next_morning - evening) / HOUR)),
    ]


def _limits_for(
    limits: LimitTable, station: StationSettings, parameter: str, day: date, averaging: str
) -> list[Limit]:
    return [
        limit
        for limit in limits.for_station(station, parameter, day)
        if limit.averaging in JUDGED_BY.get(averaging, (averaging,))
    ]


def _judge(
    limits: LimitTable,
    station: StationSettings,
    parameter: str,
    unit: str,
    zone: ZoneInfo,
    converted: Conversion | None,
) -> Callable[[str, Mean], Row]:
    """Judges one series' means; every mean left unjudged gets its reason as its note,
    and a converted series states its conversion."""
    in_force: dict[tuple[date, str], list[Limit]] = {}
    flag_negative = is_concentration(unit)
    in_aqi = station.aqi and parameter in (*AQI_GASES, *AQI_PM)
    zero_drift = Phrase(
        N_("negative (analyser zero drift), counted as 0 in VN_AQI")
        if in_aqi
        else N_("negative (analyser zero drift)")
    )
    measured: str = unit or NO_UNIT

    def judge(averaging: str, mean: Mean) -> Row:
        day = mean.start.astimezone(zone).date()
        key = (day, averaging)
        if key not in in_force:  # one lookup per day and averaging, not one per mean
            in_force[key] = _limits_for(limits, station, parameter, day, averaging)
        found = in_force[key]
        usable = [limit for limit in found if canonical(limit.unit) == canonical(unit)]
        judgements = (
            tuple(Judgement(limit, limit.exceeded_by(mean.value, station.k)) for limit in usable)
            if mean.value is not None
            else ()
        )
        stated = ", ".join(sorted({limit.unit for limit in found if limit not in usable}))
        reason = NOTHING
        if not found:
            reason = NO_LIMIT
        elif not usable:
            reason = not_judged(
                Phrase(
                    N_("measured in {unit}, the limit in {stated}"), unit=measured, stated=stated
                )
            )
        elif not judgements:
            reason = TOO_FEW
        notes: list[str] = [reason] if reason else []
        if stated and usable:
            notes.append(
                Phrase(
                    N_("a limit in {stated} not applied: measured in {unit}"),
                    stated=stated,
                    unit=measured,
                )
            )
        if converted is not None:
            notes.append(converted.describe())
        negative = flag_negative and mean.value is not None and mean.value < 0
        return Row(
            parameter,
            unit,
            averaging,
            mean,
            judgements,
            Joined(notes),
            (zero_drift,) if negative else (),
            converted,
            reason,
        )

    return judge


def _aqi(
    hourly: dict[Series, list[Mean]],
    span: list[date],
    zone: ZoneInfo,
    period: tuple[datetime, datetime],
    settings: ExportSettings,
) -> list[AqiRow]:
    """Hourly and daily VN_AQI from the valid hourly means in µg/m³."""
    usable = {p: means for (p, unit), means in hourly.items() if canonical(unit) == AQI_UNIT}
    if not usable:
        return []
    starts = [m.start for m in next(iter(usable.values()))]
    value: dict[str, dict[datetime, float | None]] = {
        p: {m.start: m.value for m in means} for p, means in usable.items()
    }
    rows = []
    for i, start in enumerate(starts):
        if not period[0] <= start < period[1]:
            continue
        gases = {p: value[p].get(start) for p in AQI_GASES if p in value}
        latest_12 = list(reversed(starts[max(0, i - 11) : i + 1]))
        pm = {p: [value[p].get(s) for s in latest_12] for p in AQI_PM if p in value}
        rows.append(AqiRow("1h", start, start + HOUR, hourly_aqi(gases, pm)))
    o3_8h = rolling(usable["o3"], 8, settings.eight_hour_min_hours) if "o3" in usable else []
    for day in span:
        start, end = day_start(day, zone), day_start(day + timedelta(days=1), zone)
        pm_means = {
            p: combine(
                within(usable[p], start, end), start, end, settings.day_min_hours, False
            ).value
            for p in AQI_PM
            if p in usable
        }
        max_hourly = {
            p: _max([m.value for m in within(usable[p], start, end)])
            for p in AQI_GASES
            if p in usable
        }
        # The 8-hour means that end within the day start 7 hours earlier than its hours.
        ending = within(o3_8h, start - 7 * HOUR, end - 7 * HOUR) if o3_8h else []
        max_8h = _max([m.value for m in ending])
        rows.append(AqiRow("24h", start, end, daily_aqi(pm_means, max_hourly, max_8h)))
    return rows


def _max(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None
