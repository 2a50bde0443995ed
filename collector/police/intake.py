"""Plate reads off the wire into the plate log, in the ingest process, ahead of the ledger.

The ingest process records each batch's plate reads (raising their alerts) before it hands
the batch to the committer, which then writes their ledger entries like any message's: a
crash between the two delivers the batch again, and the reads are found already there.
The police database is written by this one process only: were the commit process to
write it too, the alert publisher's claims would meet the committer's transactions across
processes, where SQLite waits for a lock by sleeping milliseconds at a time, and every
such wait would delay an alert (bench/bench_alerts.py measures publication to alert).
"""

from collections.abc import Sequence
from datetime import datetime

from collector.arrivals import Arrival, InvalidMessage, validated
from collector.police.records import PlateLog
from iotwire.messages import PlateRead
from iotwire.topics import Channel

_PLATE_TOPIC_END = f"/{Channel.PLATE.value}"


def plate_arrivals(batch: Sequence[Arrival]) -> list[Arrival]:
    """The arrivals on a plate topic, by the topic's end alone: the ingest process asks
    this of every batch, telemetry included, and it must cost next to nothing there."""
    return [arrival for arrival in batch if arrival[0].endswith(_PLATE_TOPIC_END)]


def record_plates(
    plates: PlateLog, topic_prefix: str, batch: Sequence[Arrival], received: datetime
) -> int:
    """Record the batch's valid plate reads; returns how many alerts they raised. What
    does not validate is left to the committer, which counts it once, as invalid."""
    alerts = 0
    for topic_text, payload, backlog in batch:
        try:
            site, read = validated(topic_text, payload, topic_prefix)
        except InvalidMessage:
            continue
        if isinstance(read, PlateRead):
            alerts += len(plates.record(site, read, received, backlog or read.backlog))
    return alerts
