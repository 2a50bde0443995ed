"""Outbox drops as the boxes report them, heard as the ingest commits them.

A box counts the messages its outbox dropped without ever sending them (its size bound
hit, or its disk full) and reports the count in every health message (`outbox_dropped`).
Both stores keep health messages, but the Store protocol reads none back, and evaluation
asks the store only through it; so the alarms hear health where the wall does, from the
ingest session once each batch is committed (`Ingest(on_commit=...)`,
collector/ingest/session.py). Taking an arrival is an append; the evaluator's thread
decodes what came when it asks for the latest reports, and a batch is decoded only when
it may hold a health message, so a backlog of telemetry draining costs a byte search.

Nothing of it is kept across a restart: the counter counts every drop since the outbox
was made, so a report missed only delays the news to the next one. Messages pass the
checks ingest applies (collector/arrivals.py): the topic names the box that sent it, and
a payload claiming another box is not taken.
"""

import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime

from collector.arrivals import Arrival, InvalidMessage, validated
from iotwire.messages import Batch, Health
from iotwire.topics import Channel

# In every batch holding a health message; a telemetry batch without it is not decoded.
HEALTH_MARK = b'"health"'
_HEALTH, _BATCH = f"/{Channel.HEALTH}", f"/{Channel.BATCH}"


@dataclass(frozen=True)
class Reported:
    """A box's latest health as far as outbox drops go: the epoch of its outbox (a new
    outbox counts from nought), when it said so, and its count of drops."""

    epoch: str
    ts: datetime
    dropped: int


class HealthWatch:
    """The latest report of each box: arrivals taken on the ingest's event loop, decoded
    on the evaluator's thread."""

    def __init__(self, topic_prefix: str) -> None:
        self._prefix = topic_prefix
        self._arrived: deque[tuple[str, bytes]] = deque()
        self._latest: dict[str, Reported] = {}
        self._lock = threading.Lock()
        self.refused = 0

    def committed(self, batch: list[Arrival]) -> None:
        """Keep what may hold a health message, for the next `latest`."""
        for topic, payload, _ in batch:
            if topic.endswith(_HEALTH) or (topic.endswith(_BATCH) and HEALTH_MARK in payload):
                self._arrived.append((topic, payload))

    def latest(self) -> dict[str, Reported]:
        with self._lock:
            while self._arrived:
                self._take(*self._arrived.popleft())
            return dict(self._latest)

    def _take(self, topic: str, payload: bytes) -> None:
        """Keep the health messages of one arrival, each box's newest only."""
        try:
            _, message = validated(topic, payload, self._prefix)
        except InvalidMessage:
            self.refused += 1  # ingest logs and counts it; here it is only left out
            return
        found = message.messages if isinstance(message, Batch) else (message,)
        for health in found:
            if not isinstance(health, Health):
                continue
            kept = self._latest.get(health.device)
            if kept is None or health.ts > kept.ts:
                self._latest[health.device] = Reported(
                    health.epoch or "", health.ts, health.outbox_dropped
                )
