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

A question is checked when it is made, so no store is asked one it cannot answer: device
and parameter filters are names the wire admits (nothing else was ever stored, and a CR, LF
or NUL must not reach a query language), times are aware and within `EARLIEST`..`LATEST`,
windows `MIN_WINDOW`..`MAX_WINDOW`. A store that chokes on a year 9999 or a window of a
billion days would fail like a store that is down, and be retried as one; `QueryError`
instead says at once which part of the question is wrong.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from pydantic import TypeAdapter, ValidationError

from collector.i18n import services
from iotruntime.i18n import N_
from iotwire import DeviceId, Name

_ = services.gettext

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Wide enough for any reading a box can send (an unsynced clock starts at the epoch) and
# any report anyone asks for; narrow enough for every store (InfluxDB ends in 2262).
EARLIEST = EPOCH
LATEST = datetime(2101, 1, 1, tzinfo=UTC)
# The local days whose every hour lies within those, in any time zone (UTC-12 to UTC+14):
# the bounds of a report's days.
FIRST_DAY = EARLIEST.date() + timedelta(days=1)
LAST_DAY = LATEST.date() - timedelta(days=2)
MIN_WINDOW = timedelta(seconds=1)
MAX_WINDOW = timedelta(days=366)
# The wire's own rules: what the store holds came through them.
_NAME_RULES = {
    "device": (
        TypeAdapter(DeviceId),
        N_(
            "device {name} is not a valid device name: 1-63 lowercase letters, digits or '-',"
            " first a letter or digit"
        ),
    ),
    "parameter": (
        TypeAdapter(Name),
        N_(
            "parameter {name} is not a valid parameter name: 1-63 lowercase letters, digits,"
            " '_', '.' or '-', first a letter or digit"
        ),
    ),
}


class QueryError(ValueError):
    """A question no store is asked, naming the part of it that is wrong and why: the API
    answers it 422, the CLI prints it as its one-line error."""


def _check_filters(devices: tuple[str, ...], parameters: tuple[str, ...]) -> None:
    for kind, names in (("device", devices), ("parameter", parameters)):
        adapter, problem = _NAME_RULES[kind]
        for name in names:
            try:
                adapter.validate_python(name)
            except ValidationError:
                raise QueryError(_(problem).format(name=repr(name))) from None


def _check_time(name: str, ts: datetime | None) -> None:
    if ts is None:
        return
    if ts.utcoffset() is None:
        raise QueryError(_("{name} {time} has no time zone").format(name=name, time=ts.isoformat()))
    if not EARLIEST <= ts <= LATEST:
        raise QueryError(
            _("{name} {time} is outside {earliest} to {latest}").format(
                name=name,
                time=ts.isoformat(),
                earliest=EARLIEST.isoformat(),
                latest=LATEST.isoformat(),
            )
        )


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

    def __post_init__(self) -> None:
        _check_time("start", self.start)
        _check_time("end", self.end)
        _check_filters(self.devices, self.parameters)
        if self.limit < 1:
            raise QueryError(
                _("limit {limit} is not a positive number of rows").format(limit=self.limit)
            )


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
        _check_time("start", self.start)
        _check_time("end", self.end)
        _check_filters(self.devices, self.parameters)
        if not MIN_WINDOW <= self.window <= MAX_WINDOW or self.window % MIN_WINDOW:
            raise QueryError(
                _(
                    "every: a window of {window} is not a whole number of seconds"
                    " from 1 s to {days} days"
                ).format(window=self.window, days=MAX_WINDOW.days)
            )
        if not self.functions:
            raise QueryError(_("name at least one aggregate function"))
        if self.end <= self.start:
            raise QueryError(
                _("empty time range: {start} to {end}").format(start=self.start, end=self.end)
            )


@dataclass(frozen=True)
class LatestQuery:
    """The newest `ok` value of each series, at or before `at` (now when None)."""

    devices: tuple[str, ...] = ()
    parameters: tuple[str, ...] = ()
    at: datetime | None = None

    def __post_init__(self) -> None:
        _check_time("at", self.at)
        _check_filters(self.devices, self.parameters)


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
    """A device's state and its delivery accounting. `gaps` are the sequence numbers never
    received, summed over the box's epochs; `state_resets` how many times the box started
    a new epoch after its first, having lost its state (a new SD card, a reinstall), which
    restarts its numbers at 1. Agents older than epochs count under none, and an upgrade
    from those to the first epoch is no reset."""

    device: str
    site: str
    state: str
    version: str
    last_seen: datetime | None
    messages: int
    duplicates: int
    gaps: int
    state_resets: int

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


# Twelve digits are more seconds than MAX_DURATION holds: a longer number is no duration,
# and never reaches int() or timedelta(), which would overflow.
_DURATION = re.compile(r"(\d{1,12})([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_DURATION = timedelta(days=36_500)


def is_duration(text: str) -> bool:
    """Written like a duration, whether or not it is too long to be one."""
    return _DURATION.fullmatch(text) is not None


def parse_duration(text: str) -> timedelta:
    """`30s`, `15m`, `2h`, `7d`: how people write windows and look-backs; at most a
    century, so a look-back from now still lands on a date."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(
            _("{text} is not a duration like 30s, 15m, 2h, 7d").format(text=repr(text))
        )
    seconds = int(match[1]) * _UNIT_SECONDS[match[2]]
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(
            _("{text} is longer than {days} days").format(text=repr(text), days=MAX_DURATION.days)
        )
    return timedelta(seconds=seconds)
