"""A box hears its pieces confirmed in the order the collector took them off the wire.

The session hands up to the committer's `depth` batches over at once, each from a thread
of its own, and the threads reach the committer in whatever order they are scheduled. A
box that hears a later piece confirmed first takes the earlier one, sent at least
`resend_after_s` ago and still unconfirmed, for lost on the way and sends it all again:
under a heavy drain, tens of thousands of messages, each alone. Here the first handover's
thread reaches the committer late, as a loaded machine schedules it."""

import asyncio
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

import aiomqtt

from collector.arrivals import Arrival
from collector.config import IngestSettings
from collector.ingest.committer import CommitResult, Committer
from collector.ingest.session import Ingest
from collector.stores.sqlite import SqliteStore
from iotruntime.connection import BrokerSettings
from iotwire import encode
from iotwire.codec import decode
from iotwire.messages import ClockSync, Committed, Reading, Sample, Telemetry
from tests.collector.stores.store_cases import T0

EPOCH = "00000000000000e1"


def message(seq: int) -> bytes:
    sample = Sample(
        sensor="aqms",
        ts=T0 + timedelta(minutes=seq),
        readings=(Reading(parameter="pm10", value=float(seq), unit="µg/m³"),),
    )
    return encode(
        Telemetry(device="air-1", seq=seq, epoch=EPOCH, clock=ClockSync.SYNCED, samples=(sample,))
    )


class LateFirstThread:
    """A committer of depth 3 whose first caller arrives 0.5 s late: the batches handed
    over after it reach it, and are committed, first."""

    depth = 3

    def __init__(self, committer: Committer) -> None:
        self._committer = committer
        self._lock = threading.Lock()
        self._calls = 0

    def commit(self, batch: Sequence[Arrival], received: datetime) -> CommitResult:
        with self._lock:
            first = self._calls == 0
            self._calls += 1
        if first:
            time.sleep(0.5)
        with self._lock:
            return self._committer.commit(batch, received)


def test_pieces_are_confirmed_in_the_order_they_were_handed_over(mosquitto, tmp_path):
    broker = BrokerSettings(host=mosquitto.host, port=mosquitto.port)
    store = SqliteStore(tmp_path / "store.sqlite")
    committer = LateFirstThread(Committer(store, "pq"))
    settings = IngestSettings(client_id="collector-order", batch_messages=1)
    ingest = Ingest(broker, settings, committer)
    heard: list[tuple[int, int]] = []

    async def main() -> None:
        stop = asyncio.Event()
        async with aiomqtt.Client(broker.host, broker.port, identifier="box") as box:
            await box.subscribe("pq/v1/dd/air-1/committed", qos=1)
            collecting = asyncio.create_task(ingest.run(stop))
            await asyncio.wait_for(ingest.connected.wait(), 10)
            for seq in (1, 2, 3):
                await box.publish("pq/v1/dd/air-1/telemetry", message(seq), qos=1)
            async with asyncio.timeout(10):
                async for confirmation in box.messages:
                    assert isinstance(confirmation.payload, bytes)
                    heard.extend(decode(confirmation.payload, Committed).ranges)
                    if len(heard) == 3:
                        break
            stop.set()
            await collecting

    asyncio.run(main())
    assert heard == [(1, 1), (2, 2), (3, 3)]
    [row] = store.devices()
    assert (row.messages, row.duplicates, row.gaps) == (3, 0, 0)
