"""Plate reads reach the collector and raise alerts: a real Mosquitto, a real `collector
run` process, a police console subscribed to the alerts topic."""

import asyncio
import json
from datetime import UTC, datetime, timedelta

import aiomqtt

from collector.police import audit
from collector.police.database import PoliceDb
from collector.police.deliveries import Deliveries, State
from collector.police.records import PlateLog
from collector.police.watchlist import Priority, Watchlist
from collector.stores.sqlite import SqliteStore
from iotwire import encode
from iotwire.backlog import marked
from iotwire.messages import ClockSync, PlateAlert, Reading, Sample, Telemetry
from testbed.collector_setup import collector_config
from testbed.waiting import free_port, wait_until
from tests.helpers import metrics, plate_read

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)


def police_collector(tmp_path, mosquitto, client_id: str, **more):
    """A collector with a police database (alerts window 300 s), on this test's broker."""
    alerts = {"path": str(tmp_path / "police.sqlite")}
    return collector_config(tmp_path, mosquitto, client_id, alerts=alerts, **more)


def test_matching_reads_raise_one_alert_each_and_the_ledger_counts_every_plate(
    tmp_path, mosquitto, processes
):
    police = tmp_path / "police.sqlite"
    db = PoliceDb(police)
    Watchlist(db).add(
        "68-B1 234.56", "snatch theft, Duong Dong night market", "officer-1", Priority.HIGH
    )
    db.close()
    config = police_collector(
        tmp_path, mosquitto, "collector-alerts", metrics={"port": free_port()}
    )
    processes.start("collector", "collector", "run", "-c", str(config))
    wait_until(lambda: "subscribed to" in processes.log("collector"), 20, "collector subscribed")

    def at(seconds: int, seq: int, text: str, display: str, camera: str, pole: int = 1):
        read = plate_read(
            seq,
            text,
            display=display,
            device=f"cam-{pole}",
            camera=camera,
            ts=T0 + timedelta(seconds=seconds),
        )
        return f"pq/v1/pole-{pole}/cam-{pole}/plate", read

    reads = [
        at(0, 1, "68B123456", "68-B1 234.56", "north"),  # exact
        at(0, 1, "68B123456", "68-B1 234.56", "north"),  # the same message again
        at(20, 2, "68B123456", "68-B1 234.56", "north"),  # same pole, inside the window
        at(30, 3, "68B123456", "68-B1 234.56", "south"),  # same pole, its other camera
        at(40, 1, "68B123458", "68-B1 234.58", "south", pole=3),  # one character off
        at(60, 4, "51G67890", "51G-678.90", "south"),  # not watched
        at(80, 1, "68B123456", "68-B1 234.56", "north", pole=2),  # another pole's `north`,
    ]  # sent after an outage
    payloads = [(t, encode(read)) for t, read in reads[:-1]]
    payloads.append((reads[-1][0], marked(encode(reads[-1][1]))))

    async def console() -> list[PlateAlert]:
        received: list[PlateAlert] = []
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as client:
            await client.subscribe("pq/v1/alerts/plate", qos=1)
            async with aiomqtt.Client(mosquitto.host, mosquitto.port) as pole:
                for topic, payload in payloads:
                    await pole.publish(topic, payload, qos=1)
            try:
                async with asyncio.timeout(8):
                    async for message in client.messages:
                        received.append(PlateAlert.model_validate_json(message.payload))
            except TimeoutError:
                pass
        return received

    alerts = asyncio.run(console())
    assert [(a.plate, a.match, a.device, a.camera, a.backlog) for a in alerts] == [
        ("68B123456", "exact", "cam-1", "north", False),
        ("68B123458", "one_character", "cam-3", "south", False),
        ("68B123456", "exact", "cam-2", "north", True),
    ]
    first = alerts[0]
    assert (first.watched, first.priority, first.reason) == (
        "68B123456",
        "high",
        "snatch theft, Duong Dong night market",
    )
    assert (first.site, first.device, first.ts) == ("pole-1", "cam-1", T0)
    assert first.crop_jpeg_b64 == "/9j/4AAQSkZJRg=="
    assert alerts[1].score == 0.75
    assert metrics(config)["collector_alerts_published_total"] == 3

    def accounted() -> bool:
        store = SqliteStore(tmp_path / "store.sqlite")
        try:
            return sum(d.messages for d in store.devices()) == 6
        finally:
            store.close()

    wait_until(accounted, 10, "the ledger to count the plate messages")
    store = SqliteStore(tmp_path / "store.sqlite")
    devices = {d.device: (d.messages, d.duplicates, d.gaps) for d in store.devices()}
    store.close()
    assert devices == {"cam-1": (4, 1, 0), "cam-2": (1, 0, 0), "cam-3": (1, 0, 0)}
    db = PoliceDb(police)
    actions = [r.action for r in audit.records(db) if r.action.startswith("alert.")]
    [(reads_stored,)] = db.rows("SELECT count(*) FROM plate_reads")
    db.close()
    assert sorted(actions) == ["alert.deliver"] * 3 + ["alert.raise"] * 3
    assert reads_stored == 6
    assert metrics(config)["collector_messages_backlog_total"] == 1
    assert json.loads(alerts[0].model_dump_json())["kind"] == "plate_alert"


