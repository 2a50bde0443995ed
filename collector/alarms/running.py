"""Running means of one series over the last hour, 8 hours or day, kept incrementally.

A window keeps sums per bucket (a sixtieth of its width, a minute for the hour), so a
thousand series over a day take a few hundred kilobytes and a new sample costs one
addition; the mean is exact to a bucket's edge. Sound levels add as energy, as in the
exports (collector/compliance/averages.py).
"""

import math
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from collector.query import to_micros

BUCKETS = 60
WIDTHS = {"1h": timedelta(hours=1), "8h": timedelta(hours=8), "24h": timedelta(hours=24)}


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

    def mean(self) -> float | None:
        if self._count == 0:
            return None
        mean = self._sum / self._count
        return 10 * math.log10(mean) if self._energetic else mean


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
