"""MQTT 5 where the broker speaks it, 3.1.1 where it does not, and backlog marked over both."""

import asyncio
import time
from datetime import UTC, datetime

import pytest
import yaml
from aiomqtt import ProtocolVersion

from edge_agent.config import DeviceSettings
from edge_agent.outbox import Outbox
from edge_agent.uplink import Uplink
from iotruntime.connection import BrokerSettings, ProtocolChoice, mqtt_session
from iotwire.codec import decode
from iotwire.messages import Batch, ClockSync, Reading, Sample, Telemetry
from iotwire.topics import Channel
from testbed.waiting import free_port, wait_for_port


def telemetry(seq: int) -> Telemetry:
    sample = Sample(
        sensor="pm",
        ts=datetime.now(UTC),
        readings=(Reading(parameter="pm10", value=12.5, unit="ug/m3"),),
    )
    return Telemetry(device="air-1", seq=seq, clock=ClockSync.SYNCED, samples=(sample,))


def test_auto_speaks_mqtt_5_to_mosquitto(mosquitto):
    broker = BrokerSettings(host=mosquitto.host, port=mosquitto.port)
    choice = ProtocolChoice("auto")

    async def connect() -> ProtocolVersion:
        async with mqtt_session(broker, choice, identifier="v5-test") as (_, version):
            return version

    assert asyncio.run(connect()) is ProtocolVersion.V5
    assert choice.candidates() == [ProtocolVersion.V5]


def test_auto_falls_back_to_3_1_1_and_remembers(processes, tmp_path):
    port = free_port()
    config = tmp_path / "amqtt.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
                "plugins": {
                    "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
                },
            }
        )
    )
    processes.start("amqtt", "amqtt", "-c", str(config))
    wait_for_port(port)
    broker = BrokerSettings(port=port)
    choice = ProtocolChoice("auto")

    async def connect() -> ProtocolVersion:
        async with mqtt_session(broker, choice, identifier="fallback", timeout=2) as (_, v):
            return v

    assert asyncio.run(connect()) is ProtocolVersion.V311
    assert choice.candidates() == [ProtocolVersion.V311]


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_a_message_sent_after_an_outage_arrives_marked_as_backlog(mosquitto, tmp_path, protocol):
    """The mark is in the payload, so it survives a 3.1.1 session, which has no properties."""
    broker = BrokerSettings(host=mosquitto.host, port=mosquitto.port, protocol=protocol)
    waited = [60.0]  # the first message waited out an outage, the second is news
    outbox = Outbox(tmp_path / "outbox.sqlite", clock=lambda: time.time() - waited[0])
    outbox.append(Channel.TELEMETRY, telemetry)
    waited[0] = 0.0
    outbox.append(Channel.TELEMETRY, telemetry)
    device = DeviceSettings(id="air-1", site="dd", kind="air", name="air 1")
    uplink = Uplink(broker, device, outbox, boot_id="boot", backlog_after_s=10)

    async def roundtrip() -> list[Telemetry]:
        async with mqtt_session(broker, ProtocolChoice(protocol), identifier="sub") as (sub, _):
            # Both waited in the outbox together: they go out as one batch.
            await sub.subscribe("pq/v1/dd/air-1/batch", qos=1)
            stop = asyncio.Event()
            sending = asyncio.create_task(uplink.run(stop))
            async with asyncio.timeout(10):
                message = await anext(sub.messages)
            assert isinstance(message.payload, bytes)
            received = list(decode(message.payload, Batch).messages)
            stop.set()
            await sending
            return received

    old, new = asyncio.run(roundtrip())
    outbox.close()
    assert (old.seq, old.backlog) == (1, True)
    assert (new.seq, new.backlog) == (2, False)
