"""MQTT 5 where the broker speaks it, 3.1.1 where it does not, and backlog marked over 5."""

import asyncio

import yaml
from aiomqtt import ProtocolVersion

from iotwire.backlog import BACKLOG, is_backlog
from iotwire.connection import BrokerSettings, ProtocolChoice, mqtt_session
from tests.helpers import free_port, wait_for_port


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


def test_the_backlog_mark_travels_as_a_user_property(mosquitto):
    broker = BrokerSettings(host=mosquitto.host, port=mosquitto.port, protocol="5")

    async def roundtrip() -> list[bool]:
        async with (
            mqtt_session(broker, ProtocolChoice("5"), identifier="sub") as (sub, _),
            mqtt_session(broker, ProtocolChoice("5"), identifier="pub") as (pub, _),
        ):
            await sub.subscribe("t/#", qos=1)
            await pub.publish("t/live", b"1", qos=1)
            await pub.publish("t/old", b"2", qos=1, properties=BACKLOG)
            marks = []
            async with asyncio.timeout(10):
                async for message in sub.messages:
                    marks.append(is_backlog(message.properties))
                    if len(marks) == 2:
                        return marks
        return []

    assert asyncio.run(roundtrip()) == [False, True]
    assert not is_backlog(None)
