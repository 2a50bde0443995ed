"""Running means of one series, kept incrementally, valid as the exports' means are valid.

The hourly mean runs over the last hour: the window keeps sums per bucket (a minute), so
a new sample costs one addition and the mean is exact to a bucket's edge. It counts only
with the share of expected samples an export's hour needs (`needed_samples`).

The 8-hour and 24-hour means are made as the exports make them, by their functions
(collector/compliance/averages.py): hourly means of clock hours, each valid with that
share of its expected samples, and the mean of the valid ones, valid with enough valid
hours. So they move once an hour, when a reading of a later hour completes one, as the
regulations' rolling means do; the 24 hours are those ending with the latest complete
hour, which at local midnight are the day an export judges. A clock hour keeps a sum and
a count, so a thousand series over a day take a few hundred kilobytes. Sound levels add
as energy, as in the exports.
"""

import math
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from collector.compliance.averages import HOUR, Mean, combine, needed_samples, rolling
from collector.query import to_micros

BUCKETS = 60
RUNNING = timedelta(hours=1)
CLOCK_HOURS = {"8h": 8, "24h": 24}


@dataclass(slots=True)
class _Bucket:
    index: int
    total: float
    count: int


class RunningMean:
    def __init__(self, width: timedelta, energetic: bool) -> None:
        self._bucket_us = int(width.total_seconds() * 1_000_000) // BUCKETS
        self._energetic = energetic
        self._buckets: deque[_Bucket] = deque()
        self._sum = 0.0
        self._count = 0

    def add(self, ts: datetime, value: float) -> None:
        index = to_micros(ts) // self._bucket_us
        newest = self._buckets[-1].index if self._buckets else None
        if newest is not None and index < newest - BUCKETS + 1:
            return  # older than the window: it no longer counts
        term = 10 ** (value / 10) if self._energetic else value
        bucket = self._bucket_of(index)
        bucket.total += term
        bucket.count += 1
        self._sum += term
        self._count += 1
        self._expire()

    def _bucket_of(self, index: int) -> _Bucket:
        """The bucket of `index`, made when missing; buckets stay in index order."""
        if not self._buckets or self._buckets[-1].index < index:
            self._buckets.append(_Bucket(index, 0.0, 0))
            return self._buckets[-1]
        for bucket in reversed(self._buckets):
            if bucket.index == index:
                return bucket
        self._buckets.append(_Bucket(index, 0.0, 0))
        self._buckets = deque(sorted(self._buckets, key=lambda b: b.index))
        return next(b for b in self._buckets if b.index == index)

    def _expire(self) -> None:
        oldest = self._buckets[-1].index - BUCKETS + 1
        while self._buckets[0].index < oldest:
            gone = self._buckets.popleft()
            self._sum -= gone.total
            self._count -= gone.count

    @property
    def samples(self) -> int:
        return self._count

    def mean(self, needed: int) -> float | None:
        """The mean, or None with fewer than `needed` samples in the window."""
        if self._count == 0 or self._count < needed:
            return None
        mean = self._sum / self._count
        return 10 * math.log10(mean) if self._energetic else mean


class ClockHours:
    """One series' sums per clock hour (UTC hours: whole local hours in Vietnam, as in
    the exports), the last `kept` complete ones and the hour under way. An hour is
    complete once a reading of a later hour arrives; readings of an hour already
    complete are not taken, since its means may have been judged."""

    def __init__(self, kept: int, energetic: bool) -> None:
        self._kept = kept
        self._energetic = energetic
        self._sums: dict[datetime, list[float]] = {}
        self._current: datetime | None = None

    def add(self, ts: datetime, value: float) -> None:
        hour = ts.replace(minute=0, second=0, microsecond=0)
        if self._current is not None and hour < self._current:
            return
        if hour != self._current:
            self._current = hour
            oldest = hour - self._kept * HOUR
            for gone in [h for h in self._sums if h < oldest]:
                del self._sums[gone]
        totals = self._sums.setdefault(hour, [0.0, 0])
        totals[0] += 10 ** (value / 10) if self._energetic else value
        totals[1] += 1

    @property
    def completed(self) -> datetime | None:
        """The start of the latest complete hour, None before one is."""
        return None if self._current is None else self._current - HOUR

    def _hours(self, last: datetime, count: int, interval_s: float, min_share: float) -> list[Mean]:
        """The `count` hours ending with the one starting at `last`, oldest first, each
        valid with `min_share` of the samples `interval_s` promises, as an export's hour."""
        needed = needed_samples(interval_s, min_share)
        means = []
        for i in range(count - 1, -1, -1):
            start = last - i * HOUR
            total, used = self._sums.get(start, (0.0, 0))
            value = None
            if used and used >= needed:
                value = total / used
                value = 10 * math.log10(value) if self._energetic else value
            means.append(Mean(start, start + HOUR, value, int(used), 0, needed))
        return means

    def mean(
        self, averaging: str, last: datetime, interval_s: float, min_share: float, min_hours: int
    ) -> Mean:
        """The 8-hour or 24-hour mean ending with the hour starting at `last` (the latest
        complete one), by the exports' own functions: `rolling` for 8 hours, `combine`
        for 24."""
        width = CLOCK_HOURS[averaging]
        hours = self._hours(last, width, interval_s, min_share)
        if averaging == "8h":
            return rolling(hours, width, min_hours)[-1]
        return combine(hours, hours[0].start, hours[-1].end, min_hours, self._energetic)


class FaultShare:
    """The share of one source's readings that were faults, over the last `width`."""

    def __init__(self, width: timedelta) -> None:
        self._width = width
        self._readings: deque[tuple[datetime, bool]] = deque()
        self._faults = 0

    def add(self, ts: datetime, fault: bool) -> None:
        self._readings.append((ts, fault))
        self._faults += fault
        oldest = ts - self._width
        while self._readings[0][0] <= oldest:
            _, gone = self._readings.popleft()
            self._faults -= gone

    @property
    def readings(self) -> int:
        return len(self._readings)

    def share(self) -> float:
        return self._faults / len(self._readings) if self._readings else 0.0
