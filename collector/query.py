"""The query model every store answers, so the CLI and the API ask one way."""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ReadingQuery:
    start: datetime | None = None
    end: datetime | None = None
    devices: tuple[str, ...] = ()
    parameters: tuple[str, ...] = ()
    limit: int = 1000


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
class DeviceRow:
    device: str
    site: str
    state: str
    version: str
    last_seen: datetime | None
    messages: int
    duplicates: int
    gaps: int
