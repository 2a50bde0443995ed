"""Collector ingest against a real Mosquitto: bad input is counted and dropped, good input
is stored, and nothing is acknowledged before the store has committed it."""

import asyncio
import sqlite3
from datetime import timedelta

import aiomqtt

from collector.config import IngestSettings
from collector.ingest.committer import Committer
from collector.ingest.session import Ingest
from collector.ingest.spool import Spool
from collector.query import ReadingQuery
from collector.stores.base import Store
from collector.stores.sqlite import SqliteStore
from iotruntime.connection import BrokerSettings
from iotwire import encode
from iotwire.messages import ClockSync, Reading, Sample, Telemetry
from tests.collector.stores.store_cases import T0, influx_store


def good(device: str, seq: int) -> bytes:
    sample = Sample(
        sensor="aqms",
        ts=T0 + timedelta(minutes=seq),
        readings=(Reading(parameter="pm10", value=float(seq), unit="µg/m³"),),
    )
    return encode(Telemetry(device=device, seq=seq, clock=ClockSync.SYNCED, samples=(sample,)))


async def publish(broker: BrokerSettings, items: list[tuple[str, bytes]]) -> None:
    async with aiomqtt.Client(broker.host, broker.port, identifier="test-publisher") as client:
        for topic, payload in items:
            await client.publish(topic, payload, qos=1)


def test_bad_messages_are_counted_and_dropped_and_good_ones_all_stored(mosquitto, tmp_path):
    broker = BrokerSettings(host=mosquitto.host, port=mosquitto.port)
    store = SqliteStore(tmp_path / "store.sqlite")
    ingest = Ingest(broker, IngestSettings(client_id="collector-test"), Committer(store, "pq"))
    topic = "pq/v1/dd/air-1/telemetry"
    wrong_version = good("air-1", 999).replace(b'"v":1', b'"v":2')
    stream = []
    for seq in range(1, 41):
        stream.append((topic, good("air-1", seq)))
        stream.append(
            [
                (topic, b"{not json"),
                (topic, wrong_version),
                (topic, b"x" * 300_000),
                ("pq/v1/DD/air-1/telemetry", good("air-1", 500)),
                ("pq/v1/dd/air-2/telemetry", good("air-1", 501)),
                (topic, b"\x00\xff" * 10),
            ][seq % 6]
        )

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(ingest.run(stop))
        await asyncio.wait_for(ingest.connected.wait(), 10)
        await publish(broker, stream)
        async with asyncio.timeout(20):
            while ingest.stats.received < len(stream):
                await asyncio.sleep(0.05)
        stop.set()
        await task

    asyncio.run(main())
    stats = ingest.stats
    print(
        "received", stats.received, "stored", stats.stored_messages, "invalid", dict(stats.invalid)
    )
    assert stats.stored_messages == 40
    assert sum(stats.invalid.values()) == 40
    # seq % 6 picks the bad message: residues 0 and 5 occur 6 times in 1..40, the others 7.
    assert stats.invalid == {
        "bad_json": 12,
        "wrong_version": 7,
        "too_large": 7,
        "bad_topic": 7,
        "device_mismatch": 7,
    }
    rows = store.query(ReadingQuery(limit=1000))
    assert sorted(r.value for r in rows) == [float(s) for s in range(1, 41)]
    [device] = store.devices()
    assert (device.messages, device.duplicates, device.gaps) == (40, 0, 0)


def test_nothing_is_acknowledged_before_the_store_commits(mosquitto, tmp_path):
    broker = BrokerSettings(host=mosquitto.host, port=mosquitto.port)
    path = tmp_path / "store.sqlite"
    store = SqliteStore(path, busy_timeout_s=0.2)
    settings = IngestSettings(client_id="collector-ack-test")
    topic = "pq/v1/dd/air-1/telemetry"

    async def main() -> Ingest:
        ingest = Ingest(broker, settings, Committer(store, "pq"))
        stop = asyncio.Event()
        task = asyncio.create_task(ingest.run(stop))
        await asyncio.wait_for(ingest.connected.wait(), 10)

        # Another process holds the database's write lock: every write fails.
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        await publish(broker, [(topic, good("air-1", seq)) for seq in range(1, 21)])
        async with asyncio.timeout(20):
            while ingest.stats.store_failures < 2:
                await asyncio.sleep(0.05)
        assert store.devices() == [] or store.devices()[0].messages == 0
        blocker.execute("ROLLBACK")
        blocker.close()

        async with asyncio.timeout(30):
            while sum(d.messages for d in store.devices()) < 20:
                await asyncio.sleep(0.05)
        stop.set()
        await task
        return ingest

    ingest = asyncio.run(main())
    [device] = store.devices()
    print("store failures", ingest.stats.store_failures, "stored", device.messages)
    assert (device.messages, device.gaps) == (20, 0)
    assert len(store.query(ReadingQuery(limit=1000))) == 20


def test_while_the_store_is_down_messages_wait_in_the_spool_acknowledged(
    mosquitto, own_influxd, tmp_path
):
    broker = BrokerSettings(host=mosquitto.host, port=mosquitto.port)
    spool = Spool(tmp_path / "spool.sqlite")
    settings = IngestSettings(client_id="collector-spool-test")
    topic = "pq/v1/dd/air-1/telemetry"

    async def main(store: Store) -> Ingest:
        ingest = Ingest(broker, settings, Committer(store, "pq"), spool)
        stop = asyncio.Event()
        task = asyncio.create_task(ingest.run(stop))
        await asyncio.wait_for(ingest.connected.wait(), 10)
        await publish(broker, [(topic, good("air-1", seq)) for seq in range(1, 11)])
        async with asyncio.timeout(20):
            while ingest.stats.stored_messages < 10:
                await asyncio.sleep(0.05)

        own_influxd.stop()
        await publish(broker, [(topic, good("air-1", seq)) for seq in range(11, 41)])
        async with asyncio.timeout(30):
            while ingest.stats.spooled < 30:
                await asyncio.sleep(0.05)
        assert spool.depth == 30
        # Acknowledged: a second subscriber on the same session would get nothing more.
        assert ingest.stats.stored_messages == 10

        own_influxd.start()
        # A drain attempt that meets the server while it starts can commit part of a
        # batch and fail the rest; the retry then finds those messages in the ledger and
        # counts them as duplicates. So every message arrives as stored or duplicate.
        async with asyncio.timeout(60):
            while spool.depth or ingest.stats.stored_messages + ingest.stats.duplicates < 40:
                await asyncio.sleep(0.05)
        stop.set()
        await task
        return ingest

    with influx_store(own_influxd.url, retry_for_s=0.5) as store:
        ingest = asyncio.run(main(store))
        [device] = store.devices()
        rows = store.query(ReadingQuery(limit=1000))
    print(f"spooled {ingest.stats.spooled}, stored {device.messages}, gaps {device.gaps}")
    assert (device.messages, device.gaps) == (40, 0)
    assert device.duplicates == ingest.stats.duplicates
    assert sorted(r.value for r in rows) == [float(s) for s in range(1, 41)]  # each once
