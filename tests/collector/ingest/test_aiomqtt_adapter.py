"""The three places the ingest reaches past aiomqtt's public API (collector/ingest/
aiomqtt_adapter.py). Against a real Mosquitto: the messages that have arrived are taken at
once, up to a limit of messages and of bytes, and each stays with the broker until it is
acknowledged. Without a broker: aiomqtt still has the private attributes the adapter uses,
so a release that moves them fails here, by name, before it fails the ingest."""

import asyncio

import aiomqtt
import paho.mqtt.client as paho

from collector.ingest.aiomqtt_adapter import ack, manual_acks, queued
from iotruntime.connection import BrokerSettings, ProtocolChoice, mqtt_session

TOPIC = "pq/v1/dd/air-1/telemetry"


async def arrived(client: aiomqtt.Client, count: int) -> None:
    """Wait until `count` messages are in the client's queue, taking none of them."""
    async with asyncio.timeout(10):
        while client._queue.qsize() < count:
            await asyncio.sleep(0.02)


def test_arrived_messages_are_taken_at_once_and_stay_with_the_broker_until_acknowledged(
    mosquitto,
):
    broker = BrokerSettings(host=mosquitto.host, port=mosquitto.port)
    choice = ProtocolChoice("auto")
    sent = [f"reading {i}".encode() for i in range(5)]

    def session():
        """The collector's session: persistent, manual acknowledgements on before CONNECT."""
        return mqtt_session(broker, choice, manual_acks, identifier="collector-adapter")

    async def main() -> dict[str, list[aiomqtt.Message]]:
        taken = {}
        async with session() as (client, _):
            await client.subscribe(TOPIC, qos=1)
            async with aiomqtt.Client(broker.host, broker.port, identifier="pole") as pole:
                for payload in sent:
                    await pole.publish(TOPIC, payload, qos=1)
            await arrived(client, len(sent))
            taken["first"] = queued(client, 3)
            taken["up to a byte"] = queued(client, 10, max_bytes=1)  # one, however large
            taken["rest"] = queued(client, 10)
            taken["none left"] = queued(client, 10)
            for message in taken["first"]:
                ack(client, message)
        # The same session again: the broker sends back what was never acknowledged.
        async with session() as (client, _):
            await arrived(client, 2)
            await asyncio.sleep(0.5)  # room for anything else the broker would send back
            taken["sent back"] = queued(client, 10)
            for message in taken["sent back"]:
                ack(client, message)
        async with session() as (client, _):
            await asyncio.sleep(0.5)
            taken["after all acknowledged"] = queued(client, 10)
        return taken

    taken = asyncio.run(main())
    payloads = {name: [m.payload for m in messages] for name, messages in taken.items()}
    assert payloads["first"] == sent[:3]
    assert payloads["up to a byte"] == sent[3:4]
    assert payloads["rest"] == sent[4:]
    assert payloads["none left"] == []
    assert all(m.qos == 1 for m in taken["first"] + taken["up to a byte"] + taken["rest"])
    assert payloads["sent back"] == sent[3:]
    assert payloads["after all acknowledged"] == []


def test_aiomqtt_still_has_the_private_attributes_the_adapter_uses():
    async def main() -> None:
        client = aiomqtt.Client("127.0.0.1", identifier="never-connects")
        assert isinstance(client._client, paho.Client)
        assert callable(client._client.manual_ack_set)
        assert callable(client._client.ack)
        assert isinstance(client._queue, asyncio.Queue)
        assert manual_acks(client) is client
        assert queued(client, 10) == []

    asyncio.run(main())
