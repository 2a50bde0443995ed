"""Alarms raised by a real `collector run` on a real Mosquitto: a real edge agent stopped
and started again, a wastewater box's readings sent as a box sends them, a console on the
alarms topic and a real webhook receiver checking signatures."""

import asyncio
import hashlib
import hmac
import json
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from collector.alarms.book import AlarmBook
from collector.stores.sqlite import SqliteStore
from iotwire import encode
from iotwire.messages import ClockSync, Health, Reading, Sample, Telemetry
from testbed.collector_setup import collector_config
from testbed.processes import run_cli
from testbed.waiting import free_port, wait_for_port, wait_until
from testbed.webhook_receiver import Received, WebhookReceiver
from tests.helpers import EventStream, air_agent_config, api_request

# Alarms judge readings as they arrive against ticks of the collector's clock; other
# tests' load would shift what each tick sees: these run alone (`make test`).
pytestmark = pytest.mark.solo
SECRET = b"alarm-secret"
EPOCH = "00000000000000aa"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


def alarm_collector(
    tmp_path: Path, mosquitto: Any, url: str, rules: list[dict[str, Any]], **more: Any
) -> Path:
    secret = tmp_path / "webhook.secret"
    secret.write_bytes(SECRET)
    alarms = {
        "path": str(tmp_path / "alarms.sqlite"),
        "every_s": 0.5,
        "rules": rules,
        "webhooks": [{"name": "ops-desk", "url": url, "secret_file": str(secret)}],
    }
    stations = {
        "ww-1": {"kind": "wastewater", "column": "B"},
        "ww-2": {"kind": "wastewater", "column": "B"},
    }
    return collector_config(
        tmp_path, mosquitto, "collector-alarms", alarms=alarms, stations=stations, **more
    )


def signed(request: Received) -> bool:
    stamp = request.headers["X-PQ-Timestamp"]
    digest = hmac.new(SECRET, stamp.encode() + b"." + request.body, hashlib.sha256).hexdigest()
    return request.headers["X-PQ-Signature"] == f"sha256={digest}"


def events(receiver: WebhookReceiver) -> list[tuple[str, str, str]]:
    return [
        (str(r.json()["event"]), str(r.json()["rule"]), str(r.json()["device"]))
        for r in receiver.requests
    ]


def book_of(tmp_path: Path) -> AlarmBook:
    return AlarmBook(tmp_path / "alarms.sqlite")


def test_an_agent_stopped_raises_one_offline_alarm_resolved_when_it_returns(
    tmp_path, mosquitto, processes, simulated_device, receiver
):
    rules = [{"name": "box-offline", "type": "offline", "severity": "critical"}]
    config = alarm_collector(tmp_path, mosquitto, receiver.url, rules)
    processes.start("collector", "collector", "run", "-c", str(config))
    wait_until(lambda: "subscribed to" in processes.log("collector"), 20, "collector subscribed")
    port = simulated_device("1:pq-sim-air")
    agent_yaml = air_agent_config(tmp_path, mosquitto, port)
    console: list[dict[str, object]] = []

    async def watch(done: asyncio.Event) -> None:
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as client:
            await client.subscribe("pq/v1/alarms/#", qos=1)
            async with asyncio.timeout(120):
                async for message in client.messages:
                    assert str(message.topic) == "pq/v1/alarms/critical"
                    assert isinstance(message.payload, bytes)
                    console.append(json.loads(message.payload))
                    if len(console) == 2:
                        done.set()
                        return

    async def scenario() -> None:
        done = asyncio.Event()
        watching = asyncio.create_task(watch(done))
        await asyncio.sleep(1)
        agent = processes.start("agent", "edge-agent", "run", "-c", str(agent_yaml))
        await asyncio.to_thread(
            wait_until, lambda: _stored(tmp_path), 30, "the agent's first messages stored"
        )
        await asyncio.sleep(2)
        assert events(receiver) == []  # online: nothing to say
        agent.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(agent.wait, 30) == 0
        await asyncio.to_thread(
            wait_until, lambda: len(receiver.requests) == 1, 20, "the offline alarm"
        )
        await asyncio.sleep(3)  # more ticks: still one alarm
        assert events(receiver) == [("raised", "box-offline", "air-1")]
        processes.start("agent-again", "edge-agent", "run", "-c", str(agent_yaml))
        await asyncio.to_thread(
            wait_until, lambda: len(receiver.requests) == 2, 30, "the alarm resolved"
        )
        await asyncio.wait_for(watching, 20)

    asyncio.run(scenario())
    assert events(receiver) == [
        ("raised", "box-offline", "air-1"),
        ("resolved", "box-offline", "air-1"),
    ]
    assert all(signed(r) for r in receiver.requests)
    assert len({r.json()["id"] for r in receiver.requests}) == 1
    assert [(c["event"], c["device"]) for c in console] == [
        ("raised", "air-1"),
        ("resolved", "air-1"),
    ]
    assert "plate" not in json.dumps(console)


