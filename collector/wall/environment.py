"""What the wall's air and water panels show: each station's latest hourly means judged
against the limits in force, and each air station's hourly VN_AQI over the last day.

The figures are the compliance report's own (collector/compliance/report.py) for
yesterday and today, so the wall and the files sent to the province never disagree. One
report is built at most every `EVERY_S` for all screens together: a mean of the hour does
not change faster than that, and twelve screens must not cost twelve reports. What people
read (each VN_AQI band's public information, the parameters' names, why a mean was not
judged) is added per screen in its language (`in_language`), in the report's own words
(collector/compliance/texts.py); the figures themselves are the same for all.
"""

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from collector.compliance.aqi import BANDS, Aqi
from collector.compliance.limits import LimitTable
from collector.compliance.report import AqiRow, Row, StationReport, build_report
from collector.compliance.texts import parameter_name, said
from collector.config import CollectorConfig
from collector.stores.base import Store

EVERY_S = 60.0
AQI_HOURS = 24
Json = dict[str, Any]


def _aqi(aqi: Aqi | None) -> Json | None:
    if aqi is None:
        return None
    r, g, b = aqi.band.rgb
    return {
        "value": aqi.value,
        "band": aqi.band.label,
        "colour": f"#{r:02x}{g:02x}{b:02x}",
        "dominant": aqi.dominant,
    }


def _row(row: Row) -> Json:
    judged = [
        {
            "regulation": j.limit.regulation,
            "clause": j.limit.clause,
            "min": j.limit.min,
            "max": j.limit.max,
            "unit": j.limit.unit,
            "exceeded": j.exceeded,
        }
        for j in row.judgements
    ]
    return {
        "parameter": row.parameter,
        "unit": row.unit,
        "averaging": row.averaging,
        "start": row.mean.start.astimezone(UTC).isoformat(),
        "value": row.mean.value,
        "exceeded": row.exceeded,
        "limits": judged,
        "not_judged": row.reason,
        "why": row.why,  # said in each screen's language by `in_language`
    }


def _latest_rows(report: StationReport) -> list[Json]:
    """Per parameter and averaging, the newest mean that has a value, or failing that
    the newest one, which says why it could not be judged."""
    newest: dict[tuple[str, str], Row] = {}
    for row in report.rows:
        key = (row.parameter, row.averaging)
        held = newest.get(key)
        if (
            held is None
            or (row.mean.value is not None and row.mean.start > held.mean.start)
            or held.mean.value is None
        ):
            newest[key] = row
    return [_row(r) for r in sorted(newest.values(), key=lambda r: (r.parameter, r.averaging))]


def _aqi_hours(rows: list[AqiRow], since: datetime) -> list[Json]:
    return [
        {"start": r.start.astimezone(UTC).isoformat(), "aqi": _aqi(r.aqi)}
        for r in rows
        if r.averaging == "1h" and r.start >= since
    ]


def _mean_in(mean: Json, language: str) -> Json:
    return {
        **mean,
        "name": parameter_name(mean["parameter"], language),
        "why": said(mean["why"], language),
    }


def _latest_aqi_in(latest: Json | None, language: str) -> Json | None:
    if latest is None:
        return None
    aqi = latest["aqi"]
    return {**latest, "aqi": {**aqi, "dominant_name": parameter_name(aqi["dominant"], language)}}


def in_language(built: Json, language: str) -> Json:
    """The figures with what a screen in `language` shows in words, in the compliance
    report's own words: each band's name, colour and advice (Decision 1459's public
    information), the parameters' names and why a mean was not judged."""
    return {
        **built,
        "bands": {band.label: asdict(band.public_information(language)) for band in BANDS},
        "stations": [
            {
                **s,
                "aqi": _latest_aqi_in(s["aqi"], language),
                "means": [_mean_in(m, language) for m in s["means"]],
            }
            for s in built["stations"]
        ],
    }


@dataclass
class EnvironmentView:
    store: Store
    settings: CollectorConfig
    limits: LimitTable
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _cached: Json | None = None
    _at: float = 0.0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def current(self, language: str) -> Json:
        async with self._lock:  # screens asking at once wait for one report
            if self._cached is None or time.monotonic() - self._at >= EVERY_S:
                self._cached = await asyncio.to_thread(self._build)
                self._at = time.monotonic()
            built = self._cached
        return in_language(built, language)

    def _build(self) -> Json:
        now = self.clock()
        zone = self.settings.export.zone
        today = now.astimezone(zone).date()
        report = build_report(
            self.store,
            self.settings.stations,
            self.settings.export,
            self.limits,
            today - timedelta(days=1),
            today,
        )
        since = now - timedelta(hours=AQI_HOURS)
        stations = []
        for station in report.stations:
            hours = _aqi_hours(station.aqi, since)
            rated = [h for h in hours if h["aqi"] is not None]
            stations.append(
                {
                    "device": station.device,
                    "name": station.station.name or station.device,
                    "kind": station.station.kind,
                    "means": _latest_rows(station),
                    "aqi": rated[-1] if rated else None,
                    "aqi_hours": hours,
                }
            )
        return {"built": now.isoformat(), "stations": stations}
