"""Decoding and committing a batch: the half of ingest that costs CPU.

Ingest (collector/ingest/session.py) keeps the MQTT session, the acknowledgements and the spool,
and records plate reads in the police database (collector/police/intake.py); it hands
each batch as it came off the wire to a committer, which validates every message, writes
status, data and every message's ledger entry to the store, and answers with what
happened. The committer runs in a thread of the ingest process or, in `collector run`,
in a process of its own (collector/ingest/commit_process.py): paho's packet handling and the
store's work then run on two cores instead of taking turns under one interpreter lock.
"""

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from collector.arrivals import Arrival, InvalidMessage, validated
from collector.stores.base import PendingBatch, ReceivedMessage, Store, StoreUnavailableError
from iotwire.messages import Health, Message, PlateRead, Status, Telemetry

log = logging.getLogger(__name__)


@dataclass
class CommitResult:
    """What one batch did. When `unavailable` is set the store committed nothing of it;
    `valid` then says which messages are worth keeping until it is back."""

    valid: list[int] = field(default_factory=list)
    invalid: Counter[str] = field(default_factory=Counter)
    stored: int = 0
    duplicates: int = 0
    backlog: int = 0
    store_seconds: float = 0.0
    unavailable: str | None = None


class Committing(Protocol):
    depth: int  # batches that may be handed over before the first is answered

    def commit(self, batch: Sequence[Arrival], received: datetime) -> CommitResult: ...


@dataclass
class BegunCommit:
    """A batch decoded and handed to the store, its outcomes not yet read."""

    result: CommitResult
    deliveries: list[ReceivedMessage]
    writing: PendingBatch | None


class Committer:
    """Commits one batch at a time; `begin` and `finish` let the commit process
    (collector/ingest/commit_process.py) begin the next batch while the store's server is still
    writing this one."""

    depth = 1  # one store connection, one batch at a time

    def __init__(self, store: Store, topic_prefix: str) -> None:
        self._store = store
        self._prefix = topic_prefix
        self._logged: set[str] = set()

    def commit(self, batch: Sequence[Arrival], received: datetime) -> CommitResult:
        return self.finish(self.begin(batch, received))

    def begin(self, batch: Sequence[Arrival], received: datetime) -> BegunCommit:
        result = CommitResult()
        statuses: list[tuple[str, Status]] = []
        deliveries: list[ReceivedMessage] = []
        for i, (topic, payload, backlog) in enumerate(batch):
            if (found := self._decode(topic, payload, result)) is None:
                continue
            result.valid.append(i)
            site, message = found
            if isinstance(message, Status):
                statuses.append((site, message))
            elif isinstance(message, Telemetry | Health | PlateRead):
                deliveries.append(
                    ReceivedMessage(site, message, received, backlog or message.backlog)
                )
        began = time.perf_counter()
        writing = None
        try:
            for site, status in statuses:
                self._store.record_status(site, status, received)
            if deliveries:
                writing = self._store.begin_batch(deliveries)
        except StoreUnavailableError as exc:
            result.unavailable = str(exc)
            return BegunCommit(result, deliveries, None)
        result.store_seconds = time.perf_counter() - began
        return BegunCommit(result, deliveries, writing)

    def finish(self, begun: BegunCommit) -> CommitResult:
        result = begun.result
        if begun.writing is None:
            return result
        began = time.perf_counter()
        try:
            outcomes = begun.writing.outcomes()
        except StoreUnavailableError as exc:
            result.unavailable = str(exc)
            result.store_seconds = 0.0
            return result
        # The time spent in the store's calls, not from begin to end: batches overlap.
        result.store_seconds += time.perf_counter() - began
        for delivery, outcome in zip(begun.deliveries, outcomes, strict=True):
            if outcome.rejected:
                self._reject(result, "store_rejected", ValueError(outcome.rejected))
            elif outcome.duplicate:
                result.duplicates += 1
            else:
                result.stored += 1
                result.backlog += delivery.backlog
        return result

    def _decode(
        self, topic_text: str, payload: bytes, result: CommitResult
    ) -> tuple[str, Message] | None:
        try:
            return validated(topic_text, payload, self._prefix)
        except InvalidMessage as exc:
            self._reject(result, exc.reason, exc, topic_text)
            return None

    def _reject(self, result: CommitResult, reason: str, exc: Exception, topic: str = "") -> None:
        result.invalid[reason] += 1
        if reason not in self._logged:
            self._logged.add(reason)
            log.warning("dropped invalid message (%s) %s: %s", reason, topic, exc)