def _stored(tmp_path: Path) -> bool:
    store = SqliteStore(tmp_path / "store.sqlite")
    try:
        return any(d.device == "air-1" and d.messages > 0 for d in store.devices())
    finally:
        store.close()


def telemetry(device: str, seq: int, ts: datetime, bod5: float) -> bytes:
    reading = Reading(parameter="bod5", value=bod5, unit="mg/L")
    sample = Sample(sensor="outlet", ts=ts, readings=(reading,))
    return encode(
        Telemetry(device=device, seq=seq, epoch=EPOCH, clock=ClockSync.SYNCED, samples=(sample,))
    )


def send(mosquitto: Any, messages: list[tuple[str, bytes]]) -> None:
    async def publish() -> None:
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as box:
            for topic, payload in messages:
                await box.publish(topic, payload, qos=1)

    asyncio.run(publish())


@pytest.fixture(params=["sqlite", "influxdb"])
def store_section(request, tmp_path):
    """Both stores: evaluation asks each only what the Store protocol offers."""
    if request.param == "sqlite":
        return {"kind": "sqlite", "path": str(tmp_path / "store.sqlite")}
    influxd = request.getfixturevalue("influxd")
    database = f"t{uuid.uuid4().hex[:12]}"
    return {"kind": "influxdb", "url": influxd.url, "api": "v1", "database": database}


