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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from collector.arrivals import Arrival, InvalidMessage, validated
from collector.ingest.confirmations import Positions, add_position
from collector.stores.base import PendingBatch, ReceivedMessage, Store, StoreUnavailableError
from iotwire.messages import Batch, Health, Message, PlateRead, Status, Telemetry

log = logging.getLogger(__name__)

# How often a sender's invalid messages of one reason are logged, after the first.
REJECT_LOG_EVERY_S = 60.0
# Senders whose invalid messages are logged one by one; past them, under OTHER_SENDERS.
MAX_REJECT_SENDERS = 1000
OTHER_SENDERS = "(other)"


@dataclass
class CommitResult:
    """What one batch did. When `unavailable` is set the store committed nothing of it;
    `valid` then says which messages are worth keeping until it is back. `invalid`
    counts dropped messages by reason, `invalid_from` by sender (the device, or the topic
    that names none: arrivals.InvalidMessage) and reason, so the box that sends garbage
    can be found. `committed` holds what may be confirmed to the boxes: every message
    with an epoch that the store now holds or refused for good (a repeat included)."""

    valid: list[int] = field(default_factory=list)
    invalid_from: Counter[tuple[str, str]] = field(default_factory=Counter)
    stored: int = 0
    duplicates: int = 0
    backlog: int = 0
    store_seconds: float = 0.0
    unavailable: str | None = None
    committed: Positions = field(default_factory=dict)

    @property
    def invalid(self) -> Counter[str]:
        """Dropped messages by reason alone."""
        by_reason: Counter[str] = Counter()
        for (_, reason), count in self.invalid_from.items():
            by_reason[reason] += count
        return by_reason


@dataclass(frozen=True)
class CommitterFailed:
    """The commit process's answer when the committer raised something other than an
    unavailable store, or could not start. Defined here, not in the process's own module,
    which runs as `__main__` there: the parent must be able to unpickle it."""

    reason: str


@dataclass
class _Logged:
    due: float
    since: float
    dropped: int = 0


class RejectLog:
    """Logs invalid messages by sender and reason: the first at once, then at most one
    line every `every_s` with the count since the last line. A box that sends garbage is
    named without flooding the log, and a flood of made-up topics costs at most
    `max_senders` entries."""

    def __init__(
        self,
        every_s: float = REJECT_LOG_EVERY_S,
        max_senders: int = MAX_REJECT_SENDERS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._every_s = every_s
        self._max_senders = max_senders
        self._clock = clock
        self._logged: dict[tuple[str, str], _Logged] = {}

    def dropped(self, sender: str, reason: str, detail: object) -> None:
        now = self._clock()
        key = (sender, reason)
        if key not in self._logged and len(self._logged) >= self._max_senders:
            # Forget who has nothing left to report: their next drop is logged afresh.
            self._logged = {k: e for k, e in self._logged.items() if e.dropped or now < e.due}
            if len(self._logged) >= self._max_senders:
                key = (OTHER_SENDERS, reason)
        entry = self._logged.get(key)
        if entry is None:
            self._logged[key] = _Logged(due=now + self._every_s, since=now)
            log.warning("dropped invalid message from %s (%s): %s", key[0], reason, detail)
            return
        entry.dropped += 1
        if now < entry.due:
            return
        log.warning(
            "dropped %d invalid message(s) from %s (%s) in the last %.0f s, the latest: %s",
            entry.dropped,
            key[0],
            reason,
            now - entry.since,
            detail,
        )
        entry.due, entry.since, entry.dropped = now + self._every_s, now, 0


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
        self._rejects = RejectLog()

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
            elif isinstance(message, Batch):
                deliveries += (
                    ReceivedMessage(site, inner, received, backlog or inner.backlog)
                    for inner in message.messages
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
            message = delivery.message
            if message.epoch is not None:
                add_position(
                    result.committed, (delivery.site, message.device, message.epoch), message.seq
                )
            if outcome.rejected:
                self._reject(result, delivery.message.device, "store_rejected", outcome.rejected)
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
            self._reject(result, exc.source, exc.reason, exc)
            return None

    def _reject(self, result: CommitResult, sender: str, reason: str, detail: object) -> None:
        result.invalid_from[sender, reason] += 1
        self._rejects.dropped(sender, reason, detail)
