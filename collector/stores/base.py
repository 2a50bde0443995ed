"""The contract every store keeps, so ingest, CLI and API never ask which one they hold."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from collector.query import (
    AggregateQuery,
    AggregateRow,
    DeviceRow,
    LatestQuery,
    ReadingQuery,
    ReadingRow,
)
from iotwire.messages import Health, PlateRead, Status, Telemetry


@dataclass(frozen=True)
class ReceivedMessage:
    """One data message as it reached the collector; `backlog` when it was replayed
    after an outage rather than sent live. A plate read is personal data kept in the
    police database (collector/police); here it counts in the ledger only, so delivery
    accounting covers a camera pole's whole stream."""

    site: str
    message: Telemetry | Health | PlateRead
    received: datetime
    backlog: bool = False


@dataclass(frozen=True)
class WriteOutcome:
    """What one message did to the store: rows written, a repeat of an earlier
    delivery, or refused by the store for its content (then `rejected` says why)."""

    rows: int
    duplicate: bool
    rejected: str | None = None


class StoreUnavailableError(Exception):
    """The store cannot commit now; nothing of the batch may be acknowledged."""


@dataclass(frozen=True)
class PendingBatch:
    """A batch a store has begun to commit; `outcomes()` waits for the commit to end."""

    finish: Callable[[], list[WriteOutcome]]

    def outcomes(self) -> list[WriteOutcome]:
        return self.finish()


class Store(Protocol):
    def write_batch(self, batch: Sequence[ReceivedMessage]) -> list[WriteOutcome]:
        """Commit every message with its sequence number, idempotently: one outcome per
        delivery, in order. Raises StoreUnavailableError when the batch could not be
        committed; a message the store refuses is an outcome, not an exception."""
        ...

    def begin_batch(self, batch: Sequence[ReceivedMessage]) -> PendingBatch:
        """Begin what `write_batch` does, so the caller can begin the next batch while
        a server writes this one. Outcomes are read in the order the batches began;
        when a batch fails, every batch begun after it fails too, since it may count
        the failed one's messages as already delivered."""
        ...

    def record_status(self, site: str, status: Status, received: datetime) -> None: ...

    def query(self, query: ReadingQuery) -> list[ReadingRow]: ...

    def aggregate(self, query: AggregateQuery, *, rollup: bool = False) -> list[AggregateRow]:
        """Windows of `ok` values; from the hourly rollup when `rollup`, which needs a
        window of whole hours and reaches back as far as the rollup is kept."""
        ...

    def latest(self, query: LatestQuery) -> list[ReadingRow]: ...

    def devices(self) -> list[DeviceRow]: ...

    def roll_up(self, start: datetime, end: datetime) -> int:
        """Recompute the hourly aggregates of the hours in [start, end); returns rows."""
        ...

    def rollup_horizon(self) -> datetime | None:
        """The end of the latest hours rolled up: every hour before it has its rollup."""
        ...

    def purge(self, now: datetime) -> int:
        """Delete what is past its retention; returns rows deleted (0 where the server
        enforces retention itself)."""
        ...

    def close(self) -> None: ...
