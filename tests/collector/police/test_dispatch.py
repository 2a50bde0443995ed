"""Alerts to the police units covering the pole, acknowledged or escalated to the duty
desk: against the police database and the device registry, then through a real
`collector run` and Mosquitto."""

import asyncio
from datetime import UTC, datetime, timedelta

import aiomqtt
import pytest
from pydantic import ValidationError

from collector.config import AlertSettings
from collector.fleet.registry import Registry
from collector.police.database import PoliceDb
from collector.police.deliveries import Deliveries
from collector.police.dispatch import (
    DUTY_DESK,
    NO_UNIT,
    NOT_ACKNOWLEDGED,
    DispatchError,
    Dispatches,
    units_of,
)
from collector.police.records import PlateLog
from collector.police.watchlist import Priority, Watchlist
from iotruntime.registration import BoxKind, Location, Registration
from iotwire import encode
from iotwire.messages import PlateAlert
from testbed.collector_setup import collector_config
from testbed.waiting import wait_until
from tests.helpers import plate_read

NOW = datetime.now(UTC).replace(microsecond=0)
DUONG_DONG = [(10.20, 103.95), (10.20, 103.97), (10.23, 103.97), (10.23, 103.95)]
UNITS = [
    {"name": "duong-dong", "area": DUONG_DONG},
    {"name": "an-thoi", "poles": ["cam-9"]},
]


@pytest.fixture
def police(tmp_path):
    registry = Registry(tmp_path / "devices.sqlite")
    for device, lat, lon in (("cam-1", 10.2163, 103.9598), ("cam-5", 10.30, 103.98)):
        registry.register(
            Registration(
                device=device,
                site=f"pole-{device[-1]}",
                kind=BoxKind.CAMERA_POLE,
                name=device,
                location=Location(lat=lat, lon=lon),
            )
        )
    registry.register(
        Registration(device="cam-9", site="pole-9", kind=BoxKind.CAMERA_POLE, name="cam-9")
    )
    db = PoliceDb(tmp_path / "police.sqlite")
    Watchlist(db).add("51F-123.45", "snatch theft", "officer-1", Priority.HIGH)
    settings = AlertSettings.model_validate({"units": UNITS})
    plates = PlateLog(db, locate=registry.get, units=units_of(settings.units))
    yield db, plates
    db.close()
    registry.close()


def raise_at(plates: PlateLog, device: str, seq: int = 1) -> str:
    read = plate_read(seq, "51F12345", ts=NOW, device=device)
    [alert] = plates.record(f"pole-{device[-1]}", read, NOW, backlog=False)
    return alert.id


def channels(db: PoliceDb, alert_id: str) -> list[str]:
    return [d.channel for d in Deliveries(db).of(alert_id)]


def test_an_alert_goes_to_the_unit_whose_area_or_poles_hold_the_pole_and_no_other(police):
    db, plates = police
    in_town = raise_at(plates, "cam-1")
    assert [u.unit for u in Dispatches(db).of(in_town).units] == ["duong-dong"]
    assert channels(db, in_town) == ["dispatch:duong-dong", "mqtt"]
    at_the_port = raise_at(plates, "cam-9")
    assert [u.unit for u in Dispatches(db).of(at_the_port).units] == ["an-thoi"]


def test_an_alert_no_unit_acknowledges_is_escalated_once_and_an_acknowledged_one_never(police):
    db, plates = police
    ignored, handled = raise_at(plates, "cam-1", 1), raise_at(plates, "cam-9", 1)
    dispatches = Dispatches(db)
    dispatches.acknowledge(handled, "an-thoi", "officer-2", "unit 12 on the way", NOW)
    assert dispatches.escalate_due(120, NOW + timedelta(seconds=60)) == []
    assert dispatches.escalate_due(120, NOW + timedelta(seconds=121)) == [ignored]
    assert dispatches.escalate_due(120, NOW + timedelta(seconds=300)) == []
    found = dispatches.of(ignored)
    assert (found.escalation, found.acknowledged) == (NOT_ACKNOWLEDGED, False)
    assert DUTY_DESK in channels(db, ignored)
    assert DUTY_DESK not in channels(db, handled)
    [unit] = dispatches.of(handled).units
    assert (unit.acked_by, unit.ack_note) == ("officer-2", "unit 12 on the way")
    with pytest.raises(DispatchError, match=r"acknowledged alert .* already"):
        dispatches.acknowledge(handled, "an-thoi", "officer-3")
    with pytest.raises(DispatchError, match="not dispatched to unit 'duong-dong'"):
        dispatches.acknowledge(handled, "duong-dong", "officer-3")


