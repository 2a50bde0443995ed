"""End-to-end confirmation against a real Mosquitto, a real uplink and a real ingest: a
backlog goes out in batches (plate reads alone), the collector commits every message of
them and confirms each on the box's `committed` topic, and only then does the box forget
them. What a collector spools is confirmed too; what it refuses is not."""

import asyncio
from datetime import UTC, datetime, timedelta

import aiomqtt

from collector.config import IngestSettings
from collector.ingest.committer import Committer
from collector.ingest.session import Ingest
from collector.stores.sqlite import SqliteStore
from edge_agent.config import DeviceSettings, OutboxSettings
from edge_agent.outbox import Outbox
from edge_agent.uplink import Uplink
from iotruntime.connection import BrokerSettings
from iotwire.codec import decode
from iotwire.messages import Batch, ClockSync, Committed, Reading, Sample, Telemetry
from iotwire.topics import Channel
from tests.helpers import plate_read

T0 = datetime(2026, 11, 30, 6, tzinfo=UTC)


def sample(seq: int) -> Sample:
    return Sample(
        sensor="aqms",
        ts=T0 + timedelta(seconds=seq),
        readings=(Reading(parameter="pm10", value=float(seq), unit="µg/m³"),),
    )


def queue_backlog(outbox: Outbox, device: str) -> None:
    """30 readings, a plate read, 10 readings: as an outage leaves them."""
    for n in range(41):
        if n == 30:
            outbox.append(Channel.PLATE, lambda seq: plate_read(seq, device=device, ts=T0))
            continue
        outbox.append(
            Channel.TELEMETRY,
            lambda seq: Telemetry(
                device=device, seq=seq, clock=ClockSync.SYNCED, samples=(sample(seq),)
            ),
        )


def test_a_backlog_goes_in_batches_and_leaves_the_box_only_once_committed(mosquitto, tmp_path):
    broker = BrokerSettings(host=mosquitto.host, port=mosquitto.port)
    device = DeviceSettings(id="cam-1", site="dd", kind="camera_pole", name="cam 1")
    outbox = Outbox(tmp_path / "outbox.sqlite", OutboxSettings(resend_after_s=1))
    queue_backlog(outbox, device.id)
    store = SqliteStore(tmp_path / "store.sqlite")
    ingest = Ingest(broker, IngestSettings(client_id="collector-1"), Committer(store, "pq"))
    uplink = Uplink(broker, device, outbox, boot_id="boot")
    seen: list[tuple[str, bytes]] = []

    async def main() -> None:
        stop = asyncio.Event()
        async with aiomqtt.Client(broker.host, broker.port, identifier="watcher") as watcher:
            await watcher.subscribe("pq/v1/dd/cam-1/+", qos=1)
            collecting = asyncio.create_task(ingest.run(stop))
            await asyncio.wait_for(ingest.connected.wait(), 10)
            sending = asyncio.create_task(uplink.run(stop))

            async def watch() -> None:
                async for message in watcher.messages:
                    assert isinstance(message.payload, bytes)
                    seen.append((str(message.topic).rsplit("/", 1)[1], message.payload))

            watching = asyncio.create_task(watch())
            async with asyncio.timeout(20):
                while outbox.depth():
                    await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # the watcher hears the last confirmation too
            watching.cancel()
            stop.set()
            await asyncio.gather(sending, collecting)

    asyncio.run(main())
    channels = [channel for channel, _ in seen if channel != "status"]
    # The readings before the plate read in one batch, the plate read alone, the rest
    # in another batch; then the confirmations.
    assert channels[:3] == ["batch", "plate", "batch"]
    batches = [decode(p, Batch) for c, p in seen if c == "batch"]
    assert [[m.seq for m in b.messages] for b in batches] == [
        list(range(1, 31)),
        list(range(32, 42)),
    ]
    confirmed = sorted(
        seq
        for c, p in seen
        if c == "committed"
        for first, last in decode(p, Committed).ranges
        for seq in range(first, last + 1)
    )
    assert confirmed == list(range(1, 42))
    assert (outbox.depth(), uplink.confirmed) == (0, 41)
    [row] = store.devices()
    assert (row.messages, row.duplicates, row.gaps) == (41, 0, 0)
    assert ingest.confirmations.confirmed == 41


def test_an_unconfirmed_message_goes_out_again_alone_once_a_later_one_is_confirmed(
    mosquitto, tmp_path
):
    # A collector that took message 2 but never saw 1 (a broker that died holding it):
    # once the box hears 2 confirmed and 1 is overdue, 1 goes out again, by itself.
    broker = BrokerSettings(host=mosquitto.host, port=mosquitto.port)
    device = DeviceSettings(id="air-1", site="dd", kind="air", name="air 1")
    outbox = Outbox(tmp_path / "outbox.sqlite", OutboxSettings(resend_after_s=0.5))
    for _ in range(2):
        outbox.append(
            Channel.TELEMETRY,
            lambda seq: Telemetry(
                device=device.id, seq=seq, clock=ClockSync.SYNCED, samples=(sample(seq),)
            ),
        )
    uplink = Uplink(broker, device, outbox, boot_id="boot", resend_after_s=0.5)
    again: list[str] = []

    async def main() -> None:
        stop = asyncio.Event()
        async with aiomqtt.Client(broker.host, broker.port, identifier="collector-2") as center:
            await center.subscribe("pq/v1/dd/air-1/+", qos=1)
            sending = asyncio.create_task(uplink.run(stop))
            async with asyncio.timeout(20):
                async for message in center.messages:
                    channel = str(message.topic).rsplit("/", 1)[1]
                    if channel == "batch":  # the first sending: confirm only the second
                        [_, second] = decode(bytes(message.payload), Batch).messages
                        assert second.epoch is not None
                        reply = Committed(device="air-1", epoch=second.epoch, ranges=((2, 2),))
                        await center.publish(
                            "pq/v1/dd/air-1/committed", reply.model_dump_json(), qos=1
                        )
                    elif channel == "telemetry":
                        again.append(message.payload.decode())
                        first = decode(bytes(message.payload), Telemetry)
                        reply = Committed(device="air-1", epoch=first.epoch or "", ranges=((1, 1),))
                        await center.publish(
                            "pq/v1/dd/air-1/committed", reply.model_dump_json(), qos=1
                        )
                        break
            async with asyncio.timeout(10):
                while outbox.depth():
                    await asyncio.sleep(0.05)
            stop.set()
            await sending

    asyncio.run(main())
    assert len(again) == 1
    assert '"seq":1' in again[0]
    assert '"backlog":true' not in again[0]  # it was not late leaving, only lost
    assert outbox.depth() == 0
