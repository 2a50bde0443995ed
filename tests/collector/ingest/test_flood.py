"""A box's backlog arriving while the store is busy is spooled and confirmed at once, so
it leaves the box at the speed of the spool's disk; live messages go straight to the
store; and everything reaches the store once. Real Mosquitto, a real uplink and outbox,
a real SQLite store behind a committer that takes its time, as a loaded store does."""

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from collector.arrivals import Arrival
from collector.config import IngestSettings
from collector.ingest.committer import CommitResult, Committer
from collector.ingest.session import Ingest
from collector.ingest.spool import Spool
from collector.query import ReadingQuery
from collector.stores.sqlite import SqliteStore
from edge_agent.config import DeviceSettings
from edge_agent.outbox import Outbox
from edge_agent.uplink import Uplink
from iotruntime.connection import BrokerSettings
from iotwire.messages import ClockSync, Reading, Sample, Telemetry
from iotwire.topics import Channel

T0 = datetime(2026, 11, 30, 6, tzinfo=UTC)
BACKLOG = 1200
READINGS = 30  # about 2.5 KB a message: the backlog is 3 MB, a dozen batches


class SlowCommitter(Committer):
    """Each commit takes at least `delay_s` longer, as on a store busy elsewhere."""

    def __init__(self, store: SqliteStore, delay_s: float) -> None:
        super().__init__(store, "pq")
        self.delay_s = delay_s

    def commit(self, batch: Sequence[Arrival], received: datetime) -> CommitResult:
        time.sleep(self.delay_s)
        return super().commit(batch, received)


def telemetry(device: str, seq: int) -> Telemetry:
    readings = tuple(
        Reading(parameter=f"p{i}", value=float(seq), unit="µg/m³") for i in range(READINGS)
    )
    sample = Sample(sensor="aqms", ts=T0 + timedelta(seconds=seq), readings=readings)
    return Telemetry(device=device, seq=seq, clock=ClockSync.SYNCED, samples=(sample,))


def test_a_backlog_flood_is_spooled_and_confirmed_and_live_messages_are_not(mosquitto, tmp_path):
    broker = BrokerSettings(host=mosquitto.host, port=mosquitto.port)
    live = DeviceSettings(id="air-live", site="dd", kind="air", name="live")
    flooding = DeviceSettings(id="air-back", site="dd", kind="air", name="back")
    store = SqliteStore(tmp_path / "store.sqlite")
    spool = Spool(tmp_path / "spool.sqlite")
    ingest = Ingest(
        broker, IngestSettings(client_id="collector-flood"), SlowCommitter(store, 0.3), spool
    )
    live_box = Outbox(tmp_path / "live.sqlite")
    backlog = Outbox(tmp_path / "backlog.sqlite")
    for _ in range(BACKLOG):
        backlog.append(Channel.TELEMETRY, lambda seq: telemetry(flooding.id, seq))

    async def main() -> tuple[int, int]:
        stop = asyncio.Event()
        collecting = asyncio.create_task(ingest.run(stop))
        await asyncio.wait_for(ingest.connected.wait(), 10)
        sending = [asyncio.create_task(Uplink(broker, live, live_box, "b1").run(stop))]
        for _ in range(5):  # live traffic: one message now and then, never a flood
            live_box.append(Channel.TELEMETRY, lambda seq: telemetry(live.id, seq))
            async with asyncio.timeout(10):
                while live_box.depth():
                    await asyncio.sleep(0.02)
        spooled_by_live = ingest.stats.spooled

        sending.append(asyncio.create_task(Uplink(broker, flooding, backlog, "b2").run(stop)))
        async with asyncio.timeout(60):
            while backlog.depth():
                await asyncio.sleep(0.02)
        async with asyncio.timeout(60):  # the spool drains into the store afterwards
            while spool.depth or ingest.stats.stored_messages < BACKLOG + 5:
                await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(*sending, collecting)
        return spooled_by_live, ingest.stats.spooled

    spooled_by_live, spooled = asyncio.run(main())
    print(f"spooled: {spooled_by_live} of the live messages, {spooled} arrivals in all")
    assert spooled_by_live == 0
    assert spooled > 0  # the flood went through the spool although the store was up
    rows = {row.device: row for row in store.devices()}
    assert (rows["air-back"].messages, rows["air-back"].duplicates, rows["air-back"].gaps) == (
        BACKLOG,
        0,
        0,
    )
    assert (rows["air-live"].messages, rows["air-live"].gaps) == (5, 0)
    values = store.query(ReadingQuery(devices=("air-back",), parameters=("p0",), limit=10_000))
    assert sorted(r.value for r in values) == [float(seq) for seq in range(1, BACKLOG + 1)]