def test_an_effluent_over_its_limit_raises_one_alarm_kept_across_a_restart_and_silence_holds(
    tmp_path, mosquitto, processes, receiver, store_section
):
    rules = [{"name": "effluent", "type": "limit", "kinds": ["wastewater"], "hysteresis": 0.1}]
    port = free_port()
    api = {"port": port, "users_path": str(tmp_path / "users.sqlite")}
    config = alarm_collector(tmp_path, mosquitto, receiver.url, rules, api=api, store=store_section)
    tokens = {}
    for name, role in (("anna", "ops"), ("chi", "env"), ("dung", "technician")):
        added = run_cli("collector", "users", "add", name, "--role", role, "-c", str(config))
        tokens[role] = added.stdout.strip().splitlines()[-1]
    result = run_cli(
        "collector", "alarms", "silence", "-c", str(config), "--device", "ww-2",
        "--for", "2h", "--by", "lan", "--reason", "membrane cleaning",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    collector = processes.start("collector", "collector", "run", "-c", str(config))
    wait_for_port(port)
    wait_until(lambda: "subscribed to" in processes.log("collector"), 20, "collector subscribed")
    officer = EventStream(port, tokens["env"], path="/alarms/stream")
    technician = EventStream(port, tokens["technician"], path="/alarms/stream")
    assert (officer.status, technician.status) == (200, 403)
    # A sample a minute: an hour is judged with 45 of its 60, so the readings span the
    # hour the collector reads back at its start, the last of them a minute or two ahead.
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=58)
    minute = timedelta(minutes=1)
    over = [
        (f"pq/v1/plant/{d}/telemetry", telemetry(d, i + 1, start + i * minute, 52.0))
        for d in ("ww-1", "ww-2")
        for i in range(45)
    ]
    send(mosquitto, over)
    wait_until(lambda: len(receiver.requests) >= 1, 20, "the exceedance alarm")
    [raised] = [r.json() for r in receiver.requests]
    assert (raised["event"], raised["device"], raised["regulation"]) == (
        "raised",
        "ww-1",
        "QCVN 14:2008/BTNMT",
    )
    assert raised["limit"] == 50.0
    assert "over the limit 50 mg/L of QCVN 14:2008/BTNMT (column B)" in str(raised["message"])
    wait_until(lambda: officer.events, 10, "the alarm on the stream")
    officer.close()
    technician.close()
    [(_, event, data)] = officer.events
    assert event == "alarm_raised"
    assert json.loads(data)["id"] == raised["id"]
    base = f"http://127.0.0.1:{port}"
    status, body = api_request(f"{base}/alarms?active=true", tokens["env"])
    assert status == 200, body
    assert [a["id"] for a in json.loads(body)] == [raised["id"]]
    assert api_request(f"{base}/alarms", tokens["technician"])[0] == 403
    status, body = api_request(f"{base}/alarms/{raised['id']}/ack", tokens["ops"], "POST")
    assert status == 200, body
    assert json.loads(body)["acked_by"] == "anna"
    assert api_request(f"{base}/alarms/nope/ack", tokens["ops"], "POST")[0] == 404
    window = {"rule": "effluent", "device": "ww-3", "for_s": 600, "reason": "calibration"}
    status, body = api_request(
        f"{base}/alarms/silence", tokens["env"], "POST", json.dumps(window).encode(),
        "application/json",
    )  # fmt: skip
    assert status == 200, body
    assert json.loads(body)["by"] == "chi"
    # Hovering at the limit: the mean stays just over 50 (51.1 to 51.5).
    hovering = [
        ("pq/v1/plant/ww-1/telemetry", telemetry("ww-1", 46 + i, start + (45 + i) * minute, v))
        for i, v in enumerate([30.0, 40.0, 55.0, 45.0, 50.0, 48.0])
    ]
    send(mosquitto, hovering)
    collector.send_signal(signal.SIGTERM)
    assert collector.wait(30) == 0
    processes.start("collector-again", "collector", "run", "-c", str(config))
    wait_until(lambda: "subscribed to" in processes.log("collector-again"), 20, "collector back")
    time.sleep(3)  # several ticks of the restarted collector over the same readings
    assert len(receiver.requests) == 1
    book = book_of(tmp_path)
    try:
        [active] = book.alarms(active_only=True)
    finally:
        book.close()
    assert active.id == raised["id"]
    result = run_cli("collector", "alarms", "list", "-c", str(config), "--csv")
    assert result.returncode == 0, result.stderr
    assert raised["id"] in result.stdout
    back = [
        ("pq/v1/plant/ww-1/telemetry", telemetry("ww-1", 52 + i, start + (51 + i) * minute, 5.0))
        for i in range(10)  # the mean down to 43.4, under 45 (50 less 10 %)
    ]
    send(mosquitto, back)
    wait_until(lambda: len(receiver.requests) >= 2, 20, "the alarm resolved")
    assert events(receiver) == [("raised", "effluent", "ww-1"), ("resolved", "effluent", "ww-1")]
    assert all(signed(r) for r in receiver.requests)
    assert {r.json()["id"] for r in receiver.requests} == {raised["id"]}
    book = book_of(tmp_path)
    try:
        kinds = [(h.event, h.actor) for h in book.history()]
    finally:
        book.close()
    assert kinds == [
        ("silenced", "lan"),
        ("raised", "collector"),
        ("acknowledged", "anna"),
        ("silenced", "chi"),
        ("resolved", "collector"),
    ]


def test_outbox_drops_a_box_reports_raise_one_alarm_in_a_running_collector(
    tmp_path, mosquitto, processes, receiver
):
    rules = [{"name": "outbox-drops", "type": "outbox_drops", "severity": "critical"}]
    config = alarm_collector(tmp_path, mosquitto, receiver.url, rules)
    processes.start("collector", "collector", "run", "-c", str(config))
    wait_until(lambda: "subscribed to" in processes.log("collector"), 20, "collector subscribed")

    def health(seq: int, dropped: int) -> tuple[str, bytes]:
        message = Health(
            device="ww-1", seq=seq, epoch=EPOCH, ts=datetime.now(UTC), clock=ClockSync.SYNCED,
            boot_id="b1", uptime_s=60.0, load1=0.1, mem_used_pct=20.0, disk_used_pct=99.5,
            outbox_depth=9000, outbox_dropped=dropped, source_errors={},
        )  # fmt: skip
        return "pq/v1/plant/ww-1/health", encode(message)

    def baseline() -> str | None:
        book = book_of(tmp_path)
        try:
            return book.position("drops:outbox-drops:ww-1")
        finally:
            book.close()

    send(mosquitto, [health(1, 0)])
    wait_until(baseline, 20, "the first count taken as the baseline")
    time.sleep(1)  # more ticks: still nothing to say
    assert receiver.requests == []
    send(mosquitto, [health(2, 120)])
    wait_until(lambda: len(receiver.requests) == 1, 20, "the outbox drops alarm")
    [raised] = [r.json() for r in receiver.requests]
    assert (raised["event"], raised["rule"], raised["device"], raised["value"]) == (
        "raised",
        "outbox-drops",
        "ww-1",
        120.0,
    )
    assert signed(receiver.requests[0])