def test_an_alert_raised_but_not_sent_before_a_crash_goes_out_when_the_collector_is_back(
    tmp_path, mosquitto, processes
):
    police = tmp_path / "police.sqlite"
    db = PoliceDb(police)
    Watchlist(db).add("68-B1 234.56", "snatch theft", "officer-1", Priority.HIGH)
    # What a collector killed between committing the alert and publishing it leaves.
    [raised] = PlateLog(db).record(
        "pole-7",
        plate_read(1, ts=T0, display="68-B1 234.56"),
        datetime.now(UTC),
        backlog=False,
    )
    assert [d.state for d in Deliveries(db).of(raised.id)] == [State.PENDING]
    db.close()
    config = police_collector(tmp_path, mosquitto, "collector-restarted")

    async def console() -> PlateAlert:
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as client:
            await client.subscribe("pq/v1/alerts/plate", qos=1)
            processes.start("collector", "collector", "run", "-c", str(config))
            async with asyncio.timeout(20):
                message = await anext(client.messages)
        return PlateAlert.model_validate_json(message.payload)

    assert asyncio.run(console()) == raised
    db = PoliceDb(police)
    wait_until(
        lambda: [d.state for d in Deliveries(db).of(raised.id)] == [State.DELIVERED],
        10,
        "the delivery marked",
    )
    db.close()


def test_alerts_do_not_wait_for_the_telemetry_store(tmp_path, mosquitto, processes, own_influxd):
    db = PoliceDb(tmp_path / "police.sqlite")
    Watchlist(db).add("68-B1 234.56", "snatch theft", "officer-1", Priority.HIGH)
    db.close()
    store = {"kind": "influxdb", "url": own_influxd.url, "api": "v1", "retry_for_s": 0.5}
    spool = str(tmp_path / "spool.sqlite")
    ingest = {"client_id": "collector-store-down", "spool_path": spool}
    config = police_collector(
        tmp_path, mosquitto, "", store=store, ingest=ingest, metrics={"port": free_port()}
    )
    processes.start("collector", "collector", "run", "-c", str(config))
    wait_until(lambda: "subscribed to" in processes.log("collector"), 20, "collector subscribed")
    own_influxd.stop()

    async def publish(topic: str, payload: bytes) -> None:
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as box:
            await box.publish(topic, payload, qos=1)

    # The store is down: a station's reading goes to the spool, and what follows queues
    # behind it there.
    reading = Reading(parameter="pm10", value=12.0, unit="µg/m³")
    sample = Sample(sensor="aqms", ts=datetime.now(UTC), readings=(reading,))
    telemetry = Telemetry(device="air-1", seq=1, clock=ClockSync.SYNCED, samples=(sample,))
    asyncio.run(publish("pq/v1/dd/air-1/telemetry", encode(telemetry)))
    wait_until(lambda: metrics(config)["collector_spool_depth"] == 1, 20, "the reading spooled")

    async def console() -> PlateAlert:
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as client:
            await client.subscribe("pq/v1/alerts/plate", qos=1)
            read = plate_read(1, ts=datetime.now(UTC), display="68-B1 234.56")
            await publish("pq/v1/pole-7/cam-1/plate", encode(read))
            async with asyncio.timeout(10):
                return PlateAlert.model_validate_json((await anext(client.messages)).payload)

    alert = asyncio.run(console())
    assert (alert.plate, alert.match) == ("68B123456", "exact")
    counts = metrics(config)
    assert (counts["collector_spool_depth"], counts["collector_store_up"]) == (2, 0)
    own_influxd.start()
    wait_until(lambda: metrics(config)["collector_spool_depth"] == 0, 60, "the spool drained")
    for device, site in (("air-1", "dd"), ("cam-1", "pole-7")):
        metric = f'collector_device_messages_total{{device="{device}",site="{site}"}}'
        wait_until(lambda metric=metric: metrics(config).get(metric) == 1, 30, metric)
