"""Hourly, 8-hour, daily and period means, each valid only with enough valid data.

A limit in a regulation is a limit on a mean, and a mean built from a handful of samples,
or from samples the analyser itself flagged, says nothing a report may rely on. So every
mean here carries what went into it (`used`), what the device flagged and was left out
(`excluded`), and the least that makes it valid (`needed`); below that it has no value.
Sound levels are averaged by energy, not arithmetically: 60 and 70 dB(A) make 67.4.
"""

import itertools
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from collector.query import ReadingRow

HOUR = timedelta(hours=1)
LEVEL_UNITS = frozenset({"db", "dba", "db(a)"})


@dataclass(frozen=True)
class Mean:
    """One averaging period of one series; `value` is None when the period is not valid."""

    start: datetime
    end: datetime
    value: float | None
    used: int
    excluded: int
    needed: int


def is_level(unit: str) -> bool:
    """Decibels add as energy: their mean is taken on 10^(L/10)."""
    return unit.casefold() in LEVEL_UNITS


def mean_of(values: Sequence[float], energetic: bool) -> float:
    if energetic:
        return 10 * math.log10(statistics.fmean(10 ** (v / 10) for v in values))
    return statistics.fmean(values)


def infer_interval_s(rows: Iterable[ReadingRow]) -> float | None:
    """The sampling interval as the median spacing of sample times: robust to the gaps
    of an outage, which would drag a mean spacing up."""
    times = sorted({r.ts for r in rows})
    steps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    return statistics.median(steps) if steps else None


def needed_samples(interval_s: float, min_share: float) -> int:
    """The ok samples that make an hour valid at this sampling interval."""
    return math.ceil(min_share * max(1, round(HOUR.total_seconds() / interval_s)))


def hourly_means(
    rows: Iterable[ReadingRow],
    hours: Sequence[datetime],
    interval_s: float,
    min_share: float,
    energetic: bool,
) -> list[Mean]:
    """One mean per hour in `hours` (each an hour's start) from one series' readings.
    Readings the device flagged (any quality but ok) are left out and counted; an hour
    is valid with `min_share` of the samples its interval promises."""
    ok: dict[datetime, list[float]] = defaultdict(list)
    flagged: dict[datetime, int] = defaultdict(int)
    for row in rows:
        hour = row.ts.replace(minute=0, second=0, microsecond=0)
        if row.quality == "ok" and row.value is not None:
            ok[hour].append(row.value)
        else:
            flagged[hour] += 1
    needed = needed_samples(interval_s, min_share)
    means = []
    for hour in hours:
        values = ok.get(hour, [])
        value = mean_of(values, energetic) if len(values) >= needed else None
        means.append(Mean(hour, hour + HOUR, value, len(values), flagged.get(hour, 0), needed))
    return means


def combine(
    hours: Sequence[Mean], start: datetime, end: datetime, needed: int, energetic: bool
) -> Mean:
    """The mean over [start, end) of the valid hourly means inside it."""
    inside = [h for h in hours if start <= h.start < end]
    values = [h.value for h in inside if h.value is not None]
    value = mean_of(values, energetic) if values and len(values) >= needed else None
    return Mean(start, end, value, len(values), sum(h.excluded for h in inside), needed)


def rolling(hours: Sequence[Mean], width: int, needed: int) -> list[Mean]:
    """Means over `width` consecutive hours, one ending with each hour from the
    `width`-th on; `hours` must be contiguous."""
    windows = (hours[i - width + 1 : i + 1] for i in range(width - 1, len(hours)))
    return [combine(w, w[0].start, w[-1].end, needed, False) for w in windows]
