"""The contract every store keeps."""

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from collector.query import DeviceRow, ReadingQuery, ReadingRow
from iotwire.messages import Health, Status, Telemetry


@dataclass(frozen=True)
class WriteOutcome:
    """What one message did to the store: rows added, or nothing because it came before."""

    rows: int
    duplicate: bool


class Store(Protocol):
    def write(self, site: str, message: Telemetry | Health, received: datetime) -> WriteOutcome:
        """Commit the message and its sequence number together, idempotently."""
        ...

    def record_status(self, site: str, status: Status, received: datetime) -> None: ...

    def query(self, query: ReadingQuery) -> list[ReadingRow]: ...

    def devices(self) -> list[DeviceRow]: ...

    def close(self) -> None: ...
