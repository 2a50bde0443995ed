"""The query model every store answers, so the CLI, the API and the exports ask one way.

Both stores must give the same rows for the same data; the shared test suite holds them to
it. The rules that make that possible are stated here once:

- time ranges are half open, `start <= ts < end`;
- aggregation windows are aligned to the Unix epoch (what InfluxQL's GROUP BY time does),
  labelled by their start, and a window without a usable value is left out;
- aggregates use only readings of quality `ok` that have a value: a calibration run or an
  out-of-range value must not move an hourly mean that is checked against a legal limit;
- raw readings come ordered by time, then series (device, sensor, parameter); aggregates
  and latest values by series, then time.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Aggregate(StrEnum):
    MEAN = "mean"
    MIN = "min"
    MAX = "max"
    LAST = "last"
    COUNT = "count"


@dataclass(frozen=True)
class ReadingQuery:
    """Raw readings, every quality, in store order."""

    start: datetime | None = None
    end: datetime | None = None
    devices: tuple[str, ...] = ()
    parameters: tuple[str, ...] = ()
    limit: int = 1000


@dataclass(frozen=True)
class AggregateQuery:
    """Per series and window, the chosen aggregates of its `ok` values."""

    start: datetime
    end: datetime
    window: timedelta
    functions: tuple[Aggregate, ...] = (Aggregate.MEAN,)
    devices: tuple[str, ...] = ()
    parameters: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.window < timedelta(seconds=1) or self.window % timedelta(seconds=1):
            raise ValueError(f"window must be a whole number of seconds, not {self.window}")
        if not self.functions:
            raise ValueError("name at least one aggregate function")
        if self.end <= self.start:
            raise ValueError(f"empty time range: {self.start} to {self.end}")


@dataclass(frozen=True)
class LatestQuery:
    """The newest `ok` value of each series, at or before `at` (now when None)."""

    devices: tuple[str, ...] = ()
    parameters: tuple[str, ...] = ()
    at: datetime | None = None


@dataclass(frozen=True)
class ReadingRow:
    ts: datetime
    site: str
    device: str
    sensor: str
    parameter: str
    value: float | None
    unit: str
    quality: str


@dataclass(frozen=True)
class AggregateRow:
    """One series' window; `values` follows the query's `functions`, in order."""

    window_start: datetime
    site: str
    device: str
    sensor: str
    parameter: str
    unit: str
    values: tuple[float, ...]


@dataclass(frozen=True)
class DeviceRow:
    device: str
    site: str
    state: str
    version: str
    last_seen: datetime | None
    messages: int
    duplicates: int
    gaps: int

    def state_at(self, now: datetime, silent_after: timedelta) -> str:
        """The status messages' state, corrected by the heartbeat: a box whose session
        still looks alive to the broker but has sent nothing, health included, for
        `silent_after` is `silent`: its last will has not fired yet, or cannot."""
        if self.state == "online" and (
            self.last_seen is None or now - self.last_seen > silent_after
        ):
            return "silent"
        return self.state


def to_micros(ts: datetime) -> int:
    """Exact integer microseconds since the epoch: a float would blur the series key."""
    delta = ts - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def aggregate_order(row: AggregateRow) -> tuple[str, str, str, str, str, datetime]:
    return (row.device, row.sensor, row.parameter, row.site, row.unit, row.window_start)


def latest_order(row: ReadingRow) -> tuple[str, str, str, str, str]:
    return (row.device, row.sensor, row.parameter, row.site, row.unit)


def reading_order(row: ReadingRow) -> tuple[datetime, str, str, str]:
    return (row.ts, row.device, row.sensor, row.parameter)


_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """`30s`, `15m`, `2h`, `7d`: how people write windows and look-backs."""
    if match := _DURATION.match(text):
        return timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2]])
    raise ValueError(f"{text!r} is not a duration like 30s, 15m, 2h, 7d")