def test_an_alert_at_a_pole_no_unit_covers_goes_to_the_duty_desk_at_once(police):
    db, plates = police
    outside = raise_at(plates, "cam-5")
    found = Dispatches(db).of(outside)
    assert (found.units, found.escalation) == ([], NO_UNIT)
    assert channels(db, outside) == [DUTY_DESK, "mqtt"]


@pytest.mark.parametrize(
    ("unit", "message"),
    [
        ({"name": "x"}, "a unit covers an area, poles or both"),
        ({"name": "x", "area": [(10.2, 103.9), (10.3, 103.9)]}, "at least 3 items"),
        ({"name": "x", "area": [(10.2, 103.9), (91, 103.9), (10.3, 104)]}, "less than or equal"),
    ],
)
def test_a_unit_that_covers_nothing_is_refused_saying_why(unit, message):
    with pytest.raises(ValidationError, match=message):
        AlertSettings.model_validate({"units": [unit]})
    with pytest.raises(ValidationError, match="unit names must be unique"):
        AlertSettings.model_validate({"units": [UNITS[1], UNITS[1]]})


def test_a_running_collector_dispatches_by_mqtt_and_escalates_to_the_duty_desk(
    tmp_path, mosquitto, processes
):
    db = PoliceDb(tmp_path / "police.sqlite")
    Watchlist(db).add("51F-123.45", "snatch theft", "officer-1", Priority.HIGH)
    db.close()
    units = [{"name": "unit-a", "poles": ["cam-1"]}, {"name": "unit-b", "poles": ["cam-2"]}]
    alerts = {"path": str(tmp_path / "police.sqlite"), "units": units, "escalate_after_s": 1}
    config = collector_config(tmp_path, mosquitto, "collector-dispatch", alerts=alerts)
    processes.start("collector", "collector", "run", "-c", str(config))
    wait_until(lambda: "subscribed to" in processes.log("collector"), 20, "collector subscribed")

    async def console() -> dict[str, list[PlateAlert]]:
        got: dict[str, list[PlateAlert]] = {}
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as client:
            await client.subscribe("pq/v1/dispatch/#", qos=1)
            await client.subscribe("pq/v1/alerts/escalated", qos=1)
            async with aiomqtt.Client(mosquitto.host, mosquitto.port) as pole:
                read = plate_read(1, "51F12345", ts=datetime.now(UTC), device="cam-1")
                await pole.publish("pq/v1/pole-1/cam-1/plate", encode(read), qos=1)
            try:
                async with asyncio.timeout(8):
                    async for message in client.messages:
                        alert = PlateAlert.model_validate_json(message.payload)
                        got.setdefault(str(message.topic), []).append(alert)
                        if "pq/v1/alerts/escalated" in got:
                            break
            except TimeoutError:
                pass
        return got

    got = asyncio.run(console())
    assert sorted(got) == ["pq/v1/alerts/escalated", "pq/v1/dispatch/unit-a"]
    [dispatched], [escalated] = got["pq/v1/dispatch/unit-a"], got["pq/v1/alerts/escalated"]
    assert dispatched.id == escalated.id
    assert dispatched.plate == "51F12345"
    db = PoliceDb(tmp_path / "police.sqlite")
    found = Dispatches(db).of(dispatched.id)
    db.close()
    assert ([u.unit for u in found.units], found.escalation) == (["unit-a"], NOT_ACKNOWLEDGED)
